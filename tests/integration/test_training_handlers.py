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

from shared.registry.exceptions import GateFailedError
from tests.fakes import FakeLambdaContext

REPO = Path(__file__).resolve().parents[2]
LAKE, GROUP = "sluice-lake", "sluice-telco-churn"
MODEL_KEY = "sagemaker/telco_churn/jobs/run-1/output/model.tar.gz"
ONNX = b"onnx-bytes"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def _model_archive(auc: float) -> bytes:
    files = {
        "model.onnx": ONNX,
        "metrics.json": json.dumps({"auc": auc, "ece": 0.02, "parity_ok": True}).encode(),
        "lineage.json": json.dumps(
            {
                "onnx_sha256": hashlib.sha256(ONNX).hexdigest(),
                "training_set_hash": "abc",
                "contract_version": "1.0.0",
                "code_version": "c0de",
            }
        ).encode(),
    }
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
