"""The baseline of a trained model: its holdout summarized as ``baseline.json`` (:class:`Baseline`).

:func:`build_baseline` is pure: the holdout rows, the served model's scores on them, the use case and the deployed
threshold in; a :class:`Baseline` out. Every statistic comes from :mod:`shared.monitoring.statistics`, the module
the monitor computes a window with, so the baseline and a window are computed identically.

- Features are the contract's model inputs (``numeric_features``, ``categorical_features``), with values as the
  ONNX feed sees them (:func:`training.model.feature_frame`): numerics as floats (float32-rounded, NaN for null),
  categoricals as text (``""`` for null, counted as a null and left out of the category counts).
- A numeric feature (and the score) gets :data:`BINS` quantile bins (:func:`quantile_edges`; fewer when it has
  few distinct values), the holdout's count per bin (nulls left out, so the counts sum to
  ``count - null_count``), its mean and standard deviation, and a seeded sample of at most
  :data:`SAMPLE_SIZE` non-null values (sorted) for the two-sample KS test.
- Metrics (:class:`MetricSummary`) overall and per value of each declared segment (``contract.segments``, values
  as :func:`shared.monitoring.segments.segment_value` spells them); a value with fewer than
  :data:`~training.evaluate.MIN_SEGMENT_ROWS` rows or one class only is left out, as in metrics.json.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from shared.monitoring import statistics as stats
from shared.monitoring.baseline import Baseline, CategoricalProfile, MetricSummary, NumericProfile
from shared.monitoring.exceptions import InsufficientDataError
from shared.monitoring.segments import segment_value
from shared.usecase.features import MISSING_TEXT, categorical_features, numeric_features
from shared.usecase.settings import UseCase
from training.evaluate import MIN_SEGMENT_ROWS
from training.model import feature_frame, label_vector

BINS = 10
"""Quantile bins per numeric feature and for the score."""
SAMPLE_SIZE = 1_000
"""At most this many non-null values of a numeric feature are kept for the KS test."""
SAMPLE_SEED = 0


def numeric_profile(values: np.ndarray, *, bins: int = BINS, sample_size: int = SAMPLE_SIZE) -> NumericProfile:
    """Count, nulls (NaN), quantile edges and the count per bin, mean and std, and a seeded sample of the values."""
    array = np.asarray(values, dtype=np.float64).ravel()
    finite = array[~np.isnan(array)]
    if finite.size == 0:  # a feature always null: one empty bin
        return NumericProfile(count=int(array.size), null_count=int(array.size), edges=[], counts=[0])
    edges = stats.quantile_edges(finite, bins)
    rng = np.random.default_rng(SAMPLE_SEED)
    sample = finite if finite.size <= sample_size else rng.choice(finite, size=sample_size, replace=False)
    return NumericProfile(
        count=int(array.size),
        null_count=int(array.size - finite.size),
        edges=[float(e) for e in edges],
        counts=[int(c) for c in stats.bin_counts(finite, edges)],
        sample=[float(v) for v in np.sort(sample)],
        mean=float(finite.mean()),
        std=float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
    )


def categorical_profile(values: pd.Series) -> CategoricalProfile:
    """Count, nulls (``""``, as the model reads a null) and the count of each category, sorted by category."""
    text = values.astype(str)
    present = text[text != MISSING_TEXT]
    counts = present.value_counts()
    return CategoricalProfile(
        count=len(text),
        null_count=int(len(text) - len(present)),
        counts={str(k): int(counts[k]) for k in sorted(counts.index)},
    )


def metric_summary(scores: np.ndarray, labels: np.ndarray, threshold: float) -> MetricSummary:
    """The metrics of one population at ``threshold``; AUC (and its variance) is None where it is undefined."""
    try:
        auc = stats.summarize_auc(scores, labels)
        auc_value: float | None = auc.value
        auc_variance: float | None = auc.variance
    except InsufficientDataError:  # one class only, or fewer than two rows of a class
        auc_value = stats.auc(scores, labels) if 0 < labels.sum() < labels.size else None
        auc_variance = None
    brier = stats.summarize_brier(scores, labels)
    rates = stats.threshold_rates(scores, labels, threshold)
    n = rates.positive_rate.n
    predicted, true_positives, positives = rates.positive_rate.successes, rates.precision.successes, rates.recall.n
    false_negatives = positives - true_positives
    return MetricSummary(
        n=n,
        positives=positives,
        auc=auc_value,
        auc_variance=auc_variance,
        brier=brier.mean,
        brier_variance=brier.variance,
        ece=stats.expected_calibration_error(scores, labels),
        positive_rate=positives / n,
        mean_score=float(np.mean(scores)),
        threshold=threshold,
        true_positives=true_positives,
        false_positives=predicted - true_positives,
        false_negatives=false_negatives,
        true_negatives=n - predicted - false_negatives,
    )


def segment_summaries(
    segment: pd.Series, scores: np.ndarray, labels: np.ndarray, threshold: float, *, min_rows: int = MIN_SEGMENT_ROWS
) -> dict[str, MetricSummary]:
    """Per value of one segment column: its metrics; values with too few rows or one class are left out."""
    values = np.array([segment_value(v) for v in segment.astype(object).where(segment.notna(), None)], dtype=object)
    summaries: dict[str, MetricSummary] = {}
    for value in sorted(set(values)):
        members = values == value
        rows, positives = int(members.sum()), int(labels[members].sum())
        if rows < min_rows or positives in (0, rows):
            continue
        summaries[value] = metric_summary(scores[members], labels[members], threshold)
    return summaries


def build_baseline(
    holdout: pd.DataFrame,
    scores: np.ndarray,
    usecase: UseCase,
    threshold: float,
    *,
    bins: int = BINS,
    sample_size: int = SAMPLE_SIZE,
    min_segment_rows: int = MIN_SEGMENT_ROWS,
) -> Baseline:
    """``baseline.json`` of a model whose served scores on ``holdout`` are ``scores``, deployed at ``threshold``."""
    contract = usecase.contract
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size != len(holdout):
        raise ValueError(f"{scores.size} scores for {len(holdout)} holdout rows")
    if not math.isfinite(threshold):
        raise ValueError(f"the threshold must be a finite number, got {threshold}")
    features = feature_frame(holdout, contract)
    labels = label_vector(holdout, contract)
    profiles: dict[str, NumericProfile | CategoricalProfile] = {
        name: numeric_profile(features[name].to_numpy(np.float64), bins=bins, sample_size=sample_size)
        for name in numeric_features(contract)
    }
    profiles |= {name: categorical_profile(features[name]) for name in categorical_features(contract)}
    segments = {
        column: segment_summaries(
            holdout[column] if column in holdout else pd.Series(None, index=holdout.index, dtype=object),
            scores,
            labels,
            threshold,
            min_rows=min_segment_rows,
        )
        for column in contract.segments
    }
    return Baseline(
        usecase=usecase.name,
        contract_version=contract.version,
        threshold=threshold,
        rows=len(holdout),
        features=profiles,
        score=numeric_profile(scores, bins=bins, sample_size=sample_size),
        overall=metric_summary(scores, labels, threshold),
        segments=segments,
    )
