"""The backfill machine's steps under moto (in memory): plan writes the map's items, each item is backfilled by the
object function, finish reconciles and switches (or fails with the reason), as the state machine chains them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.backfill.exceptions import BackfillIncompleteError, ContractVersionMismatchError
from shared.backfill.runs import execution_name
from shared.backfill.service import SWITCH_ACTION
from shared.deployment.adapters import DeploymentStore
from shared.lake import layout as lake
from shared.lake.adapters import S3ObjectStore
from shared.lake.pointer import read_pointer
from tests.fakes import FakeLambdaContext
from tests.integration.test_backfill_handler import LAKE, RAW, _ingest_old_version, _keys, _usecase_file

TABLE = "sluice-deployments"
USECASE = "loan_default"
RUN = execution_name(USECASE, "2.2.0")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SLUICE_USECASE_FILE": str(_usecase_file(tmp_path, "2.2.0", tightened=True)),
        "LAKE_BUCKET": LAKE,
        "DEPLOYMENT_TABLE": TABLE,
        "SLUICE_WORKDIR": str(tmp_path),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (RAW, LAKE):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "usecase", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "usecase", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        from functions.backfill_finish import handler as finish
        from functions.backfill_object import handler as one
        from functions.backfill_plan import handler as plan

        caches = (plan.settings, plan.usecase, plan.object_store, one.settings, one.usecase, one.object_store)
        for factory in (*caches, finish.settings, finish.client):
            factory.cache_clear()
        yield s3
        for factory in (plan.object_store, one.object_store, finish.client):
            factory.cache_clear()


def _plan(version: str = "2.2.0", *, switch: bool = True) -> dict[str, Any]:
    from functions.backfill_plan.handler import lambda_handler

    run = execution_name(USECASE, version)
    event = {"contract_version": version, "run": run, "switch": switch, "requested_by": "cli:test"}
    return lambda_handler(event, FakeLambdaContext())


def _items(s3: Any, planned: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(s3.get_object(Bucket=LAKE, Key=planned["items_key"])["Body"].read())


def _backfill(item: dict[str, Any]) -> dict[str, Any]:
    from functions.backfill_object.handler import lambda_handler

    return lambda_handler(item, FakeLambdaContext())


def _finish(planned: dict[str, Any]) -> dict[str, Any]:
    from functions.backfill_finish.handler import lambda_handler

    return lambda_handler(planned, FakeLambdaContext())


def test_a_run_plans_backfills_and_switches_with_an_audit_event(aws: Any, tmp_path: Path) -> None:
    # Given an object ingested under 2.1.0
    manifest_key, object_id = _ingest_old_version(aws, tmp_path)

    # When the machine's steps run: plan, each item through the object function, finish
    planned = _plan()
    items = _items(aws, planned)
    outcomes = [_backfill(item) for item in items]
    summary = _finish(planned)

    # Then the plan wrote one item for the pending object, under the run's folder
    assert planned["items_key"] == lake.backfill_items_key(USECASE, "2.2.0", RUN)
    assert items == [
        {
            "manifest_key": manifest_key,
            "contract_version": "2.2.0",
            "object_id": object_id,
            "source_key": items[0]["source_key"],
        }
    ]
    assert (planned["objects"], planned["to_run"]) == (1, 1)
    # And it reconciled, 40 rows in = 30 curated + 10 quarantined, and training's pointer moved with an event
    assert [o["state"] for o in outcomes] == ["reconciled"]
    assert (summary["rows_in"], summary["rows_curated"], summary["rows_quarantined"]) == (40, 30, 10)
    assert summary["switched"]
    assert summary["reconciled"] == 1
    pointer = read_pointer(S3ObjectStore(aws), LAKE, USECASE)
    assert pointer is not None
    assert pointer.contract_version == "2.2.0"
    event = DeploymentStore(boto3.client("dynamodb"), TABLE).latest_event(USECASE, action=SWITCH_ACTION)
    assert event is not None
    assert event["to_contract"] == "2.2.0"
    assert event["actor"] == "cli:test"

    # When the same run is planned again, Then it has nothing left to do
    assert _items(aws, _plan()) == []


def test_no_switch_reconciles_and_leaves_the_pointer(aws: Any, tmp_path: Path) -> None:
    # Given a backfilled object, the run asking not to switch
    _ingest_old_version(aws, tmp_path)
    planned = _plan(switch=False)
    for item in _items(aws, planned):
        _backfill(item)

    # When it finishes, Then it reconciles and the pointer is not written
    summary = _finish(planned)
    assert summary["reconciled"] == 1
    assert not summary["switched"]
    assert read_pointer(S3ObjectStore(aws), LAKE, USECASE) is None


def test_a_failed_object_fails_the_finish_with_its_recorded_reason(aws: Any, tmp_path: Path) -> None:
    # Given a run whose only object failed and was recorded by the map's Catch (as RecordFailure writes it)
    _ingest_old_version(aws, tmp_path)
    planned = _plan()
    (item,) = _items(aws, planned)
    cause = json.dumps({"errorMessage": "cannot read s3://sluice-raw/loans/2024-03-01.csv: NoSuchVersion"})
    aws.put_object(
        Bucket=LAKE,
        Key=lake.backfill_failure_key(USECASE, "2.2.0", RUN, item["object_id"]),
        Body=json.dumps({"item": item, "error": "StorageError", "cause": cause}).encode(),
    )

    # When the finish step runs, Then it raises with the object and its error; the pointer is untouched
    with pytest.raises(
        BackfillIncompleteError, match=r"1 of 1 objects .*loans/2024-03-01.csv: StorageError: .*NoSuchVersion"
    ):
        _finish(planned)
    assert read_pointer(S3ObjectStore(aws), LAKE, USECASE) is None
    assert _keys(aws, lake.curated_pointer_key(USECASE)) == []


def test_a_version_the_use_case_file_does_not_carry_is_refused_at_plan(aws: Any, tmp_path: Path) -> None:
    # Given an ingested object and a deployed use-case file carrying 2.2.0
    _ingest_old_version(aws, tmp_path)

    # When a run for 3.0.0 is planned, Then it is refused and no items file is written
    with pytest.raises(ContractVersionMismatchError, match=r"carries contract 2\.2\.0, not 3\.0\.0"):
        _plan("3.0.0")
    assert _keys(aws, lake.backfill_run_prefix(USECASE)) == []
