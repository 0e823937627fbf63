"""The statistics promotion decisions rest on: PSI, Jensen-Shannon divergence, decision agreement, p99.

Scores are probabilities in [0, 1]. Distributions are compared on fixed, equal-width bins over [0, 1]
(``bins`` of them; a score of exactly 1.0 falls in the last one, anything outside [0, 1] is clipped),
so two windows of traffic are always binned the same way, whatever their range.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_BINS = 10
PSI_EPSILON = 1e-4
"""Added to every bin's share (then renormalized) so an empty bin does not make PSI infinite."""


def score_histogram(scores: Sequence[float] | np.ndarray, *, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Counts of ``scores`` in ``bins`` equal-width bins over [0, 1] (1.0 in the last bin)."""
    values = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    index = np.minimum((values * bins).astype(np.int64), bins - 1)
    return np.bincount(index, minlength=bins).astype(np.float64)


def smoothed_shares(counts: Sequence[float] | np.ndarray, *, epsilon: float = PSI_EPSILON) -> np.ndarray:
    """Each bin's share of the total, plus ``epsilon``, renormalized to sum to 1: ``(c/n + ε) / (1 + Bε)``."""
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    if total <= 0:
        raise ValueError("a distribution needs at least one observation")
    return (values / total + epsilon) / (1.0 + epsilon * len(values))


def psi_from_counts(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, *, epsilon: float = PSI_EPSILON
) -> float:
    """Population stability index ``Σ (a - e) · ln(a / e)`` over smoothed bin shares (``expected`` = baseline)."""
    if len(expected) != len(actual):
        raise ValueError("both distributions need the same bins")
    e, a = smoothed_shares(expected, epsilon=epsilon), smoothed_shares(actual, epsilon=epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(
    expected_scores: Sequence[float] | np.ndarray,
    actual_scores: Sequence[float] | np.ndarray,
    *,
    bins: int = DEFAULT_BINS,
    epsilon: float = PSI_EPSILON,
) -> float:
    """PSI of two score samples on fixed bins over [0, 1]."""
    return psi_from_counts(
        score_histogram(expected_scores, bins=bins), score_histogram(actual_scores, bins=bins), epsilon=epsilon
    )


def js_divergence_from_counts(p_counts: Sequence[float] | np.ndarray, q_counts: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0: identical, 1: disjoint) of two binned distributions."""
    if len(p_counts) != len(q_counts):
        raise ValueError("both distributions need the same bins")
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("a distribution needs at least one observation")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray, y: np.ndarray) -> float:
        present = x > 0
        return float(np.sum(x[present] * np.log2(x[present] / y[present])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def js_divergence(
    p_scores: Sequence[float] | np.ndarray, q_scores: Sequence[float] | np.ndarray, *, bins: int = DEFAULT_BINS
) -> float:
    """Jensen-Shannon divergence (bits) of two score samples on fixed bins over [0, 1]."""
    return js_divergence_from_counts(score_histogram(p_scores, bins=bins), score_histogram(q_scores, bins=bins))


def decision_agreement(
    candidate_scores: Sequence[float] | np.ndarray,
    champion_scores: Sequence[float] | np.ndarray,
    *,
    candidate_threshold: float,
    champion_threshold: float,
) -> float:
    """Share of records on which both models decide alike, each at its own threshold (positive when score >= it)."""
    candidate = np.asarray(candidate_scores, dtype=np.float64)
    champion = np.asarray(champion_scores, dtype=np.float64)
    if candidate.shape != champion.shape:
        raise ValueError("agreement needs the two models' scores of the same records")
    if not len(candidate):
        raise ValueError("agreement needs at least one record")
    return float(np.mean((candidate >= candidate_threshold) == (champion >= champion_threshold)))


def p99(values: Sequence[float] | np.ndarray) -> float:
    """The 99th percentile (linear interpolation between order statistics, numpy's default)."""
    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        raise ValueError("a percentile needs at least one value")
    return float(np.percentile(array, 99))
