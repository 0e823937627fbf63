"""An object of several GB: planned from its size alone, each chunk read by ranges, never loaded whole.

The object is synthetic: JSON Lines of a fixed width, line ``i`` built from its index when a range asks for it,
so 3 GiB are served without ever being held.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from shared.batch.adapters import list_job_objects, row_groups_reader
from shared.batch.planning import plan_job
from shared.batch.reading import READ_AHEAD
from shared.batch.types import Chunk, JobPlan, JobRequest
from shared.batch.worker import BatchModels, score_chunk
from shared.lake.adapters import StoredObject
from tests.fakes import LISTED_AT, InMemoryObjectStore
from tests.scoring_model import TrainedModel, trained_model

RAW, LAKE, KEY = "raw-bucket", "lake-bucket", "batch/huge.jsonl"
SIZE = 3 * 1024**3 + 12_345
"""Three GiB and a partial last line's worth more (the object does not end on a line border)."""
CHUNK_BYTES = 1024 * 1024
LINE_WIDTH = 500
"""Not a divisor of the chunk size: chunks start and end inside lines."""
NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


class SyntheticObjectStore(InMemoryObjectStore):
    """The in-memory store plus one huge object served lazily by ranges; reading it whole fails the test."""

    def __init__(self, template: dict[str, Any]) -> None:
        super().__init__()
        self._template = {k: v for k, v in template.items() if k != "rownames"}

    def line(self, index: int) -> bytes:
        """Line ``index`` (0-based): entity id ``index + 1``, padded with spaces inside the object to the width."""
        body = json.dumps({"rownames": index + 1, **self._template}).encode()
        padding = LINE_WIDTH - len(body) - 1
        assert padding >= 0
        return b"{" + b" " * padding + body[1:] + b"\n"

    def get_range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        if (bucket, key) != (RAW, KEY):
            return super().get_range(bucket, key, start, end)
        self.range_reads.append((key, start, end))
        start, end = max(start, 0), min(end, SIZE)
        if end <= start:
            return b""
        first, last = start // LINE_WIDTH, (end - 1) // LINE_WIDTH
        data = b"".join(self.line(i) for i in range(first, last + 1))
        return data[start - first * LINE_WIDTH : end - first * LINE_WIDTH]

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        listed = super().list_objects(bucket, prefix)
        if bucket == RAW and KEY.startswith(prefix):
            listed.append(StoredObject(KEY, LISTED_AT, SIZE, '"synthetic-etag"'))
        return listed

    def body(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        assert (bucket, key) != (RAW, KEY), "the huge object was loaded whole"
        return super().body(bucket, key, version_id)

    @contextmanager
    def open(self, bucket: str, key: str, version_id: str | None = None) -> Iterator[io.BytesIO]:
        assert (bucket, key) != (RAW, KEY), "the huge object was opened as a stream"
        with super().open(bucket, key, version_id) as stream:
            yield stream


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return trained_model()


def _plan(store: SyntheticObjectStore, trained: TrainedModel) -> JobPlan:
    usecase = trained.usecase
    request = JobRequest(usecase=usecase.name, source_uri=f"s3://{RAW}/batch/")
    return plan_job(
        request,
        list_job_objects(store, request),
        model=trained.ref(),
        variant="champion",
        settings=usecase.batch.model_copy(update={"chunk_bytes": CHUNK_BYTES}),
        row_groups_of=row_groups_reader(store),
        now=NOW,
    )


def _lines_starting_in(start: int, end: int) -> range:
    """The 0-based indexes of the lines that start in ``[start, end)`` (the lines the chunk owns)."""
    return range(math.ceil(start / LINE_WIDTH), min(math.ceil(end / LINE_WIDTH), math.ceil(SIZE / LINE_WIDTH)))


def test_a_several_gb_object_is_planned_from_its_size_without_reading_it(trained: TrainedModel) -> None:
    # Given a 3 GiB JSON Lines object and 1 MiB chunks
    store = SyntheticObjectStore(trained.records[0])
    # When the job is planned
    plan = _plan(store, trained)
    # Then it is cut into ceil(size / chunk) byte ranges covering it end to end, and no byte of it was read
    assert len(plan.chunks) == math.ceil(SIZE / CHUNK_BYTES) == 3073
    assert plan.chunks[0].start == 0
    assert plan.chunks[-1].end == SIZE
    assert all(a.end == b.start for a, b in zip(plan.chunks, plan.chunks[1:], strict=False))
    assert store.range_reads == []


def test_chunks_of_a_several_gb_object_are_read_by_ranges_never_whole(trained: TrainedModel, tmp_path: Path) -> None:
    # Given the planned 3 GiB object
    store = SyntheticObjectStore(trained.records[0])
    store.put(LAKE, trained.ref().onnx_key, trained.onnx)
    plan = _plan(store, trained)
    usecase = trained.usecase.model_copy(
        update={"batch": trained.usecase.batch.model_copy(update={"chunk_bytes": CHUNK_BYTES})}
    )
    models = BatchModels(store=store, bucket=LAKE, feature_names=frozenset(c.name for c in usecase.contract.features))
    # When its first chunk, one in the middle (starting inside a line) and its last (a partial line) are scored
    picked: list[Chunk] = [plan.chunks[0], plan.chunks[1537], plan.chunks[-1]]
    assert picked[1].start % LINE_WIDTH != 0
    for chunk in picked:
        result = score_chunk(
            chunk, plan.context, usecase=usecase, store=store, lake_bucket=LAKE, models=models, workdir=tmp_path
        )
        # Then each scores exactly the lines starting in its range (a torn last line is rejected, not lost)
        owned = _lines_starting_in(chunk.start, chunk.end)
        assert result.rows_in == len(owned)
        ids = pq.read_table(io.BytesIO(store.body(LAKE, result.output_key)))["entity_id"].to_pylist()
        assert sorted(ids) == [i + 1 for i in owned if (i + 1) * LINE_WIDTH <= SIZE]
        assert result.rows_scored + result.rows_rejected == result.rows_in
    # And no single read was larger than a chunk and its read-ahead past the end
    assert store.range_reads
    assert max(end - start for _, start, end in store.range_reads) <= CHUNK_BYTES + READ_AHEAD
    assert sum(end - start for _, start, end in store.range_reads) < 4 * (CHUNK_BYTES + READ_AHEAD)
