"""Lambda assets built on this machine, without Docker.

Each asset is a ``Code.from_asset`` whose ``bundling.local`` is one of the classes below, so CDK
never falls back to ``docker run``. Each asset also carries a custom hash of its inputs: a
re-synth into the same ``cdk.out`` finds ``asset.<hash>`` already there and skips bundling.

- :class:`DependencyLayerBundling` installs a requirements file for Lambda's Linux (arm64,
  CPython 3.12) with pip, prunes what Lambda never loads (and, when given the AWS services its
  functions call, every other service's botocore model), and keeps the result in
  ``.build/layers/<hash>`` so a fresh ``cdk.out`` costs a copy, not a pip run.
- :class:`SharedCodeBundling` ships ``shared/**/*.py`` as ``python/shared/`` (a layer).
- :class:`FunctionBundling` ships ``functions/<name>/*.py`` plus the use-case file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.settings import CONSTRAINTS_FILE, ROOT, SHARED_DIR, USECASE_FILE_IN_BUNDLE

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
BUILD_IMAGE = "public.ecr.aws/sam/build-python3.12"
"""The image CDK would run if local bundling declined; it never does here."""

LAYER_CACHE_DIR = ROOT / ".build" / "layers"
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
DEPENDENCY_LAYER_BUDGET_BYTES = 200 * 1024 * 1024
"""A dependency layer may use this much of Lambda's 250 MB, leaving room for code and shared layers."""

# pip matches platform tags literally: ``manylinux_2_28`` alone misses wheels tagged only
# ``manylinux2014`` / ``manylinux_2_17`` (pydantic-core), so every glibc level Lambda's
# Amazon Linux 2023 satisfies is listed.
PIP_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
PIP_PLATFORMS_X86_64 = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
"""The same layer for x86_64: tests build it to import the pruned packages on this machine's CPU."""
PIP_PYTHON_VERSION = "3.12"
PIP_IMPLEMENTATION = "cp"

PRUNED_DIR_NAMES = frozenset({"__pycache__", "tests"})
PRUNED_SUFFIXES = (".pyc", ".pyi", ".pxd", ".pyx", ".pxi", ".a")
"""``.a``: static archives (numpy's npymath, npyrandom) are for compiling extensions, never loaded."""
PRUNED_PATHS = (
    "bin",  # console scripts; nothing runs them in Lambda
    "pyarrow/include",  # C++ headers
    "pyarrow/includes",  # Cython declarations
    "pyarrow/src",  # C++ sources of the Python bindings
    "pyarrow/conftest.py",
    # onnxruntime's tooling around inference: graph transformers, quantization, model tools, sample
    # datasets and the ONNX backend-test adapter. ``import onnxruntime`` and InferenceSession load none of them.
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "onnxruntime/datasets",
    "onnxruntime/backend",
)
PRUNED_GLOBS = (
    # Arrow Flight (RPC) is not used; nothing else links libarrow_flight.
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight.*.so",
    "pyarrow/flight.py",
    # The Substrait Python binding; libarrow_substrait.so itself stays, pyarrow.lib links it.
    "pyarrow/_substrait.*.so",
    "pyarrow/substrait.py",
    "pyarrow/_pyarrow_cpp_tests.*.so",
    # Arrow's own S3 filesystem (16 MB): Sluice reads S3 through boto3, and pyarrow.fs imports it only if
    # present. Only _s3fs links libarrow_s3; pyarrow.lib links substrait, dataset and acero, so they stay.
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_s3fs.*.so",
    # Request examples of each AWS API: botocore reads them to write documentation only.
    "botocore/data/*/*/examples-1.json",
    # onnxruntime's C API library (27 MB) is for C/C++ callers: the Python binding
    # (onnxruntime_pybind11_state) links the runtime statically and does not load it.
    "onnxruntime/capi/libonnxruntime.so*",
)
SONAME_COPY = re.compile(r"^(?P<stem>lib[\w+-]+)\.so(?:\.(?P<major>\d+)\.\d+\.\d+)?$")
"""``libfoo.so`` and ``libfoo.so.N.M.P``: wheel copies of the ``libfoo.so.N`` the loader opens."""


