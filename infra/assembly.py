"""Synthesize the CDK app once per change of its inputs.

`cdk synth` of this app takes tens of seconds (the Python CDK drives node through jsii), so
`make synth`, the infra tests and the embedded cloud all go through :func:`synthesize`, which
reuses ``cdk.out/`` while a hash of everything that shapes the template is unchanged.
The subprocess is what the CDK CLI would run: ``python app.py`` with ``CDK_OUTDIR`` and
``CDK_CONTEXT_JSON`` set.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.environment import USECASE_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTDIR = ROOT / "cdk.out"
DEFAULT_USECASE = ROOT / "usecases" / "telco_churn.toml"
"""The use case to synthesize when none is named: a path to its ``.toml`` file, or a bare use-case name."""
HASH_FILE = ".sluice-inputs.sha256"
LOCK_FILE = ".sluice-synth.lock"

# Everything that can change the synthesized template or its assets.
INPUT_GLOBS = (
    "app.py",
    "cdk.json",
    "requirements.txt",
    "infra/**/*.py",
    "functions/**/*.py",
    "functions/**/*.txt",
    "shared/**/*.py",
    "layers/**/*.txt",
    "training/**/*.py",
    "training/**/*.txt",
)


class SynthError(RuntimeError):
    """`cdk synth` failed; the message carries its output."""


@dataclass(frozen=True, kw_only=True)
class Assembly:
    """A synthesized cloud assembly: where it is and which stacks it holds."""

    outdir: Path
    stacks: dict[str, Path]
    """Stack name → template file."""

    def template(self, stack_name: str | None = None) -> dict[str, object]:
        if stack_name is None:
            if len(self.stacks) != 1:
                raise SynthError(f"the assembly holds {sorted(self.stacks)}; name one")
            stack_name = next(iter(self.stacks))
        template: dict[str, object] = json.loads(self.stacks[stack_name].read_text())
        return template


def usecase_file(reference: str | Path | None = None) -> Path:
    """The use-case file to synthesize: ``reference`` (an explicit argument) if given, else
    ``$SLUICE_USECASE``, else :data:`DEFAULT_USECASE`. Read as ``app.py`` reads it: a bare name is
    ``usecases/<name>.toml``, a relative path is relative to the project root."""
    chosen = str(reference) if reference is not None else os.environ.get(USECASE_VARIABLE)
    if not chosen:
        return DEFAULT_USECASE
    if chosen.endswith(".toml") or os.sep in chosen or "/" in chosen:
        path = Path(chosen)
        return path if path.is_absolute() else ROOT / path
    return ROOT / "usecases" / f"{chosen}.toml"


def inputs_hash(usecase: Path, context: dict[str, object]) -> str:
    digest = hashlib.sha256()
    for pattern in INPUT_GLOBS:
        for path in sorted(ROOT.glob(pattern)):
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    digest.update(usecase.read_bytes())
    digest.update(json.dumps(context, sort_keys=True).encode())
    return digest.hexdigest()


def read_assembly(outdir: Path) -> Assembly:
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {
        artifact.get("displayName", name): outdir / artifact["properties"]["templateFile"]
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    return Assembly(outdir=outdir, stacks=stacks)


@contextmanager
def _exclusive(outdir: Path) -> Iterator[None]:
    """Hold ``outdir``'s lock: one process at a time checks, synthesizes into and stamps one directory
    (test workers and embedded clouds started side by side synthesize each assembly once)."""
    with (outdir / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def synthesize(
    *,
    usecase: Path = DEFAULT_USECASE,
    outdir: Path | None = None,
    context: dict[str, str] | None = None,
    force: bool = False,
) -> Assembly:
    """Synthesize the app for ``usecase`` into ``outdir``, or reuse it if its inputs are unchanged.

    The default use case synthesizes into ``cdk.out/`` (what ``cdk deploy`` reads); any other into
    ``.build/assemblies/<file stem>/``, so that two use cases never overwrite each other's cache.
    """
    usecase = usecase.resolve()
    if outdir is None:
        default = usecase == DEFAULT_USECASE.resolve()
        outdir = DEFAULT_OUTDIR if default else ROOT / ".build" / "assemblies" / usecase.stem
    outdir.mkdir(parents=True, exist_ok=True)
    full_context: dict[str, object] = {
        "usecase": str(usecase),
        "aws:cdk:enable-asset-metadata": True,
        **(context or {}),
    }
    with _exclusive(outdir):
        digest = inputs_hash(usecase, full_context)
        stamp = outdir / HASH_FILE
        if not force and stamp.exists() and stamp.read_text() == digest and (outdir / "manifest.json").exists():
            return read_assembly(outdir)

        env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(full_context)}
        result = subprocess.run(  # noqa: S603 - our own interpreter running our own app
            [sys.executable, str(ROOT / "app.py")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SynthError(f"cdk synth failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        stamp.write_text(digest)
        return read_assembly(outdir)


def main() -> None:
    assembly = synthesize(
        usecase=usecase_file(),
        force="--force" in sys.argv,
    )
    for name, template in assembly.stacks.items():
        print(f"{name}: {template.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
