"""Backfill under a new contract version: a versioned curated set that reconciles, keeps each row's ingest time,
leaves the live set alone, resumes after a stop, and becomes training's set in one recorded switch."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from shared.backfill.exceptions import BackfillIncompleteError, ContractVersionMismatchError
from shared.backfill.service import (
    SWITCH_ACTION,
    ObjectState,
    backfill_object,
    plan_backfill,
    require_version,
    switch_curated_set,
)
from shared.ingest.service import SourceObject, ingest_object
from shared.lake import layout as lake
from shared.lake.exceptions import StorageError
from shared.lake.manifest import Manifest
from shared.lake.pointer import read_pointer
from shared.training.training_set import build_training_set
from shared.usecase.settings import UseCase
from tests.fakes import InMemoryAuditLog, InMemoryObjectStore

RAW, LAKE = "raw", "lake"
DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
CUTOFF = datetime(2024, 3, 10, 0, 0, tzinfo=UTC)
AFTER = datetime(2024, 3, 20, 9, 0, tzinfo=UTC)
OLD, NEW = "2.1.0", "2.2.0"
BALANCE_MAX = 300.0


def _usecase(version: str) -> UseCase:
    """Loan defaults; 2.2.0 adds an optional ``tier`` column and tightens ``balance`` to at most 300."""
    balance: dict[str, Any] = {"name": "balance", "type": "float", "nullable": True}
    columns: list[dict[str, Any]] = [
        {"name": "account_id", "type": "int"},
        {"name": "defaulted", "type": "category", "allowed": ["no", "yes"]},
        balance,
        {"name": "region", "type": "category", "allowed": ["north", "south"]},
    ]
    if version == NEW:
        balance["max"] = BALANCE_MAX
        columns.append(
            {"name": "tier", "type": "category", "allowed": ["gold", "silver"], "required": False, "nullable": True}
        )
    contract = {
        "version": version,
        "entity_id": "account_id",
        "label": "defaulted",
        "positive_class": "yes",
        "columns": columns,
    }
    return UseCase.model_validate({"name": "loan_default", "contract": contract})


def _csv(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    return "\n".join([",".join(header)] + [",".join(str(r[c]) for c in header) for r in rows]) + "\n"


def _rows(n: int = 40) -> list[dict[str, Any]]:
    return [
        {
            "account_id": i,
            "defaulted": "yes" if i % 4 == 0 else "no",
            "balance": float(i * 10),
            "region": "north" if i % 2 else "south",
        }
        for i in range(1, n + 1)
    ]


def _upload(  # noqa: PLR0917 - a test's shorthand
    store: InMemoryObjectStore, usecase: UseCase, key: str, rows: list[dict[str, Any]], now: datetime, tmp: Path
) -> Manifest:
    body = _csv(rows).encode()
    version_id = f"v-{hashlib.md5(body, usedforsecurity=False).hexdigest()[:8]}"
    store.put(RAW, key, body, version_id=version_id)
    source = SourceObject(bucket=RAW, key=key, version_id=version_id, etag=hashlib.md5(body).hexdigest())
    return ingest_object(source, usecase=usecase, store=store, lake_bucket=LAKE, now=now, workdir=tmp)


def _run(store: InMemoryObjectStore, usecase: UseCase, tmp: Path) -> list[Any]:
    plan = plan_backfill(usecase=usecase.name, contract_version=usecase.contract.version, store=store, lake_bucket=LAKE)
    return [
        backfill_object(o.manifest_key, usecase=usecase, store=store, lake_bucket=LAKE, workdir=tmp)
        for o in plan.to_run
    ]


def _switch(store: InMemoryObjectStore, audit: InMemoryAuditLog) -> Any:
    return switch_curated_set(
        usecase="loan_default", contract_version=NEW, store=store, lake_bucket=LAKE, audit=audit, actor="test"
    )


def _live(store: InMemoryObjectStore) -> dict[tuple[str, str], bytes]:
    """The live set: what ingest wrote (curated, quarantine, manifests), backfills' folders aside."""
    areas = tuple(lake.area_prefix(area) for area in lake.INGEST_AREAS)
    return {
        k: v
        for k, v in store.objects.items()
        if k[0] == LAKE and k[1].startswith(areas) and lake.CONTRACT_PARTITION not in k[1]
    }