class BundlingError(RuntimeError):
    """A Lambda asset could not be built locally."""


def _sha256_files(tag: str, files: Iterable[tuple[str, Path]], *extra: str) -> str:
    digest = hashlib.sha256(tag.encode())
    for name, path in sorted(files, key=lambda item: item[0]):
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(path.read_bytes())
    for value in extra:
        digest.update(b"\0" + value.encode())
    return digest.hexdigest()


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link a cached file into the asset (same filesystem), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def constraints_without_extras(text: str) -> str:
    """pip refuses constraints with extras (``moto[server]==…``); the pins are what matter."""
    return re.sub(r"^(\s*[A-Za-z0-9._-]+)\[[^\]]*\]", r"\1", text, flags=re.MULTILINE)


@jsii.implements(ILocalBundling)
class DependencyLayerBundling:
    """A layer of third-party packages for Lambda arm64 / CPython 3.12, from a requirements file."""

    def __init__(
        self,
        *,
        requirements_file: Path,
        constraints_file: Path = CONSTRAINTS_FILE,
        cache_dir: Path = LAYER_CACHE_DIR,
        size_budget_bytes: int = DEPENDENCY_LAYER_BUDGET_BYTES,
        platforms: tuple[str, ...] = PIP_PLATFORMS,
        aws_services: tuple[str, ...] | None = None,
    ) -> None:
        """``aws_services``: the only AWS services whose botocore (and boto3) models the layer keeps, the ones
        its functions create clients for; ``None`` keeps every service."""
        self.requirements_file = requirements_file
        self.platforms = platforms
        self.aws_services = aws_services
        self.constraints = constraints_without_extras(constraints_file.read_text())
        self.cache_dir = cache_dir
        self.size_budget_bytes = size_budget_bytes
        self.asset_hash = _sha256_files(
            "dependency-layer",
            [(requirements_file.name, requirements_file), ("bundling.py", Path(__file__))],
            self.constraints,
            *platforms,
            PIP_PYTHON_VERSION,
            PIP_IMPLEMENTATION,
            *(() if aws_services is None else ("aws-services", *sorted(aws_services))),
        )

    @property
    def cached_layer(self) -> Path:
        return self.cache_dir / self.asset_hash

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:  # noqa: ARG002 - CDK's interface
        layer = self.cached_layer if self.cached_layer.exists() else self._build()
        shutil.copytree(layer, output_dir, dirs_exist_ok=True, copy_function=_link_or_copy)
        return True

    def _build(self) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".building-") as scratch:
            work = Path(scratch)
            constraints = work / "constraints.txt"
            constraints.write_text(self.constraints)
            layer = work / "layer"
            self._pip_install(constraints=constraints, target=layer / "python")
            prune_for_lambda(layer / "python")
            if self.aws_services is not None:
                prune_aws_services(layer / "python", keep=self.aws_services)
            size = _tree_size(layer)
            if size > self.size_budget_bytes:
                raise BundlingError(
                    f"{self.requirements_file.name}: the layer is {size / 2**20:.1f} MiB unzipped, "
                    f"over its budget of {self.size_budget_bytes / 2**20:.0f} MiB "
                    f"(Lambda allows {LAMBDA_UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB for code and all layers)"
                )
            report = {
                "requirements": self.requirements_file.name,
                "aws_services": self.aws_services,
                "unzipped_bytes": size,
            }
            (work / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            try:
                layer.rename(self.cached_layer)
                (work / "report.json").rename(self.cached_layer.with_suffix(".json"))
            except OSError:
                if not self.cached_layer.exists():  # not a concurrent build that won the rename
                    raise
        print(f"[sluice] built layer {self.requirements_file.name}: {size / 2**20:.1f} MiB unzipped", file=sys.stderr)
        return self.cached_layer

    def _pip_install(self, *, constraints: Path, target: Path) -> None:
        platforms = [arg for platform in self.platforms for arg in ("--platform", platform)]
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--requirement",
            str(self.requirements_file),
            "--constraint",
            str(constraints),
            *platforms,
            "--only-binary=:all:",
            "--python-version",
            PIP_PYTHON_VERSION,
            "--implementation",
            PIP_IMPLEMENTATION,
            "--target",
            str(target),
            "--no-compile",
            "--no-input",
            "--quiet",
            "--disable-pip-version-check",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own pip
        if result.returncode != 0:
            raise BundlingError(f"pip install for {self.requirements_file.name} failed:\n{result.stderr}")


def prune_for_lambda(site_packages: Path) -> None:
    """Delete what Lambda never loads: caches, stubs, Cython sources, headers, tests, unused Arrow parts."""
    for relative in PRUNED_PATHS:
        path = site_packages / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for pattern in PRUNED_GLOBS:
        for path in site_packages.glob(pattern):
            path.unlink()
    for path in sorted(site_packages.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in PRUNED_DIR_NAMES:
            shutil.rmtree(path)
        elif path.is_file() and path.name.endswith(PRUNED_SUFFIXES):
            path.unlink()
    _drop_soname_copies(site_packages)


AWS_MODEL_DIRS = ("botocore/data", "boto3/data")
"""One folder per AWS service (its API model, endpoint rules, paginators); the files beside them are shared."""


def prune_aws_services(site_packages: Path, *, keep: tuple[str, ...]) -> None:
    """Delete the botocore and boto3 models of every AWS service but ``keep`` (botocore's is about 20 MB in all).

    A client of a service whose model is gone fails with ``UnknownServiceError``: ``keep`` must name every
    service the layer's functions call.
    """
    missing = [name for name in keep if not (site_packages / AWS_MODEL_DIRS[0] / name).is_dir()]
    if missing:
        raise BundlingError(f"no botocore model for {missing}: not AWS service names")
    for models in AWS_MODEL_DIRS:
        for path in (site_packages / models).glob("*"):
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path)


def _drop_soname_copies(site_packages: Path) -> None:
    for path in site_packages.rglob("lib*.so*"):
        match = SONAME_COPY.match(path.name)
        if match is None or not path.is_file():
            continue
        candidates = path.parent.glob(f"{match['stem']}.so.*")
        sonames = [c for c in candidates if re.fullmatch(rf"{re.escape(match['stem'])}\.so\.\d+", c.name)]
        if match["major"] is not None:
            sonames = [c for c in sonames if c.name == f"{match['stem']}.so.{match['major']}"]
        if any(c.stat().st_size == path.stat().st_size for c in sonames):
            path.unlink()


@jsii.implements(ILocalBundling)
class SharedCodeBundling:
    """The ``shared`` package as a layer: ``shared/**/*.py`` → ``python/shared/``."""

    def __init__(self, *, source_dir: Path = SHARED_DIR) -> None:
        self.source_dir = source_dir
        self.asset_hash = _sha256_files("shared-code-layer", self._files())

    def _files(self) -> list[tuple[str, Path]]:
        return [
            (str(path.relative_to(self.source_dir)), path)
            for path in self.source_dir.rglob("*.py")
            if "__pycache__" not in path.parts
        ]

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:  # noqa: ARG002 - CDK's interface
        target = Path(output_dir) / "python" / self.source_dir.name
        for relative, path in self._files():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
        return True


@jsii.implements(ILocalBundling)
class FunctionBundling:
    """One function's handler modules (``functions/<name>/*.py``) and the use-case file."""

    def __init__(self, *, source_dir: Path, usecase_file: Path) -> None:
        self.source_dir = source_dir
        self.usecase_file = usecase_file
        self.asset_hash = _sha256_files(
            "function", [*self._files(), (USECASE_FILE_IN_BUNDLE, usecase_file)], source_dir.name
        )

    def _files(self) -> list[tuple[str, Path]]:
        return [(path.name, path) for path in self.source_dir.glob("*.py")]

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:  # noqa: ARG002 - CDK's interface
        out = Path(output_dir)
        for name, path in self._files():
            shutil.copy2(path, out / name)
        shutil.copy2(self.usecase_file, out / USECASE_FILE_IN_BUNDLE)
        return True


def _code(source_dir: Path, bundling: DependencyLayerBundling | SharedCodeBundling | FunctionBundling) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash=bundling.asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=DockerImage.from_registry(BUILD_IMAGE),
            # jsii.implements registers the interface with jsii; mypy cannot see it.
            local=cast(ILocalBundling, bundling),
        ),
    )


