"""Training on the embedded cloud: upload → the training pipeline → a registered model package.

Driven only through boto3: Step Functions runs the synthesized state machine, SageMaker runs the
training entry point under the container contract, and the registry holds the result.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from local.launcher import RunningCloud
from shared.usecase.settings import load_usecase
from tests.e2e.conftest import Trained, wait_for_execution

pytestmark = pytest.mark.e2e
USECASE = load_usecase(Path(__file__).resolve().parents[2] / "usecases" / "telco_churn.toml")


def read_s3(cloud: RunningCloud, uri_or_bucket: str, key: str | None = None) -> bytes:
    if key is None:
        parsed = urlparse(uri_or_bucket)
        uri_or_bucket, key = parsed.netloc, parsed.path.lstrip("/")
    return cloud.client("s3").get_object(Bucket=uri_or_bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


def test_upload_then_training_pipeline_registers_a_model_with_metrics_and_lineage(
    cloud: RunningCloud, trained: Trained
) -> None:
    # Given the sample data ingested into the lake, and When the training pipeline was started explicitly
    outputs = cloud.stack_outputs
    execution = trained.execution

    # Then it succeeds and a model package exists in the use case's group
    assert execution["status"] == "SUCCEEDED", execution.get("cause") or execution.get("error")
    sagemaker = cloud.client("sagemaker")
    packages = sagemaker.list_model_packages(ModelPackageGroupName=outputs["ModelPackageGroupName"])[
        "ModelPackageSummaryList"
    ]
    assert packages, "no model package was registered"
    registered = json.loads(execution["output"])["registration"]
    assert registered["version"] == trained.version
    assert registered["approval_status"] == "PendingManualApproval"  # the use case's policy is manual
    package = sagemaker.describe_model_package(ModelPackageName=registered["package_arn"])
    properties = package["CustomerMetadataProperties"]

    # And its metrics are attached and sane
    metrics_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    metrics = json.loads(read_s3(cloud, metrics_uri))
    assert metrics["auc"] > 0.75
    assert metrics["parity"]["ok"] is True

    # And its ONNX artifact is in S3 with the recorded sha256, and lineage names the data it came from
    onnx = read_s3(cloud, outputs["LakeBucketName"], properties["onnx_s3_key"])
    assert hashlib.sha256(onnx).hexdigest() == properties["onnx_sha256"]
    lineage = json.loads(read_s3(cloud, outputs["LakeBucketName"], properties["lineage_s3_key"]))
    assert lineage["onnx_sha256"] == properties["onnx_sha256"]
    assert lineage["contract_version"] == USECASE.contract.version
    assert any(m["source_key"] == "e2e/training.csv" for m in lineage["manifests"])


def test_a_failed_training_run_ends_with_a_reason_and_a_notification(cloud: RunningCloud) -> None:
    outputs = cloud.stack_outputs
    # Given an operator subscribed to the alarm topic (here: a queue)
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    queue_url = sqs.create_queue(QueueName="e2e-operator")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=outputs["AlarmTopicArn"], Protocol="sqs", Endpoint=queue_arn)
    # When training is asked for a cutoff before any data arrived
    sfn = cloud.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=outputs["TrainingStateMachineArn"],
        name=f"e2e-empty-{int(time.time())}",
        input=json.dumps({"cutoff": "2000-01-01T00:00:00+00:00"}),
    )
    execution = wait_for_execution(cloud, started["executionArn"])
    # Then the execution fails with the reason
    assert execution["status"] == "FAILED"
    assert "2000-01-01" in (execution.get("cause") or "") or "cutoff" in (execution.get("cause") or "").lower()
    # And the operator is told, with the same reason
    deadline = time.monotonic() + 10
    messages: list[dict[str, Any]] = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert messages, "no notification reached the alarm topic's subscriber"
    notification = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert notification["usecase"] == USECASE.name
    assert notification["cause"]