def _parquet_rows(store: InMemoryObjectStore, keys: list[str]) -> list[dict[str, Any]]:
    return [row for key in keys for row in pq.read_table(io.BytesIO(store.body(LAKE, key))).to_pylist()]


def _training_rows(store: InMemoryObjectStore, usecase: UseCase, run_id: str) -> dict[int, dict[str, Any]]:
    keys = [lake.training_set_train_key(usecase.name, run_id), lake.training_set_holdout_key(usecase.name, run_id)]
    return {row["account_id"]: row for row in _parquet_rows(store, keys)}


def test_a_tighter_range_and_an_optional_column_reconcile_and_training_switches_to_them(tmp_path: Path) -> None:
    # Given 41 rows ingested under 2.1.0 on two days (balances up to 400)
    old, new, store, audit = _usecase(OLD), _usecase(NEW), InMemoryObjectStore(), InMemoryAuditLog()
    base = _upload(store, old, "loans/base.csv", _rows(), DAY1, tmp_path)
    fix = _upload(store, old, "loans/fix.csv", [{**_rows()[1], "defaulted": "yes"}], DAY1 + timedelta(days=2), tmp_path)
    live_before = _live(store)
    before = build_training_set(usecase=new, store=store, lake_bucket=LAKE, cutoff=AFTER, run_id="before")

    # When every object is backfilled under 2.2.0
    outcomes = _run(store, new, tmp_path)

    # Then each object reconciles: rows in as ingest counted them = curated + quarantined under the version
    assert [o.state for o in outcomes] == [ObjectState.RECONCILED, ObjectState.RECONCILED]
    by_source = {o.source_key: o for o in outcomes}
    assert (by_source["loans/base.csv"].rows_curated, by_source["loans/base.csv"].rows_quarantined) == (30, 10)
    assert (by_source["loans/fix.csv"].rows_curated, by_source["loans/fix.csv"].rows_quarantined) == (1, 0)
    backfilled = Manifest.model_validate_json(store.body(LAKE, lake.manifest_key(new.name, base.object_id, NEW)))
    assert backfilled.contract_version == NEW
    assert backfilled.ingested_at == base.ingested_at
    # And the rows above the new maximum are quarantined under the version, with their reason
    quarantine = lake.quarantine_rows_key(new.name, ingest_date=DAY1.date(), object_id=base.object_id, versioned=NEW)
    assert backfilled.quarantine_keys == (quarantine,)
    reasons = store.body(LAKE, quarantine).decode()
    assert reasons.count("above the maximum 300") == 10
    # And the curated rows keep their original ingest time and date
    assert all(
        k.startswith(f"curated/loan_default/contract={NEW}/ingest_date=2024-03-01/") for k in backfilled.curated_keys
    )
    rows = _parquet_rows(store, list(backfilled.curated_keys))
    assert {row["_ingested_at"] for row in rows} == {DAY1}
    assert max(row["balance"] for row in rows) <= BALANCE_MAX
    # And the live set is untouched, and training still reads it before the switch
    assert _live(store) == live_before
    assert read_pointer(store, LAKE, new.name) is None
    assert before.curated_version is None
    assert before.rows_read == 41
    unchanged = build_training_set(usecase=new, store=store, lake_bucket=LAKE, cutoff=AFTER, run_id="still-live")
    assert unchanged.curated_version is None
    assert unchanged.rows_read == 41

    # When the curated set is switched
    pointer = _switch(store, audit)

    # Then training reads the new version: the rows now out of range are gone, the optional column is there
    assert pointer.contract_version == NEW
    assert pointer.previous_version is None
    after = build_training_set(usecase=new, store=store, lake_bucket=LAKE, cutoff=AFTER, run_id="after")
    assert after.curated_version == NEW
    assert after.rows_read == 31
    assert {m.manifest_key for m in after.manifests_used} == {
        lake.manifest_key(new.name, base.object_id, NEW),
        lake.manifest_key(new.name, fix.object_id, NEW),
    }
    trained = _training_rows(store, new, "after")
    assert set(trained) == set(range(1, 31))
    assert trained[2]["defaulted"] == "yes"
    assert all("tier" in row and row["tier"] is None for row in trained.values())
    # And the switch is in the audit history
    [event] = audit.events
    assert event["action"] == SWITCH_ACTION
    assert (event["from_contract"], event["to_contract"], event["objects"], event["backfilled"]) == ("live", NEW, 2, 2)


