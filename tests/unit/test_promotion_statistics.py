"""PSI, Jensen-Shannon, agreement and p99 against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.promotion.statistics import (
    decision_agreement,
    js_divergence_from_counts,
    p99,
    psi,
    psi_from_counts,
    score_histogram,
    smoothed_shares,
)


def test_scores_fall_in_fixed_bins_with_one_in_the_last() -> None:
    # Given scores at bin edges, 1.0 and out of range
    scores = [0.0, 0.05, 0.1, 0.95, 1.0, -0.2, 1.3]
    # When they are binned
    counts = score_histogram(scores)
    # Then 0.0, 0.05 and -0.2 are in bin 0, 0.1 in bin 1, and 0.95, 1.0, 1.3 in bin 9
    assert counts.tolist() == [3, 1, 0, 0, 0, 0, 0, 0, 0, 3]


def test_identical_distributions_have_zero_psi() -> None:
    rng = np.random.default_rng(1)
    scores = rng.uniform(size=500)
    assert psi(scores, scores) == pytest.approx(0.0)


def test_psi_matches_a_hand_computation_on_two_bins() -> None:
    # Given expected shares (0.5, 0.5) and actual (0.8, 0.2), with no smoothing
    # When PSI is computed
    value = psi_from_counts([50, 50], [80, 20], epsilon=0.0)
    # Then it is (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5)
    expected = 0.3 * math.log(1.6) + (-0.3) * math.log(0.4)
    assert value == pytest.approx(expected)
    assert value == pytest.approx(0.4159, abs=1e-4)


def test_an_empty_bin_is_smoothed_not_infinite() -> None:
    # Given a bin the actual sample never fills
    shares = smoothed_shares([10, 0], epsilon=0.01)
    # Then each share gets epsilon and the total stays 1: (1 + .01)/(1.02), (0 + .01)/1.02
    assert shares.tolist() == pytest.approx([1.01 / 1.02, 0.01 / 1.02])
    assert math.isfinite(psi_from_counts([5, 5], [10, 0]))


def test_jensen_shannon_is_zero_for_equal_and_one_for_disjoint() -> None:
    assert js_divergence_from_counts([1, 1], [2, 2]) == pytest.approx(0.0)
    assert js_divergence_from_counts([1, 0], [0, 1]) == pytest.approx(1.0)


def test_jensen_shannon_matches_a_hand_computation() -> None:
    # p = (1, 0), q = (0.5, 0.5): m = (0.75, 0.25); KL(p||m) = log2(1/0.75); KL(q||m) = .5log2(.5/.75)+.5log2(.5/.25)
    kl_p = math.log2(1 / 0.75)
    kl_q = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2)
    assert js_divergence_from_counts([4, 0], [2, 2]) == pytest.approx(0.5 * kl_p + 0.5 * kl_q)


def test_agreement_compares_decisions_each_at_its_own_threshold() -> None:
    # Given candidate (threshold .5) and champion (threshold .3) scores of four records
    candidate = [0.6, 0.4, 0.2, 0.9]
    champion = [0.35, 0.35, 0.1, 0.2]
    # When: decisions are (T,F,F,T) and (T,T,F,F): they agree on records 1 and 3
    agreement = decision_agreement(candidate, champion, candidate_threshold=0.5, champion_threshold=0.3)
    # Then
    assert agreement == 0.5


def test_p99_interpolates_between_order_statistics() -> None:
    # 1..100: the 99th percentile sits at rank 0.99 * 99 = 98.01 → 99 + 0.01 * (100 - 99)
    assert p99(list(range(1, 101))) == pytest.approx(99.01)
    with pytest.raises(ValueError, match="at least one"):
        p99([])
