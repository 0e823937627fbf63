"""The data path on the embedded cloud, driven only through boto3 as a user would drive AWS."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from local.demo.sample_data import damaged_csv, load_sample_rows, renamed_column_csv, to_csv
from local.launcher import RunningCloud
from shared.lake.layout import manifest_prefix
from shared.usecase.settings import UseCase, load_usecase

pytestmark = pytest.mark.e2e
USECASE_FILE = Path(__file__).resolve().parents[2] / "usecases" / "telco_churn.toml"


@pytest.fixture(scope="module")
def usecase() -> UseCase:
    return load_usecase(USECASE_FILE)


@pytest.fixture(scope="module")
def rows(usecase: UseCase) -> list[dict[str, str]]:
    return load_sample_rows(usecase)


def manifests(cloud: RunningCloud, usecase: UseCase) -> list[dict[str, Any]]:
    s3, lake = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    listing = s3.list_objects_v2(Bucket=lake, Prefix=manifest_prefix(usecase.name)).get("Contents", [])
    return [json.loads(s3.get_object(Bucket=lake, Key=item["Key"])["Body"].read()) for item in listing]


def wait_for_manifest(cloud: RunningCloud, usecase: UseCase, key: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in manifests(cloud, usecase) if m["source_key"] == key]
        if found:
            assert len(found) == 1, f"{len(found)} manifests for {key}"
            return found[0]
        time.sleep(0.25)
    raise AssertionError(f"no manifest for {key} within {timeout}s")


def curated_lines(cloud: RunningCloud, manifest: dict[str, Any]) -> list[int]:
    s3, lake = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=lake, Key=k)["Body"].read())) for k in manifest["curated_keys"]
    ]
    return pa.concat_tables(tables, promote_options="default").column("_line").to_pylist() if tables else []


def quarantined(cloud: RunningCloud, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    s3, lake = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    records: list[dict[str, Any]] = []
    for key in manifest["quarantine_keys"]:
        if key.endswith(".jsonl"):
            body = s3.get_object(Bucket=lake, Key=key)["Body"].read().decode()
            records += [json.loads(line) for line in body.splitlines() if line]
    return records


def upload(cloud: RunningCloud, key: str, body: bytes) -> dict[str, Any]:
    return cloud.client("s3").put_object(Bucket=cloud.stack_outputs["RawBucketName"], Key=key, Body=body)  # type: ignore[no-any-return]


def test_damaged_upload_reconciles_row_for_row(
    cloud: RunningCloud, usecase: UseCase, rows: list[dict[str, str]]
) -> None:
    # Given a damaged copy of the sample data in which a known number of rows are broken
    damaged = damaged_csv(rows, usecase.contract, every=97)
    # When it is uploaded to the raw bucket
    upload(cloud, "e2e/damaged.csv.gz", damaged.body)
    manifest = wait_for_manifest(cloud, usecase, "e2e/damaged.csv.gz")
    # Then every row is curated or quarantined, exactly once, and the counts say so
    assert manifest["status"] == "accepted"
    assert manifest["rows_in"] == damaged.rows
    assert manifest["rows_quarantined"] == damaged.bad_rows
    curated = curated_lines(cloud, manifest)
    bad = [record["line"] for record in quarantined(cloud, manifest)]
    assert len(curated) == manifest["rows_curated"]
    assert len(bad) == manifest["rows_quarantined"]
    assert set(curated).isdisjoint(bad)
    assert sorted(curated + bad) == list(range(2, damaged.rows + 2))  # line 1 is the header
    # And each quarantined row says which field failed and why
    for record in quarantined(cloud, manifest):
        assert record["errors"]
        assert all(error["reason"] for error in record["errors"])


def test_the_same_upload_twice_has_one_effect(
    cloud: RunningCloud, usecase: UseCase, rows: list[dict[str, str]]
) -> None:
    # Given the sample data uploaded and ingested once
    body = to_csv(rows)
    first = upload(cloud, "e2e/clean.csv", body)
    manifest = wait_for_manifest(cloud, usecase, "e2e/clean.csv")
    assert manifest["rows_curated"] == len(rows)
    assert manifest["rows_quarantined"] == 0
    # When the same bytes are uploaded again (a new version) and S3 redelivers the first event
    second = upload(cloud, "e2e/clean.csv", body)
    assert second["VersionId"] != first["VersionId"]
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": manifest["ingested_at"],
                "s3": {
                    "bucket": {"name": cloud.stack_outputs["RawBucketName"]},
                    "object": {
                        "key": "e2e/clean.csv",
                        "versionId": first["VersionId"],
                        "eTag": first["ETag"].strip('"'),
                        "size": len(body),
                    },
                },
            }
        ]
    }
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.stack_outputs["IngestFunctionName"], Payload=json.dumps(event).encode()
    )
    assert "FunctionError" not in response, response["Payload"].read()[:3000]
    # Then there is still one manifest and no curated row twice
    time.sleep(1.0)
    assert len([m for m in manifests(cloud, usecase) if m["source_key"] == "e2e/clean.csv"]) == 1
    lines = curated_lines(cloud, wait_for_manifest(cloud, usecase, "e2e/clean.csv"))
    assert len(lines) == len(set(lines)) == len(rows)
    s3, lake = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    curated_files = s3.list_objects_v2(Bucket=lake, Prefix=f"curated/{usecase.name}/").get("Contents", [])
    assert sum(1 for item in curated_files if manifest["object_id"] in item["Key"]) == 1


def test_a_renamed_column_rejects_the_whole_object(
    cloud: RunningCloud, usecase: UseCase, rows: list[dict[str, str]]
) -> None:
    # Given the sample with one required column renamed
    body, old, new = renamed_column_csv(rows, usecase.contract)
    # When it is uploaded
    upload(cloud, "e2e/renamed.csv", body)
    manifest = wait_for_manifest(cloud, usecase, "e2e/renamed.csv")
    # Then nothing is curated, every row is counted as quarantined, and the report names the change
    assert manifest["status"] == "rejected"
    assert manifest["rows_curated"] == 0
    assert manifest["rows_quarantined"] == manifest["rows_in"] == len(rows)
    assert old in manifest["reason"]
    assert new in manifest["reason"]
    s3, lake = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    report_key = next(k for k in manifest["quarantine_keys"] if k.endswith("report.json"))
    report = json.loads(s3.get_object(Bucket=lake, Key=report_key)["Body"].read())
    assert old in json.dumps(report)


def test_parquet_and_json_lines_uploads_are_curated(
    cloud: RunningCloud, usecase: UseCase, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    # Given the sample as Parquet (typed) and as gzipped JSON Lines
    import gzip

    sample = rows[:500]
    table = pa.Table.from_pylist([{k: (None if v == "" else v) for k, v in row.items()} for row in sample]).cast(
        _typed_schema(usecase)
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    jsonl = "\n".join(json.dumps(row) for row in table.to_pylist()).encode()
    # When both are uploaded
    upload(cloud, "e2e/sample.parquet", sink.getvalue())
    upload(cloud, "e2e/sample.jsonl.gz", gzip.compress(jsonl))
    # Then both are curated in full
    for key in ("e2e/sample.parquet", "e2e/sample.jsonl.gz"):
        manifest = wait_for_manifest(cloud, usecase, key)
        assert (manifest["status"], manifest["rows_curated"], manifest["rows_quarantined"]) == ("accepted", 500, 0), (
            key,
            manifest["reason"],
        )


def test_an_event_the_function_cannot_handle_lands_on_the_dead_letter_queue(cloud: RunningCloud) -> None:
    # Given an event naming an object that does not exist (the function cannot read it)
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-01-01T00:00:00.000Z",
                "s3": {
                    "bucket": {"name": cloud.stack_outputs["RawBucketName"]},
                    "object": {"key": "e2e/missing.csv", "eTag": "0" * 32, "size": 10},
                },
            }
        ]
    }
    # When it is delivered asynchronously, as S3 delivers
    cloud.client("lambda").invoke(
        FunctionName=cloud.stack_outputs["IngestFunctionName"],
        InvocationType="Event",
        Payload=json.dumps(event).encode(),
    )
    # Then after Lambda's retries the event is on the dead-letter queue, with the error
    sqs, queue = cloud.client("sqs"), cloud.stack_outputs["IngestDeadLetterQueueUrl"]
    deadline = time.monotonic() + 30
    messages: list[dict[str, Any]] = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    assert messages, "nothing reached the dead-letter queue"
    record = json.loads(messages[0]["Body"])
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "e2e/missing.csv"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorMessage"]


def _typed_schema(usecase: UseCase) -> pa.Schema:
    types = {"int": pa.int64(), "float": pa.float64(), "category": pa.string(), "string": pa.string()}
    return pa.schema([(c.name, types[c.type.value]) for c in usecase.contract.columns])