def test_the_point_in_time_holds_on_the_backfilled_set(tmp_path: Path) -> None:
    # Given, under 2.1.0, 40 accounts before the cutoff, an in-time update of account 2, and after the cutoff an
    # upload that flips account 1's label and adds account 99; all backfilled under 2.2.0 and switched
    old, new, store = _usecase(OLD), _usecase(NEW), InMemoryObjectStore()
    _upload(store, old, "loans/base.csv", _rows(), DAY1, tmp_path)
    _upload(store, old, "loans/fix.csv", [{**_rows()[1], "defaulted": "yes"}], DAY1 + timedelta(days=2), tmp_path)
    late_rows = [{**_rows()[0], "defaulted": "yes"}, {**_rows()[0], "account_id": 99}]
    late = _upload(store, old, "loans/late.csv", late_rows, AFTER, tmp_path)
    _run(store, new, tmp_path)
    _switch(store, InMemoryAuditLog())

    # When the training set is built as of the cutoff
    report = build_training_set(usecase=new, store=store, lake_bucket=LAKE, cutoff=CUTOFF, run_id="run-1")

    # Then nothing from after the cutoff leaks in: account 1 keeps its label, 99 is absent, 2 is updated
    rows = _training_rows(store, new, "run-1")
    assert report.curated_version == NEW
    assert rows[1]["defaulted"] == "no"
    assert 99 not in rows
    assert rows[2]["defaulted"] == "yes"
    assert rows[2]["_source_key"] == "loans/fix.csv"
    # And the late rows are counted, from the backfilled manifest of the late object
    assert report.rows_excluded_late == 2
    assert report.manifests_late == (lake.manifest_key(new.name, late.object_id, NEW),)
    assert report.entities_deduplicated == 1
    assert report.rows_train + report.rows_holdout == 30