def dependency_layer_code(requirements_file: Path, *, aws_services: tuple[str, ...] | None = None) -> lambda_.Code:
    """A layer asset holding the packages of ``requirements_file`` (pinned by requirements.txt); with
    ``aws_services``, the botocore models of those services only."""
    bundling = DependencyLayerBundling(requirements_file=requirements_file, aws_services=aws_services)
    return _code(requirements_file.parent, bundling)


def shared_code_layer_code(source_dir: Path = SHARED_DIR) -> lambda_.Code:
    """A layer asset holding the ``shared`` domain package."""
    return _code(source_dir, SharedCodeBundling(source_dir=source_dir))


def function_code(source_dir: Path, *, usecase_file: Path) -> lambda_.Code:
    """A function asset: the handler modules of ``source_dir`` and ``usecase_file`` as ``usecase.toml``."""
    return _code(source_dir, FunctionBundling(source_dir=source_dir, usecase_file=usecase_file))


TRAINING_DIR = ROOT / "training"
TRAINING_REQUIREMENTS = "requirements.txt"
SOURCE_ARCHIVE_NAME = "sourcedir.tar.gz"


@jsii.implements(ILocalBundling)
class TrainingSourceBundling:
    """SageMaker script mode's ``sourcedir.tar.gz``: ``training/``, ``shared/``, ``requirements.txt``, ``usecase.toml``.

    ``training/requirements.txt`` goes to the archive's root, where SageMaker's training toolkit
    installs it before it runs the entry point. The archive is reproducible (sorted members, fixed
    mtime, owner and mode), so its bytes follow its inputs.
    """

    def __init__(
        self,
        *,
        usecase_file: Path,
        training_dir: Path = TRAINING_DIR,
        shared_dir: Path = SHARED_DIR,
        requirements_file: Path | None = None,
    ) -> None:
        """``requirements_file``: what the archive's root ``requirements.txt`` holds (training's by default;
        a GPU endpoint's archive gets ``onnxruntime-gpu`` instead, :mod:`infra.serving_image`)."""
        self.usecase_file = usecase_file
        self.training_dir = training_dir
        self.shared_dir = shared_dir
        self.requirements_file = requirements_file or training_dir / TRAINING_REQUIREMENTS
        self.asset_hash = _sha256_files("training-source", self._files())

    def _files(self) -> list[tuple[str, Path]]:
        files = [(USECASE_FILE_IN_BUNDLE, self.usecase_file)]
        requirements = self.requirements_file
        if requirements.is_file():
            files.append((TRAINING_REQUIREMENTS, requirements))
        for root in (self.training_dir, self.shared_dir):
            files.extend(
                (f"{root.name}/{path.relative_to(root)}", path)
                for path in root.rglob("*")
                if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc")
            )
        return sorted(files)

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:  # noqa: ARG002 - CDK's interface
        import gzip
        import tarfile

        archive = Path(output_dir) / SOURCE_ARCHIVE_NAME
        with (
            archive.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, path in self._files():
                info = tarfile.TarInfo(name)
                info.size = path.stat().st_size
                info.mode = 0o644
                with path.open("rb") as body:
                    tar.addfile(info, body)
        return True


def training_source_bundling(
    usecase_file: Path, *, requirements_file: Path | None = None
) -> tuple[BundlingOptions, str]:
    """Bundling options of the training source asset (one archive, kept as is) and its custom hash."""
    from aws_cdk import BundlingOutput

    bundling = TrainingSourceBundling(usecase_file=usecase_file, requirements_file=requirements_file)
    options = BundlingOptions(
        image=DockerImage.from_registry(BUILD_IMAGE),
        local=cast(ILocalBundling, bundling),
        output_type=BundlingOutput.ARCHIVED,
    )
    return options, bundling.asset_hash
