"""The Lambda assets CDK staged: built locally for arm64 / Python 3.12 (every function's size: test_lambda_bundles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.infra.staged_assets import staged_dir


def _layers(template_json: dict[str, Any], ingest_function: dict[str, Any]) -> list[dict[str, Any]]:
    return [template_json["Resources"][layer["Ref"]] for layer in ingest_function["Properties"]["Layers"]]


def test_function_asset_holds_the_handler_modules_and_the_usecase_file(
    ingest_function: dict[str, Any], asset_dirs: dict[str, Path]
) -> None:
    # Given the ingest function's staged code
    staged = staged_dir(ingest_function, asset_dirs)
    # Then the use-case file sits next to the handler, under the name the environment gives
    assert (staged / "usecase.toml").read_text() == Path("usecases/telco_churn.toml").read_text()
    # And every module of functions/ingest is at the bundle's root
    expected = {p.name for p in Path("functions/ingest").glob("*.py")}
    assert expected <= {p.name for p in staged.glob("*.py")}


def test_layers_hold_shared_code_and_arm64_dependencies(
    template_json: dict[str, Any], ingest_function: dict[str, Any], asset_dirs: dict[str, Path]
) -> None:
    # Given the ingest function's two layers
    staged = [staged_dir(layer, asset_dirs) for layer in _layers(template_json, ingest_function)]
    (shared,) = [d for d in staged if (d / "python" / "shared").is_dir()]
    (dependencies,) = [d for d in staged if d != shared]
    # Then the shared layer is the shared package
    assert (shared / "python" / "shared" / "usecase" / "settings.py").is_file()
    # And the dependency layer holds Linux arm64 CPython 3.12 builds of the compiled packages
    site = dependencies / "python"
    assert list(site.glob("pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so"))
    assert list(site.glob("pyarrow/lib.cpython-312-aarch64-linux-gnu.so"))
    assert (site / "aws_lambda_powertools").is_dir()
    assert (site / "aws_xray_sdk").is_dir()
    # And what Lambda never loads was pruned
    assert not list(site.rglob("__pycache__"))
    assert not list(site.rglob("*.pyi"))
    assert not (site / "pyarrow" / "include").exists()
    assert not list(site.glob("pyarrow/libarrow_flight.so*"))
