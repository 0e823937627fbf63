"""Ingest one uploaded object: validate every row against the contract, curate or quarantine it.

The outcome of every object is a :class:`~shared.lake.manifest.Manifest`, written last, at a key that
depends only on the object's identity — bucket, key and content (ETag) — so when it exists the
object was ingested and is not ingested again: neither S3's duplicate delivery of an event nor a
second upload of the same bytes (a new version id, same content) has a second effect.
Output keys are deterministic too (:mod:`shared.lake.layout`), so a re-run after a crash overwrites
rather than duplicates. Output files are written incrementally in ``workdir`` and uploaded at the end,
so nothing is published for an object that turns out to be rejected, and nothing is held whole in memory.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from shared.ingest.exceptions import ObjectRejectedError, UnsupportedFormatError
from shared.ingest.formats import (
    BLOCK_SIZE,
    CsvRecordReader,
    ObjectFormat,
    detect_format,
    file_extension,
    guess_delimiter,
    open_records,
)
from shared.ingest.validation import CompiledContract, QuarantinedRow, ValidatedBatch
from shared.lake import layout as lake
from shared.lake.manifest import IngestStatus, Manifest
from shared.usecase.settings import ColumnType, Contract, UseCase

if TYPE_CHECKING:
    from shared.lake.adapters import ObjectStore

LINEAGE_COLUMNS = ("_object_id", "_source_key", "_source_version", "_ingested_at", "_line")
"""Columns every curated row carries besides the contract's: where it came from and when."""
_TEXT_TYPES = (ColumnType.STRING, ColumnType.CATEGORY, ColumnType.TIMESTAMP, ColumnType.DATE)


class SourceObject(BaseModel):
    """One version of one uploaded object, as an S3 event names it."""

    model_config = ConfigDict(frozen=True)

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    version_id: str | None = None
    etag: str = ""
    size: int = Field(default=0, ge=0)
    sequencer: str | None = None

    @property
    def version(self) -> str:
        """The version id, or the ETag when the bucket is not versioned."""
        return self.version_id or self.etag

    @property
    def object_id(self) -> str:
        """Stable across deliveries and re-uploads of the same bytes; new for new content."""
        return lake.object_id(self.bucket, self.key, self.etag or self.version)


@lru_cache(maxsize=8)
def compile_contract(contract: Contract) -> CompiledContract:
    """The contract compiled once per process."""
    return CompiledContract(contract)


def ingest_object(
    source: SourceObject,
    *,
    usecase: UseCase,
    store: ObjectStore,
    lake_bucket: str,
    now: datetime,
    workdir: Path,
    block_size: int = BLOCK_SIZE,
    versioned: str | None = None,
) -> Manifest:
    """Ingest one object version into the lake; return (and write) its manifest.

    ``versioned`` (a contract version; a backfill) writes every output under that contract's folder
    (:func:`shared.lake.layout.contract_folder`) instead of the live layout; ``now`` is then the object's
    original ingest time, so its rows keep their ``_ingested_at`` and ingest date.

    Raises :class:`~shared.lake.exceptions.StorageError` when the store fails (retry); a bad object is
    never an exception: it is rejected, quarantined and recorded in the manifest.
    """
    manifest_key = lake.manifest_key(usecase.name, source.object_id, versioned)
    if store.exists(lake_bucket, manifest_key):
        return Manifest.model_validate_json(store.get_bytes(lake_bucket, manifest_key))
    workspace = Path(workdir) / f"ingest-{source.object_id}"
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    run = _IngestRun(
        source, usecase=usecase, store=store, lake_bucket=lake_bucket, now=now, workspace=workspace, versioned=versioned
    )
    try:
        manifest = run.execute(block_size)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    store.put_json(lake_bucket, manifest_key, manifest.model_dump(mode="json"))
    return manifest


