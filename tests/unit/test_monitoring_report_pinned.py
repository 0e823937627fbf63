"""The monitor's whole report on one seeded, awkward dataset is pinned: a faster path must not change a cell.

The pinned report (``monitoring_report_pinned.json``) was written by the monitor before its columns were encoded
once per window (categories as integer codes, masks reused, KS by counting against the reference sample). The
dataset exercises every path those shortcuts touch: numeric features with NaN, categorical ones with None and
categories never seen in training, a text segment column with nulls and an unseen value, a numeric segment
column (floats with NaN, spelled ``"2"`` not ``"2.0"``), a feature absent from the log, a fixed-width text
column, two model versions with baselines (champion and challenger) and one without, two windows, labels on
part of the rows. Numbers must agree to floating-point noise; every sentence, verdict and count exactly.

Regenerate (only when a change of result is intended): ``python -m tests.unit.test_monitoring_report_pinned``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shared.monitoring.baseline import Baseline, CategoricalProfile, MetricSummary, NumericProfile
from shared.monitoring.monitor import run_monitor
from shared.monitoring.statistics import (
    bin_counts,
    expected_calibration_error,
    quantile_edges,
    summarize_auc,
    summarize_brier,
)
from shared.monitoring.types import MonitoringReport, MonitorWindow, ServedModel
from shared.monitoring.window import JoinedColumns, PredictionColumns
from shared.usecase.settings import UseCase

PINNED = Path(__file__).with_name("monitoring_report_pinned.json")
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
THRESHOLD = 0.5
CONTRACTS = ("Month-to-month", "One year", "Two year")
PAYMENTS = ("card", "bank", "check")
NUMERIC = ("tenure", "monthly", "calls")
SEGMENTS = ("contract", "calls")
RELATIVE = 1e-9


def usecase() -> UseCase:
    columns: list[dict[str, Any]] = [
        {"name": "customer", "type": "int"},
        {"name": "churn", "type": "category", "allowed": ["No", "Yes"]},
        {"name": "tenure", "type": "float", "nullable": True},
        {"name": "monthly", "type": "float", "nullable": True},
        {"name": "calls", "type": "float", "nullable": True},
        {"name": "contract", "type": "category", "allowed": list(CONTRACTS), "nullable": True},
        {"name": "payment", "type": "string", "nullable": True},
        {"name": "region", "type": "string", "nullable": True},
        {"name": "legacy", "type": "float", "nullable": True},
    ]
    contract = {
        "version": "1.0.0",
        "entity_id": "customer",
        "label": "churn",
        "positive_class": "Yes",
        "segments": list(SEGMENTS),
        "columns": columns,
    }
    return UseCase.model_validate({"name": "churn", "contract": contract})


def draw(rng: np.random.Generator, rows: int, *, shifted: bool) -> dict[str, np.ndarray]:
    contract = rng.choice(np.array(CONTRACTS, dtype=object), size=rows, p=[0.5, 0.3, 0.2])
    payment = rng.choice(np.array(PAYMENTS, dtype=object), size=rows, p=[0.5, 0.3, 0.2])
    tenure = rng.normal(30.0, 10.0, size=rows)
    monthly = rng.normal(70.0, 20.0, size=rows)
    calls = rng.poisson(2.0, size=rows).clip(0, 4).astype(np.float64)
    logit = -0.6 - 0.08 * (tenure - 30.0) + 0.5 * (calls - 2.0) + 0.8 * (contract == "Month-to-month")
    score = 1.0 / (1.0 + np.exp(-logit))
    positive = rng.uniform(size=rows) < score
    if shifted:
        monthly[contract == "Two year"] += 25.0
        payment[rng.uniform(size=rows) < 0.03] = "crypto"
        payment[rng.uniform(size=rows) < 0.02] = None
        contract[rng.uniform(size=rows) < 0.01] = None
        contract[rng.uniform(size=rows) < 0.005] = "Three year"
        tenure[rng.uniform(size=rows) < 0.05] = np.nan
        calls[rng.uniform(size=rows) < 0.02] = np.nan
        inside = contract == "One year"
        positive[inside] = rng.uniform(size=int(inside.sum())) < 0.5
    region = np.asarray(rng.choice(["north", "south"], size=rows), dtype="<U5")
    return {
        "tenure": tenure,
        "monthly": monthly,
        "calls": calls,
        "contract": contract,
        "payment": payment,
        "region": region,
        "score": score,
        "positive": positive,
    }


def metric_summary(score: np.ndarray, positive: np.ndarray) -> MetricSummary:
    auc = summarize_auc(score, positive)
    brier = summarize_brier(score, positive)
    predicted = score >= THRESHOLD
    return MetricSummary(
        n=int(score.size),
        positives=int(positive.sum()),
        auc=auc.value,
        auc_variance=auc.variance,
        brier=brier.mean,
        brier_variance=brier.variance,
        ece=expected_calibration_error(score, positive),
        positive_rate=float(positive.mean()),
        mean_score=float(score.mean()),
        threshold=THRESHOLD,
        true_positives=int((predicted & positive).sum()),
        false_positives=int((predicted & ~positive).sum()),
        false_negatives=int((~predicted & positive).sum()),
        true_negatives=int((~predicted & ~positive).sum()),
    )


def numeric_profile(values: np.ndarray, rng: np.random.Generator) -> NumericProfile:
    finite = values[~np.isnan(values)]
    edges = quantile_edges(finite)
    return NumericProfile(
        count=int(values.size),
        null_count=int(np.isnan(values).sum()),
        edges=edges.tolist(),
        counts=[int(c) for c in bin_counts(finite, edges)],
        sample=rng.choice(finite, size=min(finite.size, 500), replace=False).tolist(),
    )


def profile_baseline(holdout: dict[str, np.ndarray], rng: np.random.Generator) -> Baseline:
    features: dict[str, NumericProfile | CategoricalProfile] = {n: numeric_profile(holdout[n], rng) for n in NUMERIC}
    for name in ("contract", "payment"):
        found, counts = np.unique(holdout[name].astype(str), return_counts=True)
        features[name] = CategoricalProfile(
            count=int(holdout[name].size), null_count=0, counts=dict(zip(found.tolist(), counts.tolist(), strict=True))
        )
    features["legacy"] = numeric_profile(holdout["tenure"], rng)  # a feature the log no longer carries
    segments = {
        "contract": {v: holdout["contract"] == v for v in CONTRACTS},
        "calls": {str(int(v)): holdout["calls"] == v for v in (0.0, 1.0, 2.0, 3.0)},
    }
    return Baseline(
        usecase="churn",
        contract_version="1.0.0",
        threshold=THRESHOLD,
        rows=int(holdout["score"].size),
        features=features,
        score=numeric_profile(holdout["score"], rng),
        overall=metric_summary(holdout["score"], holdout["positive"]),
        segments={
            column: {v: metric_summary(holdout["score"][i], holdout["positive"][i]) for v, i in inside.items()}
            for column, inside in segments.items()
        },
    )


def window(rng: np.random.Generator, hours: float, rows: int) -> MonitorWindow:
    parts = [(version, draw(rng, rows, shifted=version != "7")) for version in ("7", "8", "9")]
    data = {name: np.concatenate([part[name] for _, part in parts]) for name in parts[0][1]}
    versions = np.concatenate([np.full(rows, version, dtype=object) for version, _ in parts])
    variants = np.repeat(np.array(["champion", "challenger", "shadow"], dtype=object), rows)
    served = versions != "9"
    predictions = PredictionColumns(
        features={name: data[name] for name in (*NUMERIC, "contract", "payment", "region")},
        score=data["score"],
        model_version=versions,
        variant=variants,
        served=served,
    )
    labeled = rng.uniform(size=versions.size) < 0.6
    labels = JoinedColumns(
        predictions=PredictionColumns(
            features={name: data[name][labeled] for name in SEGMENTS},
            score=data["score"][labeled],
            model_version=versions[labeled],
            variant=variants[labeled],
        ),
        positive=data["positive"][labeled],
    )
    return MonitorWindow(hours=hours, predictions=predictions, labels=labels)


def report() -> MonitoringReport:
    rng = np.random.default_rng(20261120)
    baseline = profile_baseline(draw(rng, 4000, shifted=False), rng)
    challenger = profile_baseline(draw(rng, 3000, shifted=False), rng)
    windows = [window(rng, 1.0, 400), window(rng, 6.0, 2500)]
    models = [
        ServedModel(model_version="7", variant="champion", baseline=baseline, threshold=0.45),
        ServedModel(model_version="8", variant="challenger", baseline=challenger),
        ServedModel(model_version="9", variant="shadow", baseline=None, reason="no baseline in its package"),
    ]
    return run_monitor(usecase(), now=NOW, models=models, windows=windows)


def pinned_form(found: MonitoringReport) -> dict[str, Any]:
    return json.loads(found.model_dump_json(exclude={"generated_at"}))


def differences(expected: Any, found: Any, at: str = "") -> list[str]:
    """Where ``found`` departs from ``expected``: floats beyond :data:`RELATIVE`, anything else at all."""
    if isinstance(expected, dict) and isinstance(found, dict) and expected.keys() == found.keys():
        return [d for key in expected for d in differences(expected[key], found[key], f"{at}.{key}")]
    if isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        pairs = enumerate(zip(expected, found, strict=True))
        return [d for i, (e, f) in pairs for d in differences(e, f, f"{at}[{i}]")]
    numbers = isinstance(expected, float) and isinstance(found, float | int) and not isinstance(found, bool)
    if numbers and math.isclose(expected, found, rel_tol=RELATIVE, abs_tol=1e-12):
        return []
    if expected == found and type(expected) is type(found):
        return []
    return [f"{at}: {expected!r} != {found!r}"]


def test_the_report_on_a_seeded_awkward_dataset_matches_the_pinned_one_to_floating_point_noise() -> None:
    # Given the report the monitor wrote on this dataset before its fast paths
    expected = json.loads(PINNED.read_text())

    # When the monitor runs on the same seeded dataset
    found = pinned_form(report())

    # Then every cell, estimate, curve, count and sentence is the same (numbers to floating-point noise)
    assert differences(expected, found) == []
    assert len(found["cells"]) > 200
    assert found["violations"]


if __name__ == "__main__":
    PINNED.write_text(json.dumps(pinned_form(report()), indent=1, sort_keys=True) + "\n")
