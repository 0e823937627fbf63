"""Monitor benchmark: 1M logged predictions x 20 features, 3 segment columns, labels on 30%, on one core.

Synthetic traffic (:mod:`bench.monitor_data`, never the Telco data) against a baseline built by
:func:`training.baseline.build_baseline` on a 20,000-row holdout of the same population. Each measured part
runs in its own subprocess with ``OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1``, pyarrow on one
thread and the process pinned to one CPU; its peak memory is that subprocess's ``ru_maxrss``:

* ``parse``: the 24 hourly JSON Lines objects of the prediction log (1M lines, as the prediction-log consumer
  writes them) read from a temp dir through :func:`shared.monitoring.window.prediction_columns` and
  :func:`~shared.monitoring.window.concatenate` (the lake reader's parsing, without S3);
* ``monitor``: :func:`shared.monitoring.monitor.run_monitor` on the columns in memory — one 24 h window of 1M
  rows, then the default three windows (1 h, 6 h, 24 h of the same rows) — and a cProfile of the one-window run;
* ``scale``: what one Lambda invocation does without the label join: parse the 24 objects, then run the
  monitor over the three windows (item 8: memory <= 3 GB, well under 15 min);
* ``evidently``: Evidently's ``DataDriftPreset`` (every feature and the score, 1M rows against the holdout) and
  ``ClassificationPreset`` (the 30% labeled rows against the holdout) on pandas frames of the same rows, in
  its own virtualenv (``bench/.venv-evidently``, from ``bench/requirements.txt``; Evidently needs pandas 2 and is
  never installed beside the runtime). Skipped, and said so, when that virtualenv is missing.

Writes bench/results/monitor.json and prints it. Run: ``make bench`` (or ``python -m bench.monitor_bench``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import monitor_data as data

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "monitor.json"
EVIDENTLY_PYTHON = ROOT / "bench" / ".venv-evidently" / "bin" / "python"
ROWS = int(os.environ.get("MONITOR_BENCH_ROWS", "1000000"))
"""Logged predictions (the environment variable shrinks a trial run)."""
HOLDOUT_ROWS = 20_000
HOLDOUT_SEED = data.SEED + 1
THRESHOLD = 0.5
MODEL_VERSION = "1"
PROFILE_LINES = 15
ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ARROW_NUM_THREADS": "1"}
TARGET_RATIO = 5.0
LAMBDA_MEMORY_MB = 3_008
"""The memory the item-8 target allows (Lambda's largest size is 10,240 MB; the target is 3 GB)."""


def peak_mb() -> float:
    """This process's peak resident memory: ``VmHWM`` on Linux (``ru_maxrss`` there also counts the parent's
    memory copied at ``fork``, before ``exec``), else ``ru_maxrss`` (KiB)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def one_core() -> None:
    """Pin this process to one CPU (the thread pools are limited by the environment set before numpy)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


# ---------------------------------------------------------------------------------------------------------------
# The use case, the baseline, the log
# ---------------------------------------------------------------------------------------------------------------


def usecase_document() -> dict[str, Any]:
    """A use case declaring the 20 features, the label and the 3 segments (default ``[monitoring]``)."""
    columns: list[dict[str, Any]] = [
        {"name": "customer_id", "type": "int", "min": 0},
        {"name": "churned", "type": "category", "allowed": ["No", "Yes"]},
    ]
    for name in data.NUMERIC:
        columns.append({"name": name, "type": "int" if name in data.INTEGER else "float", "nullable": True})
    for name, categories in data.CATEGORIES.items():
        columns.append({"name": name, "type": "category", "allowed": list(categories), "nullable": True})
    return {
        "name": "bench_monitor",
        "contract": {
            "version": "1.0.0",
            "entity_id": "customer_id",
            "label": "churned",
            "positive_class": "Yes",
            "segments": list(data.SEGMENTS),
            "columns": columns,
        },
    }


def write_baseline(directory: Path) -> None:
    import pandas as pd

    from shared.usecase.settings import UseCase
    from training.baseline import build_baseline

    usecase = UseCase.model_validate(usecase_document())
    holdout = data.generate(HOLDOUT_ROWS, seed=HOLDOUT_SEED)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(HOLDOUT_ROWS),
            "churned": np.where(holdout.positive, "Yes", "No"),
            **{name: holdout.features[name] for name in (*data.NUMERIC, *data.CATEGORICAL)},
        }
    )
    baseline = build_baseline(frame, holdout.score, usecase, THRESHOLD)
    (directory / "baseline.json").write_text(baseline.model_dump_json())