class _IngestRun:
    def __init__(
        self,
        source: SourceObject,
        *,
        usecase: UseCase,
        store: ObjectStore,
        lake_bucket: str,
        now: datetime,
        workspace: Path,
        versioned: str | None = None,
    ) -> None:
        self.source = source
        self.versioned = versioned
        self.usecase = usecase
        self.store = store
        self.lake_bucket = lake_bucket
        self.now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
        self.workspace = workspace
        self.started = time.monotonic()
        self.object_format: ObjectFormat | None = None
        self.compression: str | None = None
        self.rows_in = 0
        self.rows_curated = 0
        self.rows_quarantined = 0
        self.columns_added: list[str] = []
        self.schema_changes: list[str] = []

    def execute(self, block_size: int) -> Manifest:
        try:
            self.object_format = detect_format(self.source.key)
        except UnsupportedFormatError as exc:
            return self._reject(exc)
        self.compression = self.object_format.compression.value
        curated = _CuratedSink(self.workspace, self._curated_key, self._lineage)
        quarantine = _QuarantineSink(self.workspace / "quarantine.jsonl")
        try:
            self._stream(self.object_format, curated, quarantine, block_size)
        except ObjectRejectedError as exc:
            curated.discard()
            quarantine.discard()
            return self._reject(exc)
        curated_keys = curated.upload(self.store, self.lake_bucket)
        quarantine_keys: list[str] = []
        if quarantine.rows:
            key = lake.quarantine_rows_key(
                self.usecase.name, ingest_date=self.ingest_date, object_id=self.object_id, versioned=self.versioned
            )
            quarantine.upload(self.store, self.lake_bucket, key)
            quarantine_keys.append(key)
        reason = "" if self.rows_in else "no data rows"
        return self._manifest(IngestStatus.ACCEPTED, reason, curated_keys, quarantine_keys)

    @property
    def object_id(self) -> str:
        return self.source.object_id

    @property
    def ingest_date(self) -> date:
        return self.now.date()

    def _stream(
        self, object_format: ObjectFormat, curated: _CuratedSink, quarantine: _QuarantineSink, block_size: int
    ) -> None:
        compiled = compile_contract(self.usecase.contract)
        text_columns = [c.name for c in self.usecase.contract.columns if c.type in _TEXT_TYPES]
        with open_records(
            self.store,
            self.source.bucket,
            self.source.key,
            self.source.version_id,
            object_format,
            workdir=self.workspace,
            block_size=block_size,
            text_columns=text_columns,
        ) as (reader, compression):
            self.compression = compression.value
            check = compiled.check_columns(reader.columns, reader.column_types)
            self.columns_added = list(check.added)
            self.schema_changes = list(check.changes)
            if check.rejection is not None:
                reason = check.rejection
                if isinstance(reader, CsvRecordReader) and len(reader.columns) == 1:
                    delimiter = guess_delimiter(reader.header_text)
                    if delimiter is not None:
                        reason = f"wrong delimiter: the header looks {delimiter!r}-separated, expected ','; {reason}"
                self.rows_in += reader.count_rest()
                raise ObjectRejectedError(reason, schema_changes=self.schema_changes)
            validator = compiled.start_object(check)
            for batch in reader.batches():
                self.rows_in += batch.rows
                result = validator.validate(batch)
                curated.write(result, self.usecase.contract.event_time)
                quarantine.write(result.quarantined)
                self.rows_curated += result.valid.num_rows
                self.rows_quarantined += len(result.quarantined)
            self.columns_added = validator.columns_added
            for name in self.columns_added:
                change = f"column {name!r} added (kept as a string column)"
                if change not in self.schema_changes:
                    self.schema_changes.append(change)
            type_changes = validator.type_changes()
            if type_changes:
                self.schema_changes = type_changes + self.schema_changes
                raise ObjectRejectedError("; ".join(type_changes), schema_changes=self.schema_changes)

    def _curated_key(self, event_date: str | None) -> str:
        return lake.curated_key(
            self.usecase.name,
            ingest_date=self.ingest_date,
            object_id=self.object_id,
            event_date=event_date,
            versioned=self.versioned,
        )

    def _lineage(self, table: pa.Table, lines: pa.Array) -> pa.Table:
        rows = table.num_rows
        version = self.source.version
        table = table.append_column("_object_id", pa.repeat(pa.scalar(self.object_id), rows))
        table = table.append_column("_source_key", pa.repeat(pa.scalar(self.source.key), rows))
        table = table.append_column("_source_version", pa.repeat(pa.scalar(version, pa.string()), rows))
        ingested_at = pa.scalar(self.now, pa.timestamp("us", tz="UTC"))
        table = table.append_column("_ingested_at", pa.repeat(ingested_at, rows))
        return table.append_column("_line", lines.cast(pa.int64()))

    def _reject(self, exc: ObjectRejectedError) -> Manifest:
        usecase, object_id = self.usecase.name, self.object_id
        extension = self.object_format.extension if self.object_format else file_extension(self.source.key)
        report_key = lake.rejected_report_key(usecase, object_id, self.versioned)
        copy_key = lake.rejected_source_key(usecase, object_id, extension, self.versioned)
        self.store.copy(self.source.bucket, self.source.key, self.source.version_id, self.lake_bucket, copy_key)
        self.rows_curated, self.rows_quarantined = 0, self.rows_in
        self.schema_changes = list(exc.schema_changes) or self.schema_changes
        manifest = self._manifest(IngestStatus.REJECTED, exc.reason, [], [report_key, copy_key])
        report = {
            "reason": exc.reason,
            "schema_changes": manifest.schema_changes,
            "source": f"s3://{self.source.bucket}/{self.source.key}",
            "source_copy": f"s3://{self.lake_bucket}/{copy_key}",
            "manifest": manifest.model_dump(mode="json"),
        }
        self.store.put_json(self.lake_bucket, report_key, report)
        return manifest

    def _manifest(
        self, status: IngestStatus, reason: str, curated_keys: list[str], quarantine_keys: list[str]
    ) -> Manifest:
        source = self.source
        return Manifest(
            source_bucket=source.bucket,
            source_key=source.key,
            source_version_id=source.version_id,
            source_etag=source.etag,
            source_size=source.size,
            object_id=self.object_id,
            usecase=self.usecase.name,
            contract_version=self.usecase.contract.version,
            format=self.object_format.data_format.value if self.object_format else None,
            compression=self.compression,
            status=status,
            reason=reason,
            rows_in=self.rows_in,
            rows_curated=self.rows_curated,
            rows_quarantined=self.rows_quarantined,
            columns_added=tuple(self.columns_added),
            schema_changes=tuple(self.schema_changes),
            curated_keys=tuple(curated_keys),
            quarantine_keys=tuple(quarantine_keys),
            ingested_at=self.now,
            duration_ms=int((time.monotonic() - self.started) * 1000),
        )


