"""Reading the Lambda assets CDK staged in ``cdk.out`` (what AWS unzips for a function), and building a
dependency layer's x86_64 twin so that this machine's CPython 3.12 can import it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from infra.bundling import LAMBDA_UNZIPPED_LIMIT_BYTES, PIP_PLATFORMS_X86_64, DependencyLayerBundling
from infra.settings import ROOT

X86_64_LAYER_CACHE = ROOT / ".build" / "layers-x86_64"


def staged_dir(resource: dict[str, Any], asset_dirs: dict[str, Path]) -> Path:
    """The staged directory of a function's code or a layer's content."""
    code = resource["Properties"].get("Content") or resource["Properties"]["Code"]
    return asset_dirs[code["S3Key"].removesuffix(".zip")]


def unzipped_size(root: Path) -> int:
    """Bytes of every file under ``root``: what Lambda counts against its unzipped limit."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def function_bundle(template_json: dict[str, Any], function: dict[str, Any], asset_dirs: dict[str, Path]) -> list[Path]:
    """What Lambda unzips for a function: its code, then each of its layers, in order."""
    layers = [template_json["Resources"][layer["Ref"]] for layer in function["Properties"].get("Layers", [])]
    return [staged_dir(part, asset_dirs) for part in (function, *layers)]


def python312() -> str | None:
    """A CPython 3.12 interpreter that runs (a pyenv shim may name one that is not selected)."""
    pyenv = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob("3.12*/bin/python3.12"))
    for candidate in [*(str(p) for p in reversed(pyenv)), shutil.which("python3.12")]:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def x86_64_twin(requirements_file: Path, *, aws_services: tuple[str, ...] | None = None) -> Path:
    """The site-packages of a dependency layer built and pruned exactly as for Lambda, but for x86_64.

    x86_64 wheels are larger than arm64's (onnxruntime's and pyarrow's binaries), so the twin is held to Lambda's
    limit only: the layer budget is the arm64 layer's, and the staged assets' sizes are tested as deployed.
    """
    layer = DependencyLayerBundling(
        requirements_file=requirements_file,
        platforms=PIP_PLATFORMS_X86_64,
        cache_dir=X86_64_LAYER_CACHE,
        size_budget_bytes=LAMBDA_UNZIPPED_LIMIT_BYTES,
        aws_services=aws_services,
    )
    return (layer.cached_layer if layer.cached_layer.exists() else layer._build()) / "python"
