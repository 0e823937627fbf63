"""Evidently's side of the monitor benchmark: run with ``bench/.venv-evidently/bin/python`` (Evidently 0.7.x).

The same rows as ours (:func:`bench.monitor_data.generate`, same seeds, numpy only): the holdout as the
reference, the served rows as the current data, as pandas frames (built before the clock starts).

* ``DataDriftPreset`` over the 20 features and the score, all current rows against the reference (Evidently's
  defaults above 1,000 rows: normed Wasserstein distance for numeric columns, Jensen-Shannon for categorical);
* ``ClassificationPreset`` on the labeled current rows (30%) against the reference: accuracy, precision, recall,
  F1, ROC AUC, log loss, TPR/TNR/FPR/FNR, per label, at the 0.5 threshold, with its curves.

Each is one ``Report(...).run(current, reference)`` (metrics and widgets), timed on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import monitor_data as data

HOLDOUT_SEED = data.SEED + 1
HOLDOUT_ROWS = 20_000


def peak_mb() -> float:
    """Peak resident memory: ``VmHWM`` on Linux (``ru_maxrss`` also counts the parent's, copied at fork)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def frame(traffic: data.Traffic, rows: np.ndarray | None = None) -> Any:
    import pandas as pd

    take = slice(None) if rows is None else rows
    columns: dict[str, Any] = {name: traffic.features[name][take] for name in (*data.NUMERIC, *data.CATEGORICAL)}
    columns["prediction"] = traffic.score[take]
    columns["target"] = traffic.positive[take].astype(np.int64)
    return pd.DataFrame(columns)


def run(rows: int) -> dict[str, Any]:
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[*data.NUMERIC, "prediction"],
        categorical_columns=list(data.CATEGORICAL),
        classification=[BinaryClassification(target="target", prediction_probas="prediction", pos_label=1)],
    )
    holdout = data.generate(HOLDOUT_ROWS, seed=HOLDOUT_SEED)
    served = data.generate(rows, shifted=True)
    reference = Dataset.from_pandas(frame(holdout), data_definition=definition)
    current = Dataset.from_pandas(frame(served), data_definition=definition)
    labeled = Dataset.from_pandas(frame(served, served.labeled), data_definition=definition)
    started = time.perf_counter()
    Report([DataDriftPreset(columns=[*data.NUMERIC, *data.CATEGORICAL, "prediction"])]).run(current, reference)
    drifted = time.perf_counter()
    Report([ClassificationPreset()]).run(labeled, reference)
    done = time.perf_counter()
    import evidently
    import pandas as pd

    return {
        "version": evidently.__version__,
        "pandas": pd.__version__,
        "rows": rows,
        "labeled_rows": int(served.labeled.sum()),
        "data_drift_seconds": round(drifted - started, 2),
        "classification_seconds": round(done - drifted, 2),
        "seconds": round(done - started, 2),
        "peak_mb": peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="evidently")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--rows", type=int, required=True)
    arguments = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(json.dumps(run(arguments.rows)))


if __name__ == "__main__":
    main()