class _PartitionFile:
    """The curated Parquet file of one partition, written batch by batch.

    Its schema is the first batch's; a later batch with a column the file lacks (an undeclared JSON
    key first seen late) starts a new part with the wider schema, and the parts are merged at close.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.parts: list[Path] = []
        self.schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self.schema is not None:
            new = [f for f in table.schema if f.name not in self.schema.names]
            if new:
                self._close_writer()
                self.schema = pa.schema(list(self.schema) + new)
            table = _conform(table, self.schema)
        else:
            self.schema = table.schema
        if self._writer is None:
            path = self.directory / f"part-{len(self.parts)}.parquet"
            self.parts.append(path)
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._writer.write_table(table)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> Path:
        self._close_writer()
        if len(self.parts) == 1:
            return self.parts[0]
        assert self.schema is not None
        merged = self.directory / "merged.parquet"
        with pq.ParquetWriter(merged, self.schema, compression="zstd") as writer:
            for part in self.parts:
                for batch in pq.ParquetFile(part).iter_batches():
                    writer.write_table(_conform(pa.Table.from_batches([batch]), self.schema))
        return merged


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns, in its order; columns it lacks are null."""
    arrays = [table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


class _CuratedSink:
    """Valid rows, partitioned (by event date when the contract has an event time)."""

    def __init__(self, workspace: Path, key_of: Any, lineage: Any) -> None:
        self._workspace = workspace
        self._key_of = key_of
        self._lineage = lineage
        self._files: dict[str | None, _PartitionFile] = {}

    def write(self, batch: ValidatedBatch, event_time: str | None) -> None:
        table = batch.valid
        if table.num_rows == 0:
            return
        table = self._lineage(table, batch.valid_lines)
        if event_time is None:
            self._file(None).write(table)
            return
        dates = pc.cast(table[event_time], pa.date32())
        for day in pc.unique(dates).to_pylist():
            if day is None:
                self._file(lake.NULL_PARTITION).write(table.filter(pc.is_null(dates)))
            else:
                self._file(day.isoformat()).write(table.filter(pc.equal(dates, pa.scalar(day, pa.date32()))))

    def _file(self, partition: str | None) -> _PartitionFile:
        if partition not in self._files:
            directory = self._workspace / f"curated-{len(self._files)}"
            directory.mkdir()
            self._files[partition] = _PartitionFile(directory)
        return self._files[partition]

    def upload(self, store: ObjectStore, bucket: str) -> list[str]:
        keys = []
        for partition, file in sorted(self._files.items(), key=lambda item: item[0] or ""):
            key = self._key_of(partition)
            store.upload_file(file.close(), bucket, key, content_type="application/vnd.apache.parquet")
            keys.append(key)
        return keys

    def discard(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()


class _QuarantineSink:
    """Quarantined rows as JSON Lines, appended to a file as they come."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: Any = None
        self.rows = 0

    def write(self, rows: list[QuarantinedRow]) -> None:
        if not rows:
            return
        if self._file is None:
            self._file = self._path.open("w", encoding="utf-8")
        for row in rows:
            self._file.write(json.dumps(row.as_document(), ensure_ascii=False, default=str) + "\n")
        self.rows += len(rows)

    def upload(self, store: ObjectStore, bucket: str, key: str) -> None:
        self._file.close()
        store.upload_file(self._path, bucket, key, content_type="application/x-ndjson")

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
