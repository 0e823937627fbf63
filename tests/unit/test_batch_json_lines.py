"""JSON Lines built column by column: the same bytes as msgspec writes for one dict per row."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.batch.adapters import list_job_objects, row_groups_reader
from shared.batch.json_lines import constant, join_lines, json_texts, numbers_texts
from shared.batch.planning import plan_job
from shared.batch.types import JobRequest
from shared.batch.worker import BatchModels, score_chunk
from shared.scoring.prediction_log_lake import BATCH_SOURCE, PredictionLogRecord, logged_records
from tests.fakes import InMemoryObjectStore
from tests.scoring_model import trained_model

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
COLUMNS = {
    "whole": pa.array([1, None, -7, 2**40], pa.int64()),
    "real": pa.array([1.5, None, float("nan"), 1e20], pa.float64()),
    "flag": pa.array([True, None, False, True]),
    "text": pa.array(["a,b", None, 'q"x\\n\u00e9', "a,b"]),
    "when": pa.array([NOW, None, NOW, NOW], pa.timestamp("us", tz="UTC")),
}


def _expected(table: pa.Table) -> bytes:
    encoder = msgspec.json.Encoder()
    return b"".join(encoder.encode({"k": 1, **row}) + b"\n" for row in table.to_pylist())


def test_each_column_type_encodes_as_msgspec_encodes_its_values() -> None:
    # Given columns of every kind, with nulls, NaN, commas and quotes in strings
    table = pa.table(COLUMNS)
    # When the lines are joined column by column
    parts: list[bytes | pa.Array] = [b'{"k":1']
    for name in table.column_names:
        parts += [b"," + constant(name) + b":", json_texts(table[name])]
    lines = join_lines([*parts, b"}\n"], table.num_rows)
    # Then they are the bytes of one dict per row
    assert bytes(lines) == _expected(table)


def test_sliced_chunked_and_empty_columns() -> None:
    # Given a sliced array, a chunked one, and none at all
    assert json_texts(pa.array(["a", "b", "c"]).slice(1)).to_pylist() == ['"b"', '"c"']
    assert json_texts(pa.array([1, 2, 3]).slice(1)).to_pylist() == ["2", "3"]
    assert json_texts(pa.chunked_array([pa.array(["x"]), pa.array(["y", "x"])])).to_pylist() == ['"x"', '"y"', '"x"']
    assert json_texts(pa.array([], pa.float64())).to_pylist() == []
    assert numbers_texts(np.array([0.1, np.nan])).to_pylist() == ["0.1", "null"]
    assert join_lines([b"{", json_texts(pa.array([], pa.int64())), b"}\n"], 0) == b""


def test_batch_log_lines_round_trip_as_records(tmp_path: Path) -> None:
    # Given a chunk of rows, one of them bad, scored with its prediction log
    trained = trained_model()
    usecase = trained.usecase
    records = [dict(r) for r in trained.records[:40]]
    records[5]["rownames"] = None
    store = InMemoryObjectStore()
    store.put("lake", trained.ref().onnx_key, trained.onnx)
    store.put("raw", "batch/rows.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in records))
    request = JobRequest(usecase=usecase.name, source_uri="s3://raw/batch/")
    plan = plan_job(
        request,
        list_job_objects(store, request),
        model=trained.ref(),
        variant="champion",
        settings=usecase.batch,
        row_groups_of=row_groups_reader(store),
        now=NOW,
    )
    features = frozenset(c.name for c in usecase.contract.features)
    models = BatchModels(store=store, bucket="lake", feature_names=features)
    (chunk,) = plan.chunks
    # When the chunk is scored
    result = score_chunk(
        chunk, plan.context, usecase=usecase, store=store, lake_bucket="lake", models=models, workdir=tmp_path
    )
    # Then each line parses as a record: the row's features, its score and decision, in order
    assert result.prediction_log_key is not None
    logged = logged_records(store.body("lake", result.prediction_log_key).decode())
    scored = pq.read_table(io.BytesIO(store.body("lake", result.output_key)))
    good = [r for i, r in enumerate(records) if i != 5]
    assert [r.index for r in logged] == list(range(39))
    assert [r.entity_id for r in logged] == scored["entity_id"].to_pylist() == [r["rownames"] for r in good]
    assert [r.score for r in logged] == scored["score"].to_pylist()
    assert [r.label for r in logged] == scored["decision"].to_pylist()
    for record, row in zip(logged, good, strict=True):
        assert record.features == pytest.approx({c.name: row.get(c.name) for c in usecase.contract.features})
        assert (record.source, record.request_id) == (BATCH_SOURCE, f"{plan.job_id}/{chunk.chunk_key}")
        assert isinstance(record, PredictionLogRecord)