def write_prediction_log(directory: Path, traffic: data.Traffic) -> int:
    """The 24 hourly JSON Lines objects, one line a :class:`PredictionLogRecord` (as the consumer writes them)."""
    import msgspec

    log = directory / "predictions"
    log.mkdir()
    numeric = {name: [None if math.isnan(v) else v for v in traffic.features[name].tolist()] for name in data.NUMERIC}
    categorical = {name: traffic.features[name].tolist() for name in data.CATEGORICAL}
    names = list(numeric) + list(categorical)
    values = list(numeric.values()) + list(categorical.values())
    stamps = np.datetime_as_string(traffic.time, unit="us").tolist()
    hours = ((traffic.time - data.START) // np.timedelta64(1, "h")).astype(np.int64)
    scores = traffic.score.tolist()
    encoder = msgspec.json.Encoder()
    written = 0
    for hour in range(data.HOURS):
        rows = np.flatnonzero(hours == hour).tolist()
        lines = [
            {
                "usecase": "bench_monitor",
                "request_id": f"r{row}",
                "index": 0,
                "entity_id": str(row),
                "features": {name: column[row] for name, column in zip(names, values, strict=True)},
                "score": scores[row],
                "label": None,
                "threshold": THRESHOLD,
                "model_version": int(MODEL_VERSION),
                "variant": "champion",
                "served": True,
                "degraded": False,
                "time": stamps[row] + "Z",
            }
            for row in rows
        ]
        body = b"\n".join(encoder.encode(line) for line in lines) + b"\n"
        (log / f"hour-{hour:02d}.jsonl").write_bytes(body)
        written += len(body)
    np.savez(directory / "labels.npz", positive=traffic.positive, labeled=traffic.labeled)
    return written


# ---------------------------------------------------------------------------------------------------------------
# The measured parts (each in its own one-core subprocess)
# ---------------------------------------------------------------------------------------------------------------


def _load(directory: Path) -> tuple[Any, Any]:
    from shared.monitoring.baseline import Baseline
    from shared.usecase.settings import UseCase

    usecase = UseCase.model_validate(usecase_document())
    baseline = Baseline.model_validate_json((directory / "baseline.json").read_text())
    return usecase, baseline


def _now() -> datetime:
    return datetime(2026, 3, 2, tzinfo=UTC)


def _windows(  # noqa: PLR0917  (the columns of one window)
    features: dict[str, np.ndarray],
    score: np.ndarray,
    when: np.ndarray,
    positive: np.ndarray,
    labeled: np.ndarray,
    hours: Sequence[float],
) -> list[Any]:
    """One :class:`MonitorWindow` per length, ending at :func:`_now`; labels are the labeled rows inside it."""
    from shared.monitoring.types import MonitorWindow
    from shared.monitoring.window import JoinedColumns, PredictionColumns

    end = np.datetime64(_now().replace(tzinfo=None), "us")
    windows = []
    for length in hours:
        inside = when >= end - np.timedelta64(int(length * 3600 * 1_000_000), "us")
        rows = int(inside.sum())
        with_label = inside & labeled
        labels = int(with_label.sum())
        segments = {name: features[name][with_label] for name in data.SEGMENTS}
        windows.append(
            MonitorWindow(
                hours=length,
                predictions=PredictionColumns(
                    features={name: column[inside] for name, column in features.items()},
                    score=score[inside],
                    model_version=np.full(rows, MODEL_VERSION, dtype=object),
                    variant=np.full(rows, "champion", dtype=object),
                    time=when[inside],
                ),
                labels=JoinedColumns(
                    predictions=PredictionColumns(
                        score=score[with_label],
                        features=segments,
                        model_version=np.full(labels, MODEL_VERSION, dtype=object),
                        variant=np.full(labels, "champion", dtype=object),
                    ),
                    positive=positive[with_label],
                ),
            )
        )
    return windows


def _served(baseline: Any) -> list[Any]:
    from shared.monitoring.types import ServedModel

    return [ServedModel(model_version=MODEL_VERSION, variant="champion", baseline=baseline)]


def _report_figures(report: Any) -> dict[str, Any]:
    return {
        "cells": len(report.cells),
        "alerts": len(report.violations),
        "insufficient": len(report.insufficient()),
        "alerted": sorted({f"{v.window}: {v.metric} {v.feature_name} on {v.segment}" for v in report.violations}),
    }


def part_parse(directory: Path) -> dict[str, Any]:
    from shared.monitoring.window import concatenate, feature_kinds, prediction_columns

    usecase, _ = _load(directory)
    kinds = feature_kinds(usecase.contract)
    started = time.perf_counter()
    parts, unreadable = [], 0
    for path in sorted((directory / "predictions").glob("*.jsonl")):
        parsed = prediction_columns(path.read_bytes(), kinds)
        parts.append(parsed.columns)
        unreadable += parsed.unreadable
    columns = concatenate(parts, kinds)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "lines": len(columns), "unreadable": unreadable, "peak_mb": peak_mb()}


