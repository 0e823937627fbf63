"""The backfill handler under moto (in memory): an ingested object version re-ingested under a new contract, once."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from shared.ingest.service import SourceObject, ingest_object
from shared.lake import layout as lake
from shared.lake.adapters import S3ObjectStore
from shared.usecase.settings import load_usecase
from tests.fakes import FakeLambdaContext

RAW, LAKE = "sluice-raw", "sluice-lake"
KEY = "loans/2024-03-01.csv"
INGESTED_AT = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
CONTRACT = """
name = "loan_default"

[contract]
version = "{version}"
entity_id = "account_id"
label = "defaulted"
positive_class = "yes"

[[contract.columns]]
name = "account_id"
type = "int"

[[contract.columns]]
name = "defaulted"
type = "category"
allowed = ["no", "yes"]

[[contract.columns]]
name = "balance"
type = "float"
{balance_max}
{optional}
"""
OPTIONAL_TIER = """
[[contract.columns]]
name = "tier"
type = "category"
allowed = ["gold", "silver"]
required = false
nullable = true
"""


def _usecase_file(directory: Path, version: str, *, tightened: bool) -> Path:
    path = directory / f"loan_default-{version}.toml"
    path.write_text(
        CONTRACT.format(
            version=version,
            balance_max="max = 300" if tightened else "",
            optional=OPTIONAL_TIER if tightened else "",
        )
    )
    return path


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("SLUICE_USECASE_FILE", str(_usecase_file(tmp_path, "2.2.0", tightened=True)))
    monkeypatch.setenv("LAKE_BUCKET", LAKE)
    monkeypatch.setenv("SLUICE_WORKDIR", str(tmp_path))
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "backfill")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (RAW, LAKE):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        from functions.backfill_object import handler

        for factory in (handler.settings, handler.usecase, handler.object_store):
            factory.cache_clear()
        yield s3
        handler.object_store.cache_clear()


def _ingest_old_version(s3: Any, tmp_path: Path) -> tuple[str, str]:
    """40 rows uploaded and ingested under 2.1.0; then the key is overwritten (the old version is retained)."""
    body = "account_id,defaulted,balance\n" + "".join(
        f"{i},{'yes' if i % 4 == 0 else 'no'},{i * 10.0}\n" for i in range(1, 41)
    )
    put = s3.put_object(Bucket=RAW, Key=KEY, Body=body.encode())
    source = SourceObject(bucket=RAW, key=KEY, version_id=put["VersionId"], etag=put["ETag"].strip('"'))
    old = load_usecase(_usecase_file(tmp_path, "2.1.0", tightened=False))
    manifest = ingest_object(
        source, usecase=old, store=S3ObjectStore(s3), lake_bucket=LAKE, now=INGESTED_AT, workdir=tmp_path
    )
    s3.put_object(Bucket=RAW, Key=KEY, Body=b"account_id,defaulted,balance\n1,no,1.0\n")
    return lake.manifest_key(old.name, manifest.object_id), manifest.object_id


def _keys(s3: Any, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=LAKE, Prefix=prefix).get("Contents", []))


def test_an_object_is_backfilled_from_its_retained_version_and_a_second_call_writes_nothing(
    aws: Any, tmp_path: Path
) -> None:
    # Given an object version ingested under 2.1.0, since overwritten in the raw bucket
    from functions.backfill_object.handler import lambda_handler

    manifest_key, object_id = _ingest_old_version(aws, tmp_path)
    live = {key: aws.get_object(Bucket=LAKE, Key=key)["ETag"] for key in _keys(aws, "")}

    # When the handler backfills it under 2.2.0 (balance at most 300, an optional tier column)
    event = {"manifest_key": manifest_key, "contract_version": "2.2.0"}
    outcome = lambda_handler(event, FakeLambdaContext())

    # Then the retained version is read: 30 rows curated, 10 quarantined, reconciled with ingest's 40
    assert outcome["state"] == "reconciled"
    assert (outcome["rows_in"], outcome["rows_curated"], outcome["rows_quarantined"]) == (40, 30, 10)
    assert not outcome["skipped"]
    versioned = _keys(aws, lake.curated_prefix("loan_default", "2.2.0"))
    assert versioned == [f"curated/loan_default/contract=2.2.0/ingest_date=2024-03-01/{object_id}.parquet"]
    table = pq.read_table(io.BytesIO(aws.get_object(Bucket=LAKE, Key=versioned[0])["Body"].read()))
    assert set(table.column("_ingested_at").to_pylist()) == {INGESTED_AT}
    assert "tier" in table.column_names
    assert _keys(aws, lake.quarantine_prefix("loan_default", "2.2.0"))
    record = json.loads(aws.get_object(Bucket=LAKE, Key=outcome["backfill_manifest_key"])["Body"].read())
    assert record["contract_version"] == "2.2.0"
    # And the live set is as ingest left it
    assert {key: aws.get_object(Bucket=LAKE, Key=key)["ETag"] for key in live} == live

    # When the same object is asked for again
    again = lambda_handler(event, FakeLambdaContext())

    # Then it is reported done, and nothing new is written
    assert again["skipped"]
    assert again["state"] == "reconciled"
    assert _keys(aws, lake.curated_prefix("loan_default", "2.2.0")) == versioned


def test_a_use_case_file_of_another_version_is_refused(aws: Any, tmp_path: Path) -> None:
    # Given an ingested object, and a caller asking for a version the deployed use-case file does not carry
    from functions.backfill_object.handler import lambda_handler
    from shared.backfill.exceptions import ContractVersionMismatchError

    manifest_key, _ = _ingest_old_version(aws, tmp_path)

    # When the handler is invoked, Then it refuses and writes nothing under the version
    with pytest.raises(ContractVersionMismatchError):
        lambda_handler({"manifest_key": manifest_key, "contract_version": "3.0.0"}, FakeLambdaContext())
    assert _keys(aws, lake.manifest_prefix("loan_default", "3.0.0")) == []
