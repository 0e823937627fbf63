"""Evaluation on the holdout: discrimination, calibration, per-segment metrics, and a cost-based threshold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

RELIABILITY_BINS = 10
MIN_SEGMENT_ROWS = 30
"""A segment value with fewer holdout rows than this is skipped (its metrics would be noise)."""


class ReliabilityBin(BaseModel):
    model_config = ConfigDict(frozen=True)

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


class ThresholdChoice(BaseModel):
    """The decision threshold with the least expected cost on the holdout (predict positive when p >= it)."""

    model_config = ConfigDict(frozen=True)

    threshold: float
    expected_cost: float
    """Total cost on the holdout: false positives * their cost + false negatives * theirs."""
    cost_per_row: float
    false_positive_cost: float
    false_negative_cost: float
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float


def reliability_table(y_true: np.ndarray, y_prob: np.ndarray, *, bins: int = RELIABILITY_BINS) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]: how many predictions fell in each, their mean, and the observed rate."""
    index = np.minimum((np.asarray(y_prob) * bins).astype(np.int64), bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        table.append(
            ReliabilityBin(
                lower=b / bins,
                upper=(b + 1) / bins,
                count=count,
                mean_predicted=float(y_prob[members].mean()) if count else None,
                observed_rate=float(y_true[members].mean()) if count else None,
            )
        )
    return table


def expected_calibration_error(table: Sequence[ReliabilityBin]) -> float:
    """Sum over bins of (bin count / n) * |mean predicted - observed rate|."""
    total = sum(b.count for b in table)
    if not total:
        return 0.0
    return float(
        sum(b.count / total * abs((b.mean_predicted or 0.0) - (b.observed_rate or 0.0)) for b in table if b.count)
    )


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, Any]:
    """ROC AUC, PR AUC (average precision), log loss, Brier score, ECE and the reliability table."""
    table = reliability_table(y_true, y_prob)
    return {
        "rows": len(y_true),
        "positives": int(np.sum(y_true)),
        "roc_auc": float(roc_auc_score(y_true, y_prob)),
        "pr_auc": float(average_precision_score(y_true, y_prob)),
        "log_loss": float(log_loss(y_true, y_prob, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, y_prob)),
        "ece": expected_calibration_error(table),
        "reliability": [b.model_dump() for b in table],
    }


def cost_threshold(
    y_true: np.ndarray, y_prob: np.ndarray, *, false_positive_cost: float, false_negative_cost: float
) -> ThresholdChoice:
    """The threshold minimizing FP·c_fp + FN·c_fn over every distinct score (and "never positive").

    Ties go to the lowest threshold (more recall for the same cost).
    """
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob, dtype=np.float64)
    positives, negatives = np.sort(y_prob[y_true == 1]), np.sort(y_prob[y_true == 0])
    candidates = np.append(np.unique(y_prob), np.nextafter(y_prob.max(), np.inf))
    false_negatives = np.searchsorted(positives, candidates, side="left")
    false_positives = len(negatives) - np.searchsorted(negatives, candidates, side="left")
    cost = false_positives * false_positive_cost + false_negatives * false_negative_cost
    best = int(np.argmin(cost))
    fp, fn = int(false_positives[best]), int(false_negatives[best])
    tp = len(positives) - fn
    return ThresholdChoice(
        threshold=float(candidates[best]),
        expected_cost=float(cost[best]),
        cost_per_row=float(cost[best]) / len(y_true),
        false_positive_cost=false_positive_cost,
        false_negative_cost=false_negative_cost,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / len(positives) if len(positives) else 0.0,
    )


def segment_metrics(
    segments: pd.DataFrame, y_true: np.ndarray, y_prob: np.ndarray, *, min_rows: int = MIN_SEGMENT_ROWS
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per declared segment column, per value: the metrics, or ``{"skipped": reason}``."""
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for column in segments.columns:
        values = segments[column].astype(object).where(segments[column].notna(), "null").astype(str).to_numpy()
        per_value: dict[str, dict[str, Any]] = {}
        for value in sorted(set(values)):
            members = values == value
            rows, positives = int(members.sum()), int(y_true[members].sum())
            if rows < min_rows:
                per_value[value] = {"rows": rows, "skipped": f"too small: {rows} rows < {min_rows}"}
            elif positives in (0, rows):
                per_value[value] = {"rows": rows, "skipped": "single class: AUC is undefined"}
            else:
                metrics = classification_metrics(y_true[members], y_prob[members])
                metrics.pop("reliability")
                per_value[value] = metrics
        result[str(column)] = per_value
    return result


def evaluate(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    segments: pd.DataFrame,
    false_positive_cost: float,
    false_negative_cost: float,
) -> dict[str, Any]:
    """Every holdout metric, as metrics.json holds them."""
    choice = cost_threshold(
        y_true, y_prob, false_positive_cost=false_positive_cost, false_negative_cost=false_negative_cost
    )
    return {
        "holdout": classification_metrics(y_true, y_prob),
        "segments": segment_metrics(segments, y_true, y_prob),
        "threshold": choice.model_dump(),
    }


def segment_frame(rows: pd.DataFrame, segments: Sequence[str] | Mapping[str, Any]) -> pd.DataFrame:
    """The declared segment columns of ``rows`` (absent ones as nulls)."""
    return pd.DataFrame({s: rows[s] if s in rows else pd.Series(None, index=rows.index) for s in segments})
