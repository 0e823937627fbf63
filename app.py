#!/usr/bin/env python3
"""CDK entry point: one Sluice stack per use case.

The use case comes from context (``cdk synth -c usecase=telco_churn`` or a path to its TOML
file), else from ``SLUICE_USECASE``, else ``usecases/telco_churn.toml``. Every synth runs the
AwsSolutions checks of cdk-nag as a validation plugin: an unacknowledged finding fails it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import ROOT, SluiceSettings
from infra.stack import SluiceStack
from shared.environment import USECASE_VARIABLE
from shared.usecase.settings import load_usecase

USECASE_CONTEXT_KEY = "usecase"
DEFAULT_USECASE = "telco_churn"
INITIAL_MODEL_DATA_CONTEXT_KEY = "initial_model_data"
"""``s3://.../model.tar.gz`` of a registered model; a heavy use case gets its endpoint once this is set."""


def resolve_usecase_file(reference: str) -> Path:
    """A path to a ``.toml`` file as given, or a bare use-case name as ``usecases/<name>.toml``."""
    if reference.endswith(".toml") or os.sep in reference or "/" in reference:
        path = Path(reference)
        return path if path.is_absolute() else ROOT / path
    return ROOT / "usecases" / f"{reference}.toml"


def cdk_json_context() -> dict[str, Any]:
    """Feature flags from cdk.json, as defaults: ``python app.py`` synthesizes what ``cdk deploy`` does."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def main() -> None:
    app = cdk.App(context=cdk_json_context())
    reference = app.node.try_get_context(USECASE_CONTEXT_KEY) or os.environ.get(USECASE_VARIABLE) or DEFAULT_USECASE
    usecase_file = resolve_usecase_file(str(reference))
    settings = SluiceSettings.from_usecase(
        load_usecase(usecase_file),
        usecase_file=usecase_file,
        initial_model_data=app.node.try_get_context(INITIAL_MODEL_DATA_CONTEXT_KEY),
    )
    # Environment-agnostic on purpose: the template is the same whoever synthesizes it, so what the
    # tests and the embedded cloud check is what `cdk deploy` deploys.
    SluiceStack(
        app,
        settings=settings,
        description=f"Sluice ML platform for the {settings.usecase_name} use case",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()


if __name__ == "__main__":
    main()