class _StopsOnce(InMemoryObjectStore):
    """A store whose first write of one object's backfill manifest fails (the function stopped there)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_at: str | None = None

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        if key == self.stop_at:
            self.stop_at = None
            raise StorageError("the function timed out")
        super().put_json(bucket, key, document)


def test_a_backfill_stopped_half_way_resumes_without_duplicates(tmp_path: Path) -> None:
    # Given three objects under 2.1.0, and a backfill that stops on the second, after writing its curated file
    old, new, store, audit = _usecase(OLD), _usecase(NEW), _StopsOnce(), InMemoryAuditLog()
    for n in range(3):
        _upload(
            store, old, f"loans/part-{n}.csv", _rows(40)[n * 10 + 10 : n * 10 + 20], DAY1 + timedelta(hours=n), tmp_path
        )
    order = plan_backfill(usecase=new.name, contract_version=NEW, store=store, lake_bucket=LAKE).objects
    store.stop_at = lake.manifest_key(new.name, order[1].object_id, NEW)
    with pytest.raises(StorageError):
        _run(store, new, tmp_path)

    # Then the plan says where it stopped, and the switch is refused with the pointer untouched
    plan = plan_backfill(usecase=new.name, contract_version=NEW, store=store, lake_bucket=LAKE)
    assert [o.state for o in plan.objects] == [ObjectState.RECONCILED, ObjectState.PENDING, ObjectState.PENDING]
    with pytest.raises(BackfillIncompleteError) as refused:
        _switch(store, audit)
    assert len(refused.value.pending) == 2
    assert read_pointer(store, LAKE, new.name) is None
    assert audit.events == []

    # When the backfill runs again
    resumed = _run(store, new, tmp_path)

    # Then only the two left are done, and every row is in the versioned set once
    assert [o.source_key for o in resumed] == [order[1].source_key, order[2].source_key]
    assert not any(o.skipped for o in resumed)
    versioned = store.keys(LAKE, lake.curated_prefix(new.name, NEW))
    ids = [row["account_id"] for row in _parquet_rows(store, versioned)]
    quarantined = store.keys(LAKE, lake.quarantine_prefix(new.name, NEW))
    assert sorted(ids) == list(range(11, 31))
    assert len(quarantined) == 1
    assert store.body(LAKE, quarantined[0]).decode().count("\n") == 10
    assert plan_backfill(usecase=new.name, contract_version=NEW, store=store, lake_bucket=LAKE).reconciled


def test_a_rerun_and_a_second_switch_change_nothing(tmp_path: Path) -> None:
    # Given a backfill done and switched
    old, new, store, audit = _usecase(OLD), _usecase(NEW), InMemoryObjectStore(), InMemoryAuditLog()
    base = _upload(store, old, "loans/base.csv", _rows(), DAY1, tmp_path)
    _run(store, new, tmp_path)
    pointer = _switch(store, audit)
    writes = len(store.writes)

    # When the object is backfilled again and the switch repeated
    again = backfill_object(
        lake.manifest_key(new.name, base.object_id), usecase=new, store=store, lake_bucket=LAKE, workdir=tmp_path
    )
    second = _switch(store, audit)

    # Then nothing is written, the object reads back as done, and the audit history has one switch
    assert again.skipped
    assert again.state is ObjectState.RECONCILED
    assert _run(store, new, tmp_path) == []
    assert second == pointer
    assert len(store.writes) == writes
    assert len(audit.events) == 1


def test_objects_ingested_under_the_new_version_need_no_backfill(tmp_path: Path) -> None:
    # Given one object under 2.1.0 backfilled, and one ingested live under 2.2.0 (the new file deployed)
    old, new, store, audit = _usecase(OLD), _usecase(NEW), InMemoryObjectStore(), InMemoryAuditLog()
    _upload(store, old, "loans/base.csv", _rows(20), DAY1, tmp_path)
    newer = [{**row, "account_id": row["account_id"] + 100, "tier": "gold"} for row in _rows(20)]
    _upload(store, new, "loans/newer.csv", newer, DAY1 + timedelta(days=1), tmp_path)
    _run(store, new, tmp_path)

    # When the plan is read and the set switched
    plan = plan_backfill(usecase=new.name, contract_version=NEW, store=store, lake_bucket=LAKE)
    _switch(store, audit)
    # And, later, an object of the old contract arrives live (a stale ingest function)
    _upload(store, old, "loans/stale.csv", [{**_rows(1)[0], "account_id": 500}], DAY1 + timedelta(days=2), tmp_path)
    report = build_training_set(usecase=new, store=store, lake_bucket=LAKE, cutoff=AFTER, run_id="mixed")

    # Then the native object is read from the live layout, the stale one is left out and listed
    assert [o.state for o in plan.objects] == [ObjectState.RECONCILED, ObjectState.NATIVE]
    assert audit.events[0]["backfilled"] == 1
    rows = _training_rows(store, new, "mixed")
    assert set(rows) == set(range(1, 21)) | set(range(101, 121))
    assert rows[101]["tier"] == "gold"
    assert len(report.manifests_other_contract) == 1


def test_a_mismatch_blocks_the_switch_and_a_use_case_of_another_version_is_refused(tmp_path: Path) -> None:
    # Given an object backfilled, whose versioned manifest then disagrees with ingest's count
    old, new, store = _usecase(OLD), _usecase(NEW), InMemoryObjectStore()
    base = _upload(store, old, "loans/base.csv", _rows(), DAY1, tmp_path)
    _run(store, new, tmp_path)
    key = lake.manifest_key(new.name, base.object_id, NEW)
    recorded = Manifest.model_validate_json(store.body(LAKE, key))
    store.put_json(LAKE, key, recorded.model_copy(update={"rows_in": 39, "rows_curated": 29}).model_dump(mode="json"))

    # Then the plan says mismatched and the switch is refused
    [state] = plan_backfill(usecase=new.name, contract_version=NEW, store=store, lake_bucket=LAKE).objects
    assert state.state is ObjectState.MISMATCHED
    assert "rows in 39" in state.reason
    with pytest.raises(BackfillIncompleteError):
        _switch(store, InMemoryAuditLog())
    # And a use-case file that does not carry the version asked for is refused
    with pytest.raises(ContractVersionMismatchError):
        require_version(old, NEW)
