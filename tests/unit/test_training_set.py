"""Point-in-time training sets: nothing from after the cutoff leaks in, and what is left out is counted."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from shared.ingest.service import SourceObject, ingest_object
from shared.lake import layout as lake
from shared.lake.manifest import Manifest
from shared.training.exceptions import TrainingSetError
from shared.training.training_set import build_training_set, holdout_mask, training_set_sha256
from shared.usecase.settings import UseCase
from tests.fakes import InMemoryObjectStore

RAW, LAKE = "raw", "lake"
DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
CUTOFF = datetime(2024, 3, 10, 0, 0, tzinfo=UTC)
AFTER = datetime(2024, 3, 20, 9, 0, tzinfo=UTC)


def _usecase(*, event_time: bool) -> UseCase:
    """A synthetic use case (the platform is not tied to Telco): loan defaults."""
    columns: list[dict[str, Any]] = [
        {"name": "account_id", "type": "int"},
        {"name": "defaulted", "type": "category", "allowed": ["no", "yes"]},
        {"name": "balance", "type": "float", "nullable": True},
        {"name": "region", "type": "category", "allowed": ["north", "south"]},
    ]
    contract: dict[str, Any] = {
        "version": "2.1.0",
        "entity_id": "account_id",
        "label": "defaulted",
        "positive_class": "yes",
        "segments": ["region"],
        "columns": columns,
    }
    if event_time:
        columns.append({"name": "snapshot_at", "type": "timestamp"})
        contract["event_time"] = "snapshot_at"
    return UseCase.model_validate({"name": "loan_default", "contract": contract})


def _csv(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    return "\n".join([",".join(header)] + [",".join(str(r[c]) for c in header) for r in rows]) + "\n"


def _base_rows(n: int = 40, *, snapshot: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, n + 1):
        row: dict[str, Any] = {
            "account_id": i,
            "defaulted": "yes" if i % 4 == 0 else "no",
            "balance": float(i * 10),
            "region": "north" if i % 2 else "south",
        }
        if snapshot is not None:
            row["snapshot_at"] = snapshot
        rows.append(row)
    return rows


def _upload(
    store: InMemoryObjectStore, usecase: UseCase, key: str, rows: list[dict[str, Any]], now: datetime, *, tmp: Path
) -> Manifest:
    body = _csv(rows).encode()
    store.put(RAW, key, body, version_id=f"v-{key}")
    source = SourceObject(bucket=RAW, key=key, version_id=f"v-{key}", etag=hashlib.md5(body).hexdigest())
    return ingest_object(source, usecase=usecase, store=store, lake_bucket=LAKE, now=now, workdir=tmp)


def _read(store: InMemoryObjectStore, key: str) -> dict[int, dict[str, Any]]:
    table = pq.read_table(io.BytesIO(store.body(LAKE, key)))
    return {row["account_id"]: row for row in table.to_pylist()}


def _all_rows(store: InMemoryObjectStore, usecase: UseCase, run_id: str) -> dict[int, dict[str, Any]]:
    return {
        **_read(store, lake.training_set_train_key(usecase.name, run_id)),
        **_read(store, lake.training_set_holdout_key(usecase.name, run_id)),
    }


def test_a_late_label_and_a_late_entity_do_not_leak_and_are_counted(tmp_path: Path) -> None:
    # Given 40 accounts uploaded before the cutoff, an in-time update of account 2's label,
    # and, after the cutoff, an upload that flips account 1's label and adds account 99
    usecase, store = _usecase(event_time=False), InMemoryObjectStore()
    _upload(store, usecase, "loans/base.csv", _base_rows(), DAY1, tmp=tmp_path)
    in_time = {**_base_rows()[1], "defaulted": "yes"}
    _upload(store, usecase, "loans/fix.csv", [in_time], DAY1 + timedelta(days=2), tmp=tmp_path)
    late_label = {**_base_rows()[0], "defaulted": "yes"}
    late_entity = {**_base_rows()[0], "account_id": 99}
    late = _upload(store, usecase, "loans/late.csv", [late_label, late_entity], AFTER, tmp=tmp_path)

    # When the training set is built as of the cutoff
    report = build_training_set(usecase=usecase, store=store, lake_bucket=LAKE, cutoff=CUTOFF, run_id="run-1")

    # Then account 1 keeps the label known at the cutoff, account 99 is absent, account 2 is updated
    rows = _all_rows(store, usecase, "run-1")
    assert rows[1]["defaulted"] == "no"
    assert 99 not in rows
    assert rows[2]["defaulted"] == "yes"
    assert rows[2]["_source_key"] == "loans/fix.csv"
    # And the late rows are counted, not mixed in; the older version of account 2 is deduplicated
    assert report.rows_excluded_late == 2
    assert report.manifests_late == (lake.manifest_key(usecase.name, late.object_id),)
    assert report.entities_deduplicated == 1
    assert report.rows_train + report.rows_holdout == 40
    assert report.rows_read == 41
    assert [m.source_key for m in report.manifests_used] == ["loans/base.csv", "loans/fix.csv"]
    assert report.manifests_used[0].source_version_id == "v-loans/base.csv"
    assert report.contract_version == "2.1.0"
    # And the report in the lake is the one returned, and its digests are the files'
    stored = store.json(LAKE, lake.training_set_report_key(usecase.name, "run-1"))
    assert stored["sha256"] == report.sha256
    train_sha = hashlib.sha256(store.body(LAKE, report.train_key)).hexdigest()
    holdout_sha = hashlib.sha256(store.body(LAKE, report.holdout_key)).hexdigest()
    assert report.sha256 == training_set_sha256(train_sha, holdout_sha)


def test_a_cutoff_before_every_arrival_leaves_nothing_to_train_on(tmp_path: Path) -> None:
    # Given one upload
    usecase, store = _usecase(event_time=False), InMemoryObjectStore()
    _upload(store, usecase, "loans/base.csv", _base_rows(), DAY1, tmp=tmp_path)

    # When the cutoff is before every arrival
    # Then there is nothing to train on, said as such
    with pytest.raises(TrainingSetError, match="no accepted data"):
        build_training_set(usecase=usecase, store=store, lake_bucket=LAKE, cutoff=DAY1 - timedelta(1), run_id="r")


def test_event_time_contract_excludes_future_feature_values_and_keeps_the_latest_snapshot(tmp_path: Path) -> None:
    # Given snapshots of 40 accounts on March 1st, uploaded before the cutoff; an upload, also before the
    # cutoff, of a snapshot of account 3 dated after the cutoff (a value from the future) flipping its
    # label; and account 5's March 5th snapshot uploaded *before* its March 1st one arrives again
    usecase, store = _usecase(event_time=True), InMemoryObjectStore()
    _upload(store, usecase, "s/base.csv", _base_rows(snapshot="2024-03-01T00:00:00Z"), DAY1, tmp=tmp_path)
    future = {**_base_rows(snapshot="2024-03-15T00:00:00Z")[2], "defaulted": "yes", "balance": 9999.0}
    _upload(store, usecase, "s/future.csv", [future], DAY1 + timedelta(days=1), tmp=tmp_path)
    newer = {**_base_rows(snapshot="2024-03-05T00:00:00Z")[4], "balance": 555.0}
    _upload(store, usecase, "s/newer.csv", [newer], DAY1 + timedelta(days=4), tmp=tmp_path)
    older_again = _base_rows(snapshot="2024-03-01T00:00:00Z")[4]
    _upload(store, usecase, "s/older.csv", [{**older_again, "balance": 1.0}], DAY1 + timedelta(days=5), tmp=tmp_path)

    # When the set is built as of March 10th
    report = build_training_set(usecase=usecase, store=store, lake_bucket=LAKE, cutoff=CUTOFF, run_id="run-e")

    # Then account 3 is as of March 1st (no future value), and account 5 is its latest snapshot by
    # event time even though an older snapshot arrived after it
    rows = _all_rows(store, usecase, "run-e")
    assert rows[3]["balance"] == 30.0
    assert rows[3]["defaulted"] == "no"
    assert rows[5]["balance"] == 555.0
    assert all(r["snapshot_at"] <= CUTOFF for r in rows.values())
    assert report.rows_excluded_future_event == 1
    assert report.rows_excluded_late == 0
    assert report.entities_deduplicated == 2
    assert report.event_time == "snapshot_at"


def test_the_holdout_split_is_a_stable_hash_of_the_entity(tmp_path: Path) -> None:
    # Given the same data built twice under two run ids
    usecase, store = _usecase(event_time=False), InMemoryObjectStore()
    _upload(store, usecase, "loans/base.csv", _base_rows(200), DAY1, tmp=tmp_path)

    # When both are built
    first = build_training_set(usecase=usecase, store=store, lake_bucket=LAKE, cutoff=CUTOFF, run_id="a")
    second = build_training_set(usecase=usecase, store=store, lake_bucket=LAKE, cutoff=CUTOFF, run_id="b")

    # Then the same entities are held out, and the content hash is the same
    assert first.sha256 == second.sha256
    holdout = _read(store, first.holdout_key)
    assert set(holdout) == set(_read(store, second.holdout_key))
    assert 20 <= len(holdout) <= 60
    import pyarrow as pa

    assert (
        holdout_mask(pa.array([1, 2]), salt="x", fraction=0.2).to_pylist()
        == holdout_mask(pa.array([1, 2]), salt="x", fraction=0.2).to_pylist()
    )


def test_one_class_only_is_refused(tmp_path: Path) -> None:
    # Given accounts that never default
    usecase, store = _usecase(event_time=False), InMemoryObjectStore()
    _upload(store, usecase, "loans/base.csv", [{**r, "defaulted": "no"} for r in _base_rows()], DAY1, tmp=tmp_path)

    # When / Then building a training set says why it cannot
    with pytest.raises(TrainingSetError, match="one class"):
        build_training_set(usecase=usecase, store=store, lake_bucket=LAKE, cutoff=CUTOFF, run_id="r")
