"""How the app picks its use case and names its stack (no synth needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import resolve_usecase_file
from infra.bundling import constraints_without_extras
from infra.settings import ROOT, DataPipelineSettings, SluiceSettings, stack_name_for
from shared.usecase.settings import load_usecase


def test_a_bare_usecase_name_resolves_to_its_file_under_usecases() -> None:
    # Given a use-case name
    # When it is resolved
    # Then it names usecases/<name>.toml
    assert resolve_usecase_file("telco_churn") == ROOT / "usecases" / "telco_churn.toml"


def test_a_usecase_path_is_taken_as_given(tmp_path: Path) -> None:
    # Given paths to use-case files, absolute or relative to the project
    # Then they are used as they are
    assert resolve_usecase_file(str(tmp_path / "x.toml")) == tmp_path / "x.toml"
    assert resolve_usecase_file("usecases/telco_churn.toml") == ROOT / "usecases" / "telco_churn.toml"


def test_settings_come_from_the_usecase_file() -> None:
    # Given the telco churn use case
    path = ROOT / "usecases" / "telco_churn.toml"
    # When the stack settings are built from it
    settings = SluiceSettings.from_usecase(load_usecase(path), usecase_file=path)
    # Then the stack is named after it and the data pipeline ships that file
    assert settings.stack_name == "Sluice-telco-churn"
    assert settings.data_pipeline.usecase_name == "telco_churn"
    assert settings.data_pipeline.usecase_file == path


def test_settings_are_keyword_only_and_frozen() -> None:
    # Given data pipeline settings
    settings = DataPipelineSettings(usecase_name="x_y", usecase_file=Path("x.toml"))
    # Then they cannot be changed after construction, nor built positionally
    with pytest.raises(AttributeError):
        settings.usecase_name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        DataPipelineSettings("x_y", Path("x.toml"))  # type: ignore[call-arg]


def test_the_data_pipeline_grants_the_lake_layouts_prefixes() -> None:
    # Given data pipeline settings
    settings = DataPipelineSettings(usecase_name="x_y", usecase_file=Path("x.toml"))
    # Then ingest writes where shared/lake/layout.py puts its keys: relative key prefixes ending in "/"
    assert settings.lake_write_prefixes == ("curated/", "quarantine/", "manifests/")
    assert settings.manifests_area_prefix == "manifests/"


def test_stack_names_replace_underscores() -> None:
    assert stack_name_for("credit_default_v2") == "Sluice-credit-default-v2"


def test_layer_constraints_drop_extras_that_pip_refuses() -> None:
    # Given requirements.txt pins, one with an extra
    pins = "moto[server]==5.2.5\npyarrow==26.0.1\n# a comment [x]\n"
    # When they become layer constraints
    # Then the extra is gone and the pins stay
    assert constraints_without_extras(pins) == "moto==5.2.5\npyarrow==26.0.1\n# a comment [x]\n"


def test_training_settings_come_from_the_usecase_model() -> None:
    # Given the telco churn use case (light, CPU)
    path = ROOT / "usecases" / "telco_churn.toml"
    usecase = load_usecase(path)
    # When the stack settings are built from it
    settings = SluiceSettings.from_usecase(usecase, usecase_file=path, initial_model_data="s3://b/model.tar.gz")
    training = settings.training_pipeline
    # Then the training job, the poll and the triggers follow its [model] table, and there is no endpoint
    assert training.job.instance_type == usecase.model.training_instance_type
    assert training.job.max_runtime.to_seconds() == usecase.model.max_runtime_seconds
    assert training.poll_interval.to_seconds() == usecase.model.poll_seconds
    assert training.debounce.to_seconds() == usecase.model.debounce_seconds
    assert training.model_package_group_name == "sluice-telco-churn"
    assert settings.serving_endpoint is None


def test_a_heavy_usecase_gets_an_endpoint_once_a_model_is_named() -> None:
    from shared.usecase.settings import ModelKind, UseCase

    path = ROOT / "usecases" / "telco_churn.toml"
    light = load_usecase(path)
    heavy = UseCase.model_validate(
        {**light.model_dump(), "model": {**light.model.model_dump(exclude={"training_instance_type"}), "kind": "heavy"}}
    )
    assert heavy.model.kind is ModelKind.HEAVY
    # Before a model is registered there is nothing to serve; after, the endpoint uses the GPU default
    assert SluiceSettings.from_usecase(heavy, usecase_file=path).serving_endpoint is None
    endpoint = SluiceSettings.from_usecase(
        heavy, usecase_file=path, initial_model_data="s3://b/m.tar.gz"
    ).serving_endpoint
    assert endpoint is not None
    assert (endpoint.instance_type, endpoint.endpoint_name) == ("ml.g5.xlarge", "sluice-telco-churn")
    assert SluiceSettings.from_usecase(heavy, usecase_file=path).training_pipeline.job.instance_type == "ml.g5.xlarge"