def part_monitor(directory: Path) -> dict[str, Any]:
    from shared.monitoring.monitor import run_monitor

    usecase, baseline = _load(directory)
    traffic = data.generate(ROWS, shifted=True)
    models = _served(baseline)
    out: dict[str, Any] = {}
    for name, hours in (("one_window", (24.0,)), ("three_windows", usecase.monitoring.windows_hours)):
        windows = _windows(traffic.features, traffic.score, traffic.time, traffic.positive, traffic.labeled, hours)
        started = time.perf_counter()
        report = run_monitor(usecase, now=_now(), models=models, windows=windows)
        out[name] = {"windows_hours": list(hours), "seconds": round(time.perf_counter() - started, 2)}
        out[name] |= _report_figures(report)
    out["peak_mb"] = peak_mb()
    windows = _windows(traffic.features, traffic.score, traffic.time, traffic.positive, traffic.labeled, (24.0,))
    profile = cProfile.Profile()
    profile.enable()
    run_monitor(usecase, now=_now(), models=models, windows=windows)
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(PROFILE_LINES)
    out["profile_cumulative"] = _profile_lines(text.getvalue())
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(PROFILE_LINES)
    out["profile_tottime"] = _profile_lines(text.getvalue())
    return out


def _profile_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return [line.rstrip() for line in lines[start:] if line.strip()]


def part_scale(directory: Path) -> dict[str, Any]:
    """One invocation without the label join: parse the day's log, then the monitor over the three windows."""
    from shared.monitoring.monitor import run_monitor
    from shared.monitoring.window import concatenate, feature_kinds, prediction_columns

    usecase, baseline = _load(directory)
    kinds = feature_kinds(usecase.contract)
    labels = np.load(directory / "labels.npz")
    started = time.perf_counter()
    columns = concatenate(
        (prediction_columns(p.read_bytes(), kinds).columns for p in sorted((directory / "predictions").glob("*"))),
        kinds,
    )
    parsed = time.perf_counter()
    windows = _windows(
        dict(columns.features),
        columns.score,
        columns.time,
        labels["positive"],
        labels["labeled"],
        usecase.monitoring.windows_hours,
    )
    report = run_monitor(usecase, now=_now(), models=_served(baseline), windows=windows)
    report.to_json()
    done = time.perf_counter()
    return {
        "seconds": round(done - started, 2),
        "parse_seconds": round(parsed - started, 2),
        "monitor_seconds": round(done - parsed, 2),
        "peak_mb": peak_mb(),
        "alerts": len(report.violations),
    }


PARTS = {"parse": part_parse, "monitor": part_monitor, "scale": part_scale}


def run_part(
    part: str, directory: Path, python: Path | str = sys.executable, *, timeout: float = 900
) -> dict[str, Any]:
    """A part in a fresh one-core subprocess; its figures are the last line it prints (JSON)."""
    module = "bench.evidently_side" if part == "evidently" else "bench.monitor_bench"
    command = [str(python), "-m", module, "--part", part, "--dir", str(directory), "--rows", str(ROWS)]
    env = os.environ | ONE_CORE | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{part} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_baseline(directory)
        log_bytes = write_prediction_log(directory, data.generate(ROWS, shifted=True))
        parse = run_part("parse", directory)
        monitor = run_part("monitor", directory)
        scale = run_part("scale", directory)
        evidently: dict[str, Any] = {"skipped": f"{EVIDENTLY_PYTHON} is missing: run `make bench`"}
        if EVIDENTLY_PYTHON.exists():
            evidently = run_part("evidently", directory, EVIDENTLY_PYTHON)
    ours = monitor["one_window"]["seconds"]
    theirs = evidently.get("seconds")
    results = {
        "rows": ROWS,
        "features": len(data.NUMERIC) + len(data.CATEGORICAL),
        "numeric_features": len(data.NUMERIC),
        "categorical_features": len(data.CATEGORICAL),
        "segment_columns": list(data.SEGMENTS),
        "labeled_share": data.LABELED_SHARE,
        "holdout_rows": HOLDOUT_ROWS,
        "cores": 1,
        "log_bytes": log_bytes,
        "parse": parse,
        "monitor": monitor,
        "scale": scale | {"lambda_memory_mb": LAMBDA_MEMORY_MB, "lambda_timeout_s": 900},
        "evidently": evidently,
        "ratio_evidently_over_ours": round(theirs / ours, 1) if theirs else None,
        "targets": {"ratio": TARGET_RATIO, "peak_mb": LAMBDA_MEMORY_MB, "seconds": 900},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    summary = {k: v for k, v in results.items() if k != "monitor"} | {
        "monitor": {k: v for k, v in monitor.items() if not k.startswith("profile")}
    }
    print(json.dumps(summary, indent=2))
    print("\n".join(monitor["profile_tottime"]))


def _part_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=sorted(PARTS), required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=ROWS)
    arguments = parser.parse_args(argv)
    one_core()
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    print(json.dumps(PARTS[arguments.part](arguments.dir)))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        _part_main(sys.argv[1:])
    else:
        main()
