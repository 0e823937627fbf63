"""Scoring one chunk: read it (ranged GETs), check it against the contract as ingest does, score the valid rows
with the API's model and features, and write its outputs under keys that hold the chunk key.

Outputs of a chunk (:mod:`shared.lake.layout`): the scores, Parquet (``entity_id``, ``score``, ``decision``
at the model's threshold, ``model_version``; written even when empty, so a succeeded chunk always has its
part); the rejected rows, JSON Lines as ingest quarantines them (``chunk_line``, ``offset`` for text,
``line`` where the object's line is known, ``row``/``text`` and ``errors``); the prediction-log lines,
marked ``source: batch``. Writing the same chunk again overwrites the same three objects.

Same rules as ingest (:class:`~shared.ingest.validation.CompiledContract`), except that the label column may
be absent or null (a batch scores rows whose outcome is not known yet). Duplicate entity ids are rejected
within a chunk, as within an ingested object.

Errors: :class:`ChunkFailedError` when the chunk cannot be scored at all (a truncated gzip, columns that do
not fit the contract, a model file whose sha256 is not the registry's); ``StorageError`` on an outage.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shared.batch.adapters import BatchStore
from shared.batch.exceptions import ChunkFailedError
from shared.batch.json_lines import Part, column_texts, constant, join_lines, numbers_texts
from shared.batch.reading import header_line, owned_lines, parquet_file
from shared.batch.types import Chunk, ChunkKind, ChunkResult, JobContext
from shared.deployment.state import ModelRef
from shared.ingest.exceptions import ObjectRejectedError
from shared.ingest.formats import (
    GZIP_MAGIC,
    CsvRecordReader,
    DataFormat,
    JsonLinesRecordReader,
    RawBatch,
    RecordReader,
    detect_format,
    open_records,
)
from shared.ingest.validation import CompiledContract, QuarantinedRow
from shared.lake import layout as lake
from shared.registry.exceptions import ModelIntegrityError
from shared.scoring.engine import negative_class
from shared.scoring.exceptions import ModelFileMismatchError
from shared.scoring.models import LoadedModel, SessionFactory, load_model, onnx_session
from shared.scoring.prediction_log_lake import BATCH_SOURCE
from shared.usecase.features import MISSING_TEXT, TEXT_TYPES, text_value
from shared.usecase.settings import NUMERIC_TYPES, ColumnType, Contract, UseCase

ENTITY_ID = "entity_id"
SCORE = "score"
DECISION = "decision"
MODEL_VERSION = "model_version"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
JSON_LINES_CONTENT_TYPE = "application/x-ndjson"
SCORING_ROWS = 8192
"""Rows read, checked and scored at a time: the model scores one part (on a second thread, onnxruntime without
the GIL) while the next part is read and checked and the previous one's outputs are written."""
_TEXT_TYPES = (ColumnType.STRING, ColumnType.CATEGORY, ColumnType.TIMESTAMP, ColumnType.DATE)
_CODED_TYPES = (ColumnType.STRING, ColumnType.CATEGORY)
"""Columns a Parquet chunk is read dictionary-encoded in, checked and encoded by distinct value."""


def scoring_contract(contract: Contract) -> Contract:
    """The contract a batch row is checked against: the ingest contract with the label optional and nullable."""
    columns = tuple(
        column.model_copy(update={"required": False, "nullable": True}) if column.name == contract.label else column
        for column in contract.columns
    )
    return contract.model_copy(update={"columns": columns})


@lru_cache(maxsize=8)
def compile_scoring_contract(contract: Contract) -> CompiledContract:
    return CompiledContract(scoring_contract(contract))


