"""Batch bench: rows/s of one batch worker on a Parquet chunk vs raw onnxruntime on the same arrays.

The worker reads the chunk through ranged reads of an in-memory store, validates it against the contract,
builds the features, scores, and writes its Parquet output and prediction-log lines; raw onnxruntime runs
``session.run`` on the feed already built. Target: the worker at least 70% of raw. Writes
bench/results/batch.json and prints it. Run: ``make bench``.
"""

from __future__ import annotations

import io
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "batch.json"
ROWS = 50_000
REPEATS = 5
TARGET = 0.7
LAKE = "lake-bucket"


def main() -> dict[str, Any]:  # noqa: PLR0915 - one linear benchmark script
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.batch.adapters import row_groups_reader
    from shared.batch.planning import plan_job
    from shared.batch.types import JobRequest, ListedObject
    from shared.batch.worker import BatchModels, score_chunk
    from shared.scoring.models import onnx_session
    from shared.usecase.features import onnx_feed_from_columns
    from tests.fakes import InMemoryObjectStore
    from tests.scoring_model import trained_model

    trained = trained_model()
    usecase = trained.usecase
    names = list(usecase.contract.names)
    base = [{n: r.get(n) for n in names} for r in trained.records]
    rows = [dict(base[i % len(base)], rownames=i + 1) for i in range(ROWS)]
    table = pa.Table.from_pylist(rows)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=ROWS)
    store = InMemoryObjectStore()
    store.put(LAKE, trained.ref().onnx_key, trained.onnx)
    store.put("raw", "batch/bench.parquet", buffer.getvalue())
    settings = usecase.batch.model_copy(update={"max_rows_per_chunk": ROWS})
    request = JobRequest(usecase=usecase.name, source_uri="s3://raw/batch/")
    item = ListedObject(bucket="raw", key="batch/bench.parquet", size=len(buffer.getvalue()), etag="e")
    plan = plan_job(
        request,
        [item],
        model=trained.ref(),
        variant="champion",
        settings=settings,
        row_groups_of=row_groups_reader(store),
        now=datetime.now(UTC),
    )
    (chunk,) = plan.chunks
    features = frozenset(c.name for c in usecase.contract.features)
    models = BatchModels(store=store, bucket=LAKE, feature_names=features)
    session = onnx_session(trained.onnx)
    columns = {c.name: [r.get(c.name) for r in rows] for c in usecase.contract.features}
    feed = onnx_feed_from_columns(columns, usecase.contract)
    inputs = {i.name: feed[i.name] for i in session.get_inputs()}

    def worker(log: bool) -> float:
        with tempfile.TemporaryDirectory() as workdir:
            started = time.perf_counter()
            result = score_chunk(
                chunk,
                plan.context,
                usecase=usecase.model_copy(update={"batch": settings}),
                store=store,
                lake_bucket=LAKE,
                models=models,
                workdir=Path(workdir),
                prediction_log=log,
            )
            elapsed = time.perf_counter() - started
        assert result.rows_scored == ROWS
        return elapsed

    def raw() -> float:
        started = time.perf_counter()
        session.run(["probabilities"], inputs)
        return time.perf_counter() - started

    worker(True)
    raw()
    raw_s = min(raw() for _ in range(REPEATS))
    worker_s = min(worker(True) for _ in range(REPEATS))
    worker_nolog_s = min(worker(False) for _ in range(REPEATS))
    figures = {
        "rows": ROWS,
        "raw_onnxruntime_rows_per_s": round(ROWS / raw_s),
        "worker_rows_per_s": round(ROWS / worker_s),
        "worker_without_prediction_log_rows_per_s": round(ROWS / worker_nolog_s),
        "worker_share_of_raw": round(raw_s / worker_s, 3),
        "worker_without_log_share_of_raw": round(raw_s / worker_nolog_s, 3),
        "target_share_of_raw_min": TARGET,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
