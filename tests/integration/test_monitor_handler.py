"""The monitor function under moto: a scheduled run writes one report and latest.json; a rerun rewrites them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from shared.deployment.adapters import DeploymentStore
from shared.deployment.state import DeploymentState, ModelRef
from shared.lake import layout as lake
from tests.fakes import FakeLambdaContext

REPO = Path(__file__).resolve().parents[2]
USECASE, LAKE, GROUP, TABLE = "telco_churn", "sluice-lake", "sluice-telco-churn", "sluice-deployments"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from shared.usecase.settings import load_usecase
    from tests.unit.conftest import telco_frame
    from training.baseline import build_baseline

    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_TASK_ROOT": str(REPO),
        "SLUICE_USECASE_FILE": "usecases/telco_churn.toml",
        "DEPLOYMENT_TABLE": TABLE,
        "LAKE_BUCKET": LAKE,
        "MODEL_PACKAGE_GROUP": GROUP,
        "POWERTOOLS_SERVICE_NAME": "monitor",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    usecase = load_usecase(REPO / "usecases" / "telco_churn.toml")
    frame = telco_frame().head(2000).reset_index(drop=True)
    rng = np.random.default_rng(0)
    scores = np.clip(0.3 + 0.4 * (frame["churn"] == "Yes") + rng.normal(0, 0.15, len(frame)), 0.01, 0.99)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "usecase", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "usecase", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=LAKE)
        baseline_key = lake.model_file_key(USECASE, "run-1", "baseline.json")
        baseline = build_baseline(frame.head(1000), scores[:1000], usecase, 0.5)
        s3.put_object(Bucket=LAKE, Key=baseline_key, Body=baseline.model_dump_json().encode())
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        statistics = {"ContentType": "application/json", "S3Uri": f"s3://{LAKE}/{baseline_key}"}
        arn = sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            DriftCheckBaselines={"ModelDataQuality": {"Statistics": statistics}},
        )["ModelPackageArn"]
        champion = ModelRef(version=1, package_arn=arn, run_id="run-1", onnx_key="k", onnx_sha256="0" * 64,
                            threshold=0.5)  # fmt: skip
        DeploymentStore(dynamodb, TABLE).put(DeploymentState(usecase=USECASE, champion=champion), expected_revision=0)
        features = [c.name for c in usecase.contract.features]
        rows = frame.iloc[1000:]
        for hour in (2, 1):
            at = NOW - timedelta(hours=hour)
            lines = []
            for i, (_, row) in enumerate(rows.iloc[(2 - hour) * 500 : (3 - hour) * 500].iterrows()):
                time = at + timedelta(seconds=5 * i)
                lines.append({"usecase": USECASE, "request_id": f"r{hour}-{i}", "index": 0,
                              "entity_id": str(row["rownames"]), "features": {f: row[f] for f in features},
                              "score": float(scores[1000 + (2 - hour) * 500 + i]), "threshold": 0.5,
                              "model_version": 1, "variant": "champion", "served": True,
                              "time": time.isoformat()})  # fmt: skip
                if i % 2 == 0:
                    seen = (time + timedelta(minutes=5)).isoformat()
                    label = {"request_id": f"r{hour}-{i}", "label": row["churn"], "observed_at": seen,
                             "received_at": seen}  # fmt: skip
                    key = f"{lake.feedback_day_prefix(USECASE, time.date())}r{hour}-{i}.json"
                    s3.put_object(Bucket=LAKE, Key=key, Body=json.dumps(label).encode())
            body = "".join(json.dumps(line, default=str) + "\n" for line in lines).encode()
            s3.put_object(Bucket=LAKE, Key=lake.prediction_log_key(USECASE, at=at, object_id=f"o{hour}"), Body=body)
        yield {"s3": s3}


def _keys(s3: Any, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=LAKE, Prefix=prefix).get("Contents", []))


def test_a_scheduled_run_writes_one_report_and_a_rerun_rewrites_it(aws: dict[str, Any]) -> None:
    from functions.monitor import handler

    handler.service.cache_clear()
    s3 = aws["s3"]
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-20T12:00:00Z"}
    # When the schedule starts the function, twice
    first = handler.lambda_handler(event, FakeLambdaContext())
    joined = {k: s3.get_object(Bucket=LAKE, Key=k)["Body"].read() for k in _keys(s3, lake.joined_prefix(USECASE))}
    second = handler.lambda_handler(event, FakeLambdaContext())
    # Then one report of run 20261120T1200Z, latest.json pointing at it, and the joined set unchanged
    assert first == second
    assert first["run_id"] == "20261120T1200Z"
    assert _keys(s3, lake.report_prefix(USECASE)) == sorted(
        [first["report_json_key"], first["report_html_key"], lake.latest_report_key(USECASE)]
    )
    report = json.loads(s3.get_object(Bucket=LAKE, Key=first["report_json_key"])["Body"].read())
    assert report["models"][0]["has_baseline"] is True
    assert report["windows"][0]["labels"] == {"1": 250}
    assert {k: s3.get_object(Bucket=LAKE, Key=k)["Body"].read() for k in joined} == joined
    assert first["models"] == ["v1 (champion)"]


def test_the_cli_event_picks_the_windows(aws: dict[str, Any]) -> None:
    from functions.monitor import handler

    handler.service.cache_clear()
    summary = handler.lambda_handler({"window_hours": [2], "now": NOW.isoformat()}, FakeLambdaContext())
    assert summary["run_id"] == "20261120T1200Z-w2"
    assert summary["windows_hours"] == [2.0]
