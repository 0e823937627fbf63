"""The register and trigger handlers under moto (in memory): SageMaker's registry and Step Functions."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.lake.adapters import S3ObjectStore
from shared.monitoring.baseline import Baseline, MetricSummary, NumericProfile
from shared.registry.exceptions import GateFailedError
from shared.registry.package import baseline_uri
from shared.registry.service import read_baseline
from tests.fakes import FakeLambdaContext

REPO = Path(__file__).resolve().parents[2]
LAKE, GROUP = "sluice-lake", "sluice-telco-churn"
MODEL_KEY = "sagemaker/telco_churn/jobs/run-1/output/model.tar.gz"
ONNX = b"onnx-bytes"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def _baseline() -> bytes:
    summary = MetricSummary(
        n=200, positives=50, auc=0.8, auc_variance=0.001, brier=0.15, brier_variance=0.01, ece=0.03,
        positive_rate=0.25, mean_score=0.26, threshold=0.3, true_positives=40, false_positives=30,
        false_negatives=10, true_negatives=120,
    )  # fmt: skip
    return (
        Baseline(
            usecase="telco_churn",
            contract_version="1.0.0",
            threshold=0.3,
            rows=200,
            features={"tenure": NumericProfile(count=200, null_count=0, edges=[12.0], counts=[80, 120])},
            score=NumericProfile(count=200, null_count=0, edges=[0.3], counts=[130, 70]),
            overall=summary,
        )
        .model_dump_json()
        .encode()
    )


def _model_archive(auc: float, baseline: bytes | None = None) -> bytes:
    lineage: dict[str, Any] = {
        "onnx_sha256": hashlib.sha256(ONNX).hexdigest(),
        "training_set_hash": "abc",
        "contract_version": "1.0.0",
        "code_version": "c0de",
    }
    files = {
        "model.onnx": ONNX,
        "metrics.json": json.dumps({"auc": auc, "ece": 0.02, "parity_ok": True}).encode(),
    }
    if baseline is not None:
        files["baseline.json"] = baseline
        lineage["baseline"] = {"file": "baseline.json", "sha256": hashlib.sha256(baseline).hexdigest()}
    files["lineage.json"] = json.dumps(lineage).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_TASK_ROOT": str(REPO),
        "SLUICE_USECASE_FILE": "usecases/telco_churn.toml",
        "SLUICE_USECASE": "telco_churn",
        "LAKE_BUCKET": LAKE,
        "MODEL_PACKAGE_GROUP": GROUP,
        "INFERENCE_IMAGE": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        "SLUICE_WORKDIR": str(tmp_path),
        "DEBOUNCE_SECONDS": "300",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=LAKE)
        boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
        yield


def _register_handler() -> Any:
    from functions.training_register import handler

    for factory in (handler.settings, handler.usecase, handler.object_store, handler.registry):
        factory.cache_clear()
    return handler


def test_a_good_model_is_registered_pending_manual_approval(aws: None) -> None:
    # Given a completed job's model archive
    boto3.client("s3").put_object(Bucket=LAKE, Key=MODEL_KEY, Body=_model_archive(auc=0.85))
    event = {"run_id": "run-1", "job_name": "run-1", "model_data_url": f"s3://{LAKE}/{MODEL_KEY}"}
    # When the register handler runs
    result = _register_handler().lambda_handler(event, FakeLambdaContext())
    # Then version 1 of the group waits for manual approval, with the lineage recorded
    assert result["version"] == 1
    assert result["approval_status"] == "PendingManualApproval"
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=result["package_arn"])
    assert package["CustomerMetadataProperties"]["onnx_sha256"] == hashlib.sha256(ONNX).hexdigest()
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=LAKE, Prefix="models/")["Contents"]]
    assert sorted(keys) == [f"models/telco_churn/run-1/{n}" for n in ("lineage.json", "metrics.json", "model.onnx")]
    # And, an older job's model having no baseline, the package names none
    assert "DriftCheckBaselines" not in package
    assert baseline_uri(package) is None


def test_a_model_an_endpoint_serves_is_registered_with_its_inference_code(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a completed job's model archive, and a register function set up for the endpoint's GPU inference code
    monkeypatch.setenv("INFERENCE_PROGRAM", "training/inference.py")
    monkeypatch.setenv("INFERENCE_CODE_URL", "s3://assets/gpu-serving-source.tar.gz")
    boto3.client("s3").put_object(Bucket=LAKE, Key=MODEL_KEY, Body=_model_archive(auc=0.85))
    event = {"run_id": "run-1", "job_name": "run-1", "model_data_url": f"s3://{LAKE}/{MODEL_KEY}"}
    # When the register handler runs
    result = _register_handler().lambda_handler(event, FakeLambdaContext())
    # Then the package's container (what a promotion creates the endpoint's model from) runs that code
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=result["package_arn"])
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "training/inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "s3://assets/gpu-serving-source.tar.gz",
    }


def test_a_model_with_a_baseline_is_registered_with_its_drift_check_baselines(aws: None) -> None:
    # Given a completed job's model archive with its baseline
    body = _baseline()
    boto3.client("s3").put_object(Bucket=LAKE, Key=MODEL_KEY, Body=_model_archive(auc=0.85, baseline=body))
    event = {"run_id": "run-1", "job_name": "run-1", "model_data_url": f"s3://{LAKE}/{MODEL_KEY}"}
    # When the register handler runs
    result = _register_handler().lambda_handler(event, FakeLambdaContext())
    # Then SageMaker (moto) keeps and returns the baseline as the package's drift-check baselines
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=result["package_arn"])
    uri = f"s3://{LAKE}/models/telco_churn/run-1/baseline.json"
    source = {
        "ContentType": "application/json",
        "ContentDigest": f"sha256:{hashlib.sha256(body).hexdigest()}",
        "S3Uri": uri,
    }
    assert package["DriftCheckBaselines"] == {
        "ModelDataQuality": {"Statistics": source},
        "ModelQuality": {"Statistics": source},
    }
    assert package["ModelMetrics"]["ModelDataQuality"] == {"Statistics": source}
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/metrics.json")
    assert package["CustomerMetadataProperties"]["baseline_sha256"] == hashlib.sha256(body).hexdigest()
    # And the monitor reads it back from the lake by the package
    assert baseline_uri(package) == uri
    baseline = read_baseline(package, S3ObjectStore(boto3.client("s3")))
    assert baseline is not None
    assert baseline.overall.auc == 0.8


def test_a_weak_model_fails_the_handler_with_the_gate_reason(aws: None) -> None:
    boto3.client("s3").put_object(Bucket=LAKE, Key=MODEL_KEY, Body=_model_archive(auc=0.5))
    event = {"run_id": "run-1", "job_name": "run-1", "model_data_url": f"s3://{LAKE}/{MODEL_KEY}"}
    with pytest.raises(GateFailedError, match="AUC"):
        _register_handler().lambda_handler(event, FakeLambdaContext())
    packages = boto3.client("sagemaker").list_model_packages(ModelPackageGroupName=GROUP)
    assert packages["ModelPackageSummaryList"] == []


def test_a_batch_of_manifests_starts_one_execution(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the training state machine
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="training", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    from functions.training_trigger import handler

    handler.settings.cache_clear()
    handler.training_runs.cache_clear()
    batch = {"Records": [{"messageId": f"m{i}", "body": "{}", "eventSource": "aws:sqs"} for i in range(3)]}
    # When the trigger receives the batch twice (a redelivery)
    first = handler.lambda_handler(batch, FakeLambdaContext())
    second = handler.lambda_handler(batch, FakeLambdaContext())
    # Then no message failed, and one execution exists
    assert first == second == {"batchItemFailures": []}
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert len(executions) == 1
    assert executions[0]["name"].startswith("telco-churn-data-")
