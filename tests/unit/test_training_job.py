"""The SageMaker script-mode entry point, end to end on a Telco training set built in a tmp dir."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import pytest

from shared.monitoring.baseline import Baseline
from shared.usecase.features import categorical_features, numeric_features
from shared.usecase.settings import UseCase
from tests.unit.conftest import REPO
from tests.unit.training_sample import telco_channel, usecase_file
from training import train
from training.train import parse_hyperparameters


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, telco: UseCase) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("job")
    channel, _ = telco_channel(telco, root)
    return {"root": root, "channel": channel, "usecase": usecase_file(root, REPO / "usecases" / "telco_churn.toml")}


def _args(job: dict[str, Path], name: str, *extra: str) -> list[str]:
    root = job["root"] / name
    return [
        "--train", str(job["channel"]),
        "--model-dir", str(root / "model"),
        "--output-data-dir", str(root / "data"),
        "--usecase-file", str(job["usecase"]),
        "--failure-file", str(root / "output" / "failure"),
        *extra,
    ]  # fmt: skip


def test_a_training_job_writes_the_model_its_metrics_and_its_lineage(
    job: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Telco training channel, a job name and a code version in the environment
    monkeypatch.setenv("TRAINING_JOB_NAME", "sluice-telco-churn-001")
    monkeypatch.setenv("SLUICE_CODE_VERSION", "abc123")

    # When the job runs with a hyperparameter override, as SageMaker passes it (a string)
    code = train.main(_args(job, "ok", "--C", "0.5"))

    # Then it succeeds and writes the four files
    model_dir = job["root"] / "ok" / "model"
    assert code == 0
    assert {p.name for p in model_dir.iterdir()} == {"model.onnx", "metrics.json", "lineage.json", "baseline.json"}
    metrics = json.loads((model_dir / "metrics.json").read_text())
    lineage = json.loads((model_dir / "lineage.json").read_text())
    onnx.checker.check_model(onnx.load(model_dir / "model.onnx"))
    # And the metrics are sane
    assert metrics["holdout"]["roc_auc"] > 0.75
    assert metrics["auc"] == metrics["holdout"]["roc_auc"]
    assert 0 <= metrics["ece"] < 0.1
    assert metrics["parity"]["max_abs_diff"] <= 1e-5
    assert metrics["parity_ok"] is True
    assert 0 < metrics["threshold"]["threshold"] < 0.5  # a miss costs 5 false alarms: flag generously
    assert metrics["segments"]["contract"]["Month-to-month"]["roc_auc"] > 0.6
    assert {i["name"] for i in metrics["onnx_inputs"]} >= {"tenure", "contract"}
    # And the lineage names the data, code, settings and libraries
    assert lineage["training_job_name"] == "sluice-telco-churn-001"
    assert lineage["code_version"] == "abc123"
    assert lineage["hyperparameters"] == {"C": 0.5, "max_iter": 1000}
    assert lineage["contract_version"] == "1.0.0"
    assert lineage["manifests"][0]["source_key"] == "telco/wa_churn.csv"
    assert lineage["manifests"][0]["source_version_id"] == "v1"
    assert lineage["training_set_hash"] == lineage["training_set"]["sha256"]
    assert set(lineage["libraries"]) >= {"python", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy"}
    assert lineage["onnx_sha256"] == hashlib.sha256((model_dir / "model.onnx").read_bytes()).hexdigest()
    assert (job["root"] / "ok" / "data" / "metrics.json").exists()


def test_a_training_job_writes_the_baseline_of_its_holdout_named_in_its_lineage(
    job: dict[str, Path], telco: UseCase
) -> None:
    # Given a Telco training channel
    # When the job runs
    assert train.main(_args(job, "baseline")) == 0

    # Then baseline.json is a valid baseline of the holdout, at the deployed (cost-optimal) threshold
    model_dir = job["root"] / "baseline" / "model"
    body = (model_dir / "baseline.json").read_bytes()
    baseline = Baseline.model_validate_json(body)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    lineage = json.loads((model_dir / "lineage.json").read_text())
    assert baseline.usecase == "telco_churn"
    assert baseline.contract_version == "1.0.0"
    assert baseline.threshold == metrics["threshold"]["threshold"]
    assert baseline.rows == metrics["rows_holdout"] == baseline.overall.n == baseline.score.count
    # And it profiles every model input, numerics as bins and categoricals as counts
    assert set(baseline.features) == set(numeric_features(telco.contract)) | set(categorical_features(telco.contract))
    assert baseline.features["tenure"].kind == "numeric"
    assert baseline.features["contract"].kind == "categorical"
    assert set(baseline.features["contract"].counts) == {"Month-to-month", "One year", "Two year"}
    # And its metrics (on the ONNX scores) agree with metrics.json's (on scikit-learn's)
    assert baseline.overall.auc == pytest.approx(metrics["holdout"]["roc_auc"], abs=1e-4)
    assert baseline.overall.brier == pytest.approx(metrics["holdout"]["brier"], abs=1e-5)
    month_to_month = metrics["segments"]["contract"]["Month-to-month"]
    assert baseline.segments["contract"]["Month-to-month"].n == month_to_month["rows"]
    # And the lineage names it by file and sha256
    assert lineage["baseline"] == {"file": "baseline.json", "sha256": hashlib.sha256(body).hexdigest()}


def test_an_invalid_hyperparameter_fails_the_job_before_reading_data(job: dict[str, Path]) -> None:
    # Given an override SageMaker would pass, with an invalid value, and a channel that does not exist
    args = _args(job, "bad-config", "--C", "-1")
    args[1] = str(job["root"] / "no-such-channel")

    # When the job runs
    code = train.main(args)

    # Then it fails on the configuration (not the missing data), with a one-line FailureReason
    failure = (job["root"] / "bad-config" / "output" / "failure").read_text()
    assert code != 0
    assert failure.startswith("ModelConfigError:")
    assert failure.count("\n") == 1
    assert not (job["root"] / "bad-config" / "model").exists()


def test_a_tampered_training_set_fails_the_job(job: dict[str, Path], tmp_path: Path) -> None:
    # Given a channel whose train.parquet is not the one trainset.json describes
    channel = tmp_path / "train"
    channel.mkdir()
    for name in ("train.parquet", "holdout.parquet", "trainset.json"):
        (channel / name).write_bytes((job["channel"] / name).read_bytes())
    (channel / "train.parquet").write_bytes((job["channel"] / "holdout.parquet").read_bytes())
    args = _args(job, "tampered")
    args[1] = str(channel)

    # When / Then the job fails with the reason
    assert train.main(args) == 1
    assert "sha256" in (job["root"] / "tampered" / "output" / "failure").read_text()


def test_hyperparameters_arrive_as_strings_and_are_parsed() -> None:
    assert parse_hyperparameters(["--C", "0.5", "--max_iter", "200", "--class_weight", "balanced"]) == {
        "C": 0.5,
        "max_iter": 200,
        "class_weight": "balanced",
    }
    assert parse_hyperparameters(["--max_depth", "None", "--bootstrap", "false"]) == {
        "max_depth": None,
        "bootstrap": False,
    }
