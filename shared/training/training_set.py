"""Point-in-time training sets: what the lake knew about each entity as of a cutoff.

Pure pyarrow (it runs in a Lambda). From the use case's accepted manifests and their curated
Parquet files, :func:`build_training_set` keeps, for each entity, its latest version *as of* the
cutoff, so nothing from after the prediction time leaks into training:

* a row that arrived after the cutoff (``_ingested_at``; a whole manifest ingested later) is late:
  counted, never used — this is how a label updated by a later upload stays out;
* when the contract has an event time, a row whose event time is after the cutoff is excluded
  (no feature value from the future), and counted;
* one row per entity: the latest by event time (when there is one), then by arrival, then by
  source line — older versions are counted as deduplicated.

The curated set read is the one the use case's pointer names (:mod:`shared.lake.pointer`): when a backfill
switched it to a contract version, each object is read from its re-ingested copy under that version (same
``_ingested_at``, so the point in time holds), and objects ingested natively under that version from the live
layout; live objects of another contract with no backfilled copy are left out and listed. No pointer → the
live layout, as ingest wrote it.

The holdout split is a deterministic hash of the use case and the entity id, so an entity stays on
the same side across runs. The set and its report are written under
:func:`shared.lake.layout.training_set_prefix`; the report carries the sha256 of both files so the
training job can check it is reading what was built.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from shared.ingest.service import LINEAGE_COLUMNS
from shared.ingest.validation import ARROW_TYPES
from shared.lake import layout as lake
from shared.lake.manifest import IngestStatus, Manifest
from shared.lake.pointer import read_pointer
from shared.training.exceptions import TrainingSetError

if TYPE_CHECKING:
    from shared.lake.adapters import ObjectStore
    from shared.usecase.settings import Contract, UseCase

_ROW_INDEX = "__row_index"
_ARRIVAL_ORDER = ("_ingested_at", "_object_id", "_line")
_LINEAGE_TYPES = {
    "_object_id": pa.string(),
    "_source_key": pa.string(),
    "_source_version": pa.string(),
    "_ingested_at": pa.timestamp("us", tz="UTC"),
    "_line": pa.int64(),
}


class ManifestUsed(BaseModel):
    """One curated source object a training set read."""

    model_config = ConfigDict(frozen=True)

    manifest_key: str
    object_id: str
    source_key: str
    source_version_id: str | None
    contract_version: str
    ingested_at: datetime
    rows_curated: int
    curated_keys: tuple[str, ...]


class TrainingSetReport(BaseModel):
    """``trainset.json``: what a training set is made of, and what was left out and why."""

    model_config = ConfigDict(frozen=True)

    usecase: str
    run_id: str
    cutoff: datetime
    contract_version: str
    entity_id: str
    label: str
    positive_class: str | int | bool
    event_time: str | None
    holdout_fraction: float
    manifests_used: tuple[ManifestUsed, ...]
    manifests_late: tuple[str, ...] = ()
    """Keys of accepted manifests ingested after the cutoff (their rows are all late)."""
    curated_version: str | None = None
    """The contract version of the curated set read (the pointer's), None for the live layout."""
    manifests_other_contract: tuple[str, ...] = ()
    """Live manifests left out: of another contract than the pointer's, and not backfilled under it."""
    rows_read: int = Field(ge=0)
    """Rows in the curated files of the manifests used (before any exclusion)."""
    rows_excluded_late: int = Field(ge=0)
    """Rows that arrived after the cutoff: in late manifests, or stamped later than the cutoff."""
    rows_excluded_future_event: int = Field(ge=0)
    """Rows that arrived in time but whose event time is after the cutoff."""
    entities_deduplicated: int = Field(ge=0)
    """Older versions of an entity dropped in favour of its latest one as of the cutoff."""
    rows_train: int = Field(ge=0)
    rows_holdout: int = Field(ge=0)
    positives_train: int = Field(ge=0)
    positives_holdout: int = Field(ge=0)
    train_key: str
    holdout_key: str
    train_sha256: str
    holdout_sha256: str
    sha256: str
    """The training set's identity: sha256 over the two files' digests (train, then holdout)."""
    created_at: datetime


def training_set_sha256(train_sha256: str, holdout_sha256: str) -> str:
    """The identity of a training set from its two files' digests."""
    return hashlib.sha256(f"train:{train_sha256}\nholdout:{holdout_sha256}\n".encode()).hexdigest()


def holdout_mask(entity_ids: pa.Array | pa.ChunkedArray, *, salt: str, fraction: float) -> pa.Array:
    """True for the entities in the holdout: a stable hash of ``salt`` and the id, below ``fraction``."""
    threshold = int(fraction * 2**64)
    flags = [
        int.from_bytes(hashlib.sha256(f"{salt}:{value}".encode()).digest()[:8], "big") < threshold
        for value in entity_ids.to_pylist()
    ]
    return pa.array(flags, pa.bool_())


def build_training_set(
    *,
    usecase: UseCase,
    store: ObjectStore,
    lake_bucket: str,
    cutoff: datetime,
    run_id: str,
    holdout_fraction: float = 0.2,
    now: datetime | None = None,
) -> TrainingSetReport:
    """Build the point-in-time training set of ``usecase`` as of ``cutoff``; write it and its report.

    Raises :class:`TrainingSetError` when nothing is left as of the cutoff or the label has one
    class only, :class:`~shared.lake.exceptions.StorageError` when the store fails.
    """
    if not 0 < holdout_fraction < 1:
        raise TrainingSetError(f"holdout_fraction must be between 0 and 1, not {holdout_fraction}")
    cutoff = _utc(cutoff)
    contract = usecase.contract
    pointer = read_pointer(store, lake_bucket, usecase.name)
    version = pointer.contract_version if pointer is not None else None
    used, late, late_rows, other = _manifests_as_of(usecase.name, store, lake_bucket, cutoff, version)
    if not used:
        raise TrainingSetError(f"no accepted data for {usecase.name!r} ingested on or before {cutoff.isoformat()}")
    table = _read_curated(contract, store, lake_bucket, used)
    rows_read = table.num_rows

    in_time = pc.less_equal(table["_ingested_at"], pa.scalar(cutoff, pa.timestamp("us", tz="UTC")))
    late_rows += table.num_rows - _true_count(in_time)
    table = table.filter(in_time)
    future_event = 0
    if contract.event_time is not None:
        not_future = pc.invert(pc.fill_null(_after_cutoff(table[contract.event_time], cutoff), False))
        future_event = table.num_rows - _true_count(not_future)
        table = table.filter(not_future)

    latest = _latest_per_entity(table, contract)
    deduplicated = table.num_rows - latest.num_rows
    if latest.num_rows == 0:
        raise TrainingSetError(f"no rows of {usecase.name!r} are left as of {cutoff.isoformat()}")
    positive = _positive_mask(latest[contract.label], contract.positive_class)
    positives = _true_count(positive)
    if positives in (0, latest.num_rows):
        raise TrainingSetError(f"the label {contract.label!r} has one class only as of {cutoff.isoformat()}")

    in_holdout = holdout_mask(latest[contract.entity_id], salt=usecase.name, fraction=holdout_fraction)
    train = latest.filter(pc.invert(in_holdout))
    holdout = latest.filter(in_holdout)
    train_bytes, holdout_bytes = _parquet_bytes(train), _parquet_bytes(holdout)
    train_key = lake.training_set_train_key(usecase.name, run_id)
    holdout_key = lake.training_set_holdout_key(usecase.name, run_id)
    _upload(store, lake_bucket, train_key, train_bytes)
    _upload(store, lake_bucket, holdout_key, holdout_bytes)
    train_sha, holdout_sha = hashlib.sha256(train_bytes).hexdigest(), hashlib.sha256(holdout_bytes).hexdigest()

    report = TrainingSetReport(
        usecase=usecase.name,
        run_id=run_id,
        cutoff=cutoff,
        contract_version=contract.version,
        entity_id=contract.entity_id,
        label=contract.label,
        positive_class=contract.positive_class,
        event_time=contract.event_time,
        holdout_fraction=holdout_fraction,
        manifests_used=tuple(used),
        manifests_late=tuple(late),
        curated_version=version,
        manifests_other_contract=tuple(other),
        rows_read=rows_read,
        rows_excluded_late=late_rows,
        rows_excluded_future_event=future_event,
        entities_deduplicated=deduplicated,
        rows_train=train.num_rows,
        rows_holdout=holdout.num_rows,
        positives_train=_true_count(_positive_mask(train[contract.label], contract.positive_class)),
        positives_holdout=_true_count(_positive_mask(holdout[contract.label], contract.positive_class)),
        train_key=train_key,
        holdout_key=holdout_key,
        train_sha256=train_sha,
        holdout_sha256=holdout_sha,
        sha256=training_set_sha256(train_sha, holdout_sha),
        created_at=_utc(now or datetime.now(UTC)),
    )
    store.put_json(lake_bucket, lake.training_set_report_key(usecase.name, run_id), report.model_dump(mode="json"))
    return report


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _true_count(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def _manifests_as_of(
    usecase: str, store: ObjectStore, bucket: str, cutoff: datetime, version: str | None
) -> tuple[list[ManifestUsed], list[str], int, list[str]]:
    """Accepted manifests with curated rows, split into those ingested by the cutoff and the late ones (and the
    live ones of another contract than ``version``, the pointer's, that were not backfilled under it)."""
    used: list[ManifestUsed] = []
    late: list[str] = []
    other: list[str] = []
    late_rows = 0
    backfilled: dict[str, str] = {}
    if version is not None:
        for key in store.list_keys(bucket, lake.manifest_prefix(usecase, version)):
            backfilled[key.rsplit("/", 1)[-1]] = key
    for live_key in store.list_keys(bucket, lake.manifest_prefix(usecase)):
        if not lake.is_live_manifest_key(usecase, live_key):
            continue
        key = backfilled.get(live_key.rsplit("/", 1)[-1], live_key)
        manifest = Manifest.model_validate_json(store.get_bytes(bucket, key))
        if version is not None and key == live_key and manifest.contract_version != version:
            other.append(live_key)
            continue
        if manifest.status is not IngestStatus.ACCEPTED or not manifest.curated_keys:
            continue
        if _utc(manifest.ingested_at) > cutoff:
            late.append(key)
            late_rows += manifest.rows_curated
            continue
        used.append(
            ManifestUsed(
                manifest_key=key,
                object_id=manifest.object_id,
                source_key=manifest.source_key,
                source_version_id=manifest.source_version_id,
                contract_version=manifest.contract_version,
                ingested_at=_utc(manifest.ingested_at),
                rows_curated=manifest.rows_curated,
                curated_keys=manifest.curated_keys,
            )
        )
    used.sort(key=lambda m: (m.ingested_at, m.object_id))
    return used, late, late_rows, other


def _target_schema(contract: Contract) -> pa.Schema:
    fields = [pa.field(c.name, ARROW_TYPES[c.type]) for c in contract.columns]
    fields += [pa.field(name, _LINEAGE_TYPES[name]) for name in LINEAGE_COLUMNS]
    return pa.schema(fields)


def _read_curated(contract: Contract, store: ObjectStore, bucket: str, used: list[ManifestUsed]) -> pa.Table:
    """Every curated row of the manifests used, with the contract's columns (in its types) and lineage."""
    schema = _target_schema(contract)
    tables = []
    for manifest in used:
        for key in manifest.curated_keys:
            table = pq.read_table(io.BytesIO(store.get_bytes(bucket, key)))
            arrays = [
                table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
                for f in schema
            ]
            tables.append(pa.Table.from_arrays(arrays, schema=schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _after_cutoff(values: pa.ChunkedArray, cutoff: datetime) -> pa.ChunkedArray:
    if pa.types.is_date(values.type):
        return pc.greater(values, pa.scalar(cutoff.date(), pa.date32()))
    return pc.greater(values, pa.scalar(cutoff, pa.timestamp("us", tz="UTC")))


def _latest_per_entity(table: pa.Table, contract: Contract) -> pa.Table:
    """One row per entity: its latest version by event time (nulls oldest), arrival, then source line."""
    names = [contract.entity_id, *([contract.event_time] if contract.event_time else []), *_ARRIVAL_ORDER]
    order = pc.sort_indices(table, sort_keys=[(name, "ascending", "at_start") for name in names])
    ordered = table.take(order)
    indexed = ordered.append_column(_ROW_INDEX, pa.array(range(ordered.num_rows), pa.int64()))
    last = indexed.group_by(contract.entity_id, use_threads=False).aggregate([(_ROW_INDEX, "max")])
    positions = pc.sort_indices(last[f"{_ROW_INDEX}_max"])
    return ordered.take(last[f"{_ROW_INDEX}_max"].take(positions))


def _positive_mask(labels: pa.ChunkedArray, positive_class: str | int | bool) -> pa.ChunkedArray:
    return pc.fill_null(pc.equal(labels, pa.scalar(positive_class, labels.type)), False)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _upload(store: ObjectStore, bucket: str, key: str, body: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="trainset-") as directory:
        path = Path(directory) / Path(key).name
        path.write_bytes(body)
        store.upload_file(path, bucket, key, content_type="application/vnd.apache.parquet")