class BatchModels:
    """The models of a worker process: each verified against the registry's sha256 once, then kept."""

    def __init__(
        self,
        *,
        store: BatchStore,
        bucket: str,
        feature_names: frozenset[str],
        session_factory: SessionFactory = onnx_session,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._feature_names = feature_names
        self._session_factory = session_factory
        self._loaded: dict[tuple[int, str], LoadedModel] = {}

    def model(self, ref: ModelRef) -> LoadedModel:
        """The loaded model; :class:`ChunkFailedError` when its file is not the registered one."""
        identity = (ref.version, ref.onnx_sha256)
        if identity not in self._loaded:
            data = self._store.get_bytes(self._bucket, ref.onnx_key)
            try:
                loaded = load_model(ref, data, feature_names=self._feature_names, session_factory=self._session_factory)
            except (ModelFileMismatchError, ModelIntegrityError) as exc:
                raise ChunkFailedError(f"model refused: {exc}") from exc
            self._loaded[identity] = loaded
        return self._loaded[identity]


@dataclass
class _Lines:
    """How a reader's line numbers map to the chunk's: ``chunk_line = line - shift``; offsets of text lines."""

    shift: int = 0
    starts: np.ndarray | None = None
    object_line_known: bool = False
    lines: int = 0


@dataclass
class _ChunkOutputs:
    scores: list[pa.Table] = field(default_factory=list)
    rejected: list[bytes] = field(default_factory=list)
    logged: list[bytes | memoryview] = field(default_factory=list)
    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0


def score_chunk(
    chunk: Chunk,
    context: JobContext,
    *,
    usecase: UseCase,
    store: BatchStore,
    lake_bucket: str,
    models: BatchModels,
    workdir: Path,
    max_rows: int | None = None,
    prediction_log: bool = True,
    timer: Callable[[], float] = time.perf_counter,
) -> ChunkResult:
    """Score one chunk and write its outputs; return its counts (rows in = scored + rejected)."""
    started = timer()
    contract = usecase.contract
    compiled = compile_scoring_contract(contract)
    model = models.model(context.model)
    batch_rows = max_rows or usecase.batch.max_rows_per_chunk
    outputs = _ChunkOutputs()
    lines = _Lines()
    labels = pa.array([negative_class(contract), contract.positive_class])
    part_rows = min(batch_rows, SCORING_ROWS)
    scoring = _Scoring(context, model=model, contract=contract, labels=labels, outputs=outputs, chunk=chunk)
    with (
        _records(chunk, store, usecase, workdir=workdir, lines=lines, batch_rows=part_rows) as reader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-model") as pool,
    ):
        check = compiled.check_columns(reader.columns, reader.column_types)
        if check.rejection is not None:
            raise ChunkFailedError(f"the columns do not fit contract {contract.version}: {check.rejection}")
        validator = compiled.start_object(check, keep_dictionaries=True)
        pending: _Pending | None = None
        try:
            for raw in reader.batches():
                for part in _slices(raw, part_rows):
                    outputs.rows_in += part.rows
                    validated = validator.validate(part)
                    _reject(validated.quarantined, lines, outputs)
                    if validated.valid.num_rows:
                        scored_next = scoring.start(validated.valid, pool)
                        if pending is not None:
                            scoring.finish(pending, prediction_log=prediction_log)
                        pending = scored_next
        except ObjectRejectedError as exc:
            raise ChunkFailedError(exc.reason) from exc
        if pending is not None:
            scoring.finish(pending, prediction_log=prediction_log)
    if chunk.kind is ChunkKind.WHOLE:
        lines.lines = outputs.rows_in
    assert outputs.rows_in == outputs.rows_scored + outputs.rows_rejected, "a chunk's rows must reconcile"
    return _publish(
        chunk, context, store=store, bucket=lake_bucket, outputs=outputs, lines=lines, seconds=timer() - started
    )


def _slices(raw: RawBatch, rows: int) -> Iterator[RawBatch]:
    """A reader's batch in parts of at most ``rows`` parsed rows (malformed rows ride with the first part)."""
    total = raw.table.num_rows
    if total <= rows:
        yield raw
        return
    for start in range(0, total, rows):
        yield RawBatch(
            table=raw.table.slice(start, rows),
            lines=raw.lines.slice(start, rows),
            malformed=raw.malformed if start == 0 else [],
        )


@contextmanager
def _records(
    chunk: Chunk, store: BatchStore, usecase: UseCase, *, workdir: Path, lines: _Lines, batch_rows: int
) -> Iterator[RecordReader]:
    """A reader of the chunk's rows (ingest's readers over the chunk's bytes); fills ``lines``."""
    text_columns = [c.name for c in usecase.contract.columns if c.type in _TEXT_TYPES]
    try:
        if chunk.kind is ChunkKind.BYTES:
            yield _text_reader(chunk, store, lines, text_columns, usecase.contract.names)
        elif chunk.kind is ChunkKind.ROW_GROUPS:
            coded = [c.name for c in usecase.contract.columns if c.type in _CODED_TYPES]
            yield _RowGroupReader(chunk, store, batch_rows, lines, dictionaries=coded)
        else:
            lines.object_line_known = True
            workdir.mkdir(parents=True, exist_ok=True)
            found = detect_format(chunk.key)
            with open_records(
                store, chunk.bucket, chunk.key, None, found, workdir=workdir, text_columns=text_columns
            ) as (reader, _):
                yield reader
    except ObjectRejectedError as exc:
        raise ChunkFailedError(exc.reason) from exc


class _EmptyReader(RecordReader):
    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def batches(self) -> Iterator[RawBatch]:
        return iter(())


def _text_reader(
    chunk: Chunk, store: BatchStore, lines: _Lines, text_columns: list[str], declared: tuple[str, ...]
) -> RecordReader:
    """A CSV or JSON Lines reader over the lines the chunk owns (an empty JSON Lines chunk: the declared columns)."""
    owned = owned_lines(store, chunk.bucket, chunk.key, start=chunk.start, end=chunk.end, size=chunk.size)
    lines.starts = owned.line_starts()
    lines.lines = len(lines.starts)
    lines.object_line_known = chunk.start == 0
    if chunk.start == 0 and owned.data.startswith(GZIP_MAGIC):
        raise ChunkFailedError("the object holds gzip data but its key has no .gz extension")
    block = len(owned.data) + 1
    if chunk.data_format == DataFormat.CSV.value:
        if chunk.start == 0:
            data, lines.shift = owned.data, 0
        else:
            data, lines.shift = header_line(store, chunk.bucket, chunk.key, chunk.size) + owned.data, 1
        header = CsvRecordReader(io.BytesIO(data), block_size=max(block, len(data) + 1))
        if not owned.data:
            return _EmptyReader(header.columns)
        return header
    if not owned.data.strip():
        return _EmptyReader(list(declared))
    return JsonLinesRecordReader(io.BytesIO(owned.data), block_size=block, text_columns=text_columns)


class _RowGroupReader(RecordReader):
    """Row groups ``[start, end)`` of a Parquet object, read through ranged GETs."""

    def __init__(
        self, chunk: Chunk, store: BatchStore, batch_rows: int, lines: _Lines, *, dictionaries: list[str]
    ) -> None:
        self._file = parquet_file(store, chunk.bucket, chunk.key, chunk.size, dictionaries=dictionaries)
        schema = self._file.schema_arrow
        self.columns = list(schema.names)
        self.column_types = {f.name: f.type for f in schema}
        self._groups = list(range(chunk.start, min(chunk.end, self._file.metadata.num_row_groups)))
        self._first_row = chunk.first_row
        self._batch_rows = batch_rows
        lines.object_line_known = True
        lines.lines = sum(self._file.metadata.row_group(i).num_rows for i in self._groups)

    def batches(self) -> Iterator[RawBatch]:
        row = self._first_row
        if not self._groups:
            return
        try:
            batches = self._file.iter_batches(batch_size=self._batch_rows, row_groups=self._groups)
            for batch in batches:
                numbers = pa.array(np.arange(row, row + batch.num_rows, dtype=np.int64))
                row += batch.num_rows
                yield RawBatch(table=pa.Table.from_batches([batch]), lines=numbers)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ChunkFailedError(f"cannot read the Parquet row groups: {exc}") from exc


def _reject(rows: list[QuarantinedRow], lines: _Lines, outputs: _ChunkOutputs) -> None:
    if not rows:
        return
    outputs.rows_rejected += len(rows)
    for row in rows:
        document = row.as_document()
        line = document.pop("line")
        chunk_line = line - lines.shift
        located: dict[str, Any] = {"line": line if lines.object_line_known else None, "chunk_line": chunk_line}
        if lines.starts is not None and 0 < chunk_line <= len(lines.starts):
            located["offset"] = int(lines.starts[chunk_line - 1])
        outputs.rejected.append(msgspec.json.encode({**located, **document}))


def _feed(valid: pa.Table, contract: Contract) -> dict[str, np.ndarray]:
    """The model's inputs from a validated table, as :func:`onnx_feed_from_columns` builds them from its columns.

    Numbers as float64, then float32 (a null is NaN); a text column through its distinct values (each mapped
    by :func:`text_value` once, a null as ``""``), so no Python object is made per row.
    """
    feed: dict[str, np.ndarray] = {}
    for column in contract.features:
        values = valid[column.name]
        if column.type in NUMERIC_TYPES:
            numbers = pc.cast(values, pa.float64()).to_numpy()
            feed[column.name] = numbers.astype(np.float32).reshape(-1, 1)
        elif column.type in TEXT_TYPES:
            encoded = values.combine_chunks().dictionary_encode()
            distinct = [text_value(v) for v in encoded.dictionary.to_pylist()]
            texts = np.array([*distinct, MISSING_TEXT], dtype=object)
            indices = encoded.indices.fill_null(len(distinct)).to_numpy()
            feed[column.name] = texts[indices].reshape(-1, 1)
    return feed


@dataclass
class _Pending:
    """A part being scored: its valid rows and the model's scores to come."""

    valid: pa.Table
    scores: Future[np.ndarray]


@dataclass
class _Scoring:
    """Scores a chunk's parts in order: :meth:`start` hands a part's inputs to the model's thread, :meth:`finish`
    writes its outputs (the next part is read and checked in between, while the model runs)."""

    context: JobContext
    model: LoadedModel
    contract: Contract
    labels: pa.Array
    outputs: _ChunkOutputs
    chunk: Chunk

    def start(self, valid: pa.Table, pool: ThreadPoolExecutor) -> _Pending:
        return _Pending(valid, pool.submit(self.model.positive_scores, _feed(valid, self.contract)))

    def finish(self, pending: _Pending, *, prediction_log: bool) -> None:
        valid, contract, outputs, ref = pending.valid, self.contract, self.outputs, self.context.model
        log_columns = _log_columns(valid, contract, first_index=outputs.rows_scored) if prediction_log else []
        scores = np.asarray(pending.scores.result(), dtype=np.float64)
        positive = pa.array((scores >= ref.threshold).astype(np.int8))
        outputs.scores.append(
            pa.table(
                {
                    ENTITY_ID: valid[contract.entity_id],
                    SCORE: pa.array(scores, pa.float64()),
                    DECISION: self.labels.take(positive),
                    MODEL_VERSION: pa.repeat(pa.scalar(ref.version, pa.int32()), len(scores)),
                }
            )
        )
        if prediction_log:
            outputs.logged.append(
                _log_lines(
                    log_columns, contract, context=self.context, scores=scores, positive=positive, chunk=self.chunk
                )
            )
        outputs.rows_scored += len(scores)


def _log_columns(valid: pa.Table, contract: Contract, *, first_index: int) -> list[Part]:
    """The prediction log's parts that do not depend on the scores: index, entity id, features."""
    rows = valid.num_rows
    parts: list[Part] = [
        b',"index":',
        pc.cast(pa.array(np.arange(first_index, first_index + rows, dtype=np.int64)), pa.large_string()),
        b',"entity_id":',
        column_texts(valid[contract.entity_id]),
        b',"features":{',
    ]
    for number, column in enumerate(contract.features):
        parts += [(b"," if number else b"") + constant(column.name) + b":", column_texts(valid[column.name])]
    return parts


def _log_lines(
    columns: list[Part],
    contract: Contract,
    *,
    context: JobContext,
    scores: np.ndarray,
    positive: pa.Array,
    chunk: Chunk,
) -> bytes | memoryview:
    """The prediction log's JSON Lines of scored rows (the fields of ``PredictionLogRecord``, source batch).

    Built column by column (:mod:`shared.batch.json_lines`): the same bytes as encoding one dict per row.
    """
    ref = context.model
    common = constant(
        {
            "usecase": context.usecase,
            "request_id": f"{context.job_id}/{chunk.chunk_key}",
            "threshold": ref.threshold,
            "model_version": ref.version,
            "variant": context.variant,
            "served": True,
            "degraded": False,
            "time": context.created_at,
            "source": BATCH_SOURCE,
        }
    )
    labels = pa.array([constant(negative_class(contract)), constant(contract.positive_class)], pa.binary())
    parts: list[Part] = [
        common[:-1],
        *columns,
        b'},"score":',
        numbers_texts(scores),
        b',"label":',
        labels.cast(pa.large_string()).take(positive),
        b"}\n",
    ]
    return join_lines(parts, len(scores))


def _publish(
    chunk: Chunk,
    context: JobContext,
    *,
    store: BatchStore,
    bucket: str,
    outputs: _ChunkOutputs,
    lines: _Lines,
    seconds: float,
) -> ChunkResult:
    usecase, job = context.usecase, context.job_id
    output_key = lake.batch_output_key(usecase, job, chunk.chunk_key)
    table = pa.concat_tables(outputs.scores) if outputs.scores else _empty_scores()
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    store.put_bytes(bucket, output_key, buffer.getvalue(), content_type=PARQUET_CONTENT_TYPE)
    rejected_key = None
    if outputs.rejected:
        rejected_key = lake.batch_rejected_key(usecase, job, chunk.chunk_key)
        body = b"".join(line + b"\n" for line in outputs.rejected)
        store.put_bytes(bucket, rejected_key, body, content_type=JSON_LINES_CONTENT_TYPE)
    log_key = None
    if outputs.logged:
        log_key = lake.batch_prediction_log_key(usecase, at=context.created_at, chunk_key=chunk.chunk_key)
        store.put_bytes(bucket, log_key, b"".join(outputs.logged), content_type=JSON_LINES_CONTENT_TYPE)
    return ChunkResult(
        chunk_key=chunk.chunk_key,
        key=chunk.key,
        index=chunk.index,
        rows_in=outputs.rows_in,
        rows_scored=outputs.rows_scored,
        rows_rejected=outputs.rows_rejected,
        lines=lines.lines,
        seconds=round(seconds, 6),
        model_version=context.model.version,
        output_key=output_key,
        rejected_key=rejected_key,
        prediction_log_key=log_key,
    )


def _empty_scores() -> pa.Table:
    return pa.table(
        {
            ENTITY_ID: pa.array([], pa.null()),
            SCORE: pa.array([], pa.float64()),
            DECISION: pa.array([], pa.null()),
            MODEL_VERSION: pa.array([], pa.int32()),
        }
    )
