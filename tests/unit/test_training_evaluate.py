"""Holdout evaluation: metrics agree with scikit-learn's, calibration and the cost threshold are right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from training.evaluate import (
    classification_metrics,
    cost_threshold,
    expected_calibration_error,
    reliability_table,
    segment_metrics,
)

Y = np.array([0, 0, 1, 1, 0, 1])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9])


def test_a_missed_positive_costing_five_times_a_false_alarm_lowers_the_threshold() -> None:
    # Given six scored rows, and a false negative costing 5 and a false positive 1
    # When the threshold is chosen from the costs
    choice = cost_threshold(Y, P, false_positive_cost=1.0, false_negative_cost=5.0)

    # Then flagging everything from 0.35 up (2 false alarms, no miss) is cheapest: cost 2
    assert choice.threshold == 0.35
    assert choice.expected_cost == 2.0
    assert (choice.false_positives, choice.false_negatives, choice.true_positives) == (2, 0, 3)
    assert choice.precision == pytest.approx(3 / 5)
    assert choice.recall == 1.0


def test_a_false_alarm_costing_five_times_a_miss_raises_the_threshold() -> None:
    # Given the same rows with the costs swapped
    # When the threshold is chosen
    choice = cost_threshold(Y, P, false_positive_cost=5.0, false_negative_cost=1.0)

    # Then only scores from 0.8 up are flagged: one miss, no false alarm, cost 1
    assert choice.threshold == 0.8
    assert choice.expected_cost == 1.0
    assert choice.precision == 1.0
    assert choice.recall == pytest.approx(2 / 3)


def test_flagging_nobody_is_a_candidate_when_false_alarms_are_ruinous() -> None:
    # Given false alarms costing 100 and misses 1
    choice = cost_threshold(Y, P, false_positive_cost=100.0, false_negative_cost=1.0)
    # Then the best is still 0.8 (no false alarm, one miss) — never worse than flagging nobody (3 misses)
    assert choice.expected_cost == 1.0
    # And with only negatives above every positive, flagging nobody wins
    choice = cost_threshold(np.array([1, 0]), np.array([0.2, 0.9]), false_positive_cost=10, false_negative_cost=1)
    assert choice.threshold > 0.9
    assert (choice.true_positives, choice.false_positives, choice.precision) == (0, 0, 0.0)


def test_metrics_are_scikit_learns_own() -> None:
    # Given random scores on a random label
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    p = np.clip(rng.random(300) * 0.6 + y * 0.3, 0.001, 0.999)

    # When the metrics are computed
    metrics = classification_metrics(y, p)

    # Then they are scikit-learn's figures
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, p))
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, p))
    assert sum(b["count"] for b in metrics["reliability"]) == 300


def test_expected_calibration_error_on_a_known_example() -> None:
    # Given two predictions of 0.05 (one positive) and two of 0.95 (both positive), and one of exactly 1.0
    y = np.array([0, 1, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 0.95, 1.0])

    # When the reliability table is built
    table = reliability_table(y, p)

    # Then the first bin has mean 0.05 / observed 0.5, the last (holding 1.0) mean 0.9667 / observed 1
    assert (table[0].count, table[0].mean_predicted, table[0].observed_rate) == (2, 0.05, 0.5)
    assert table[9].count == 3
    assert table[9].mean_predicted == pytest.approx((0.95 + 0.95 + 1.0) / 3)
    assert all(b.count == 0 and b.mean_predicted is None for b in table[1:9])
    # And the ECE is the count-weighted gap: 2/5 * 0.45 + 3/5 * (1 - 0.9667) = 0.2
    assert expected_calibration_error(table) == pytest.approx(2 / 5 * 0.45 + 3 / 5 * (1 - 2.9 / 3))


def test_segments_too_small_or_single_class_are_skipped_with_a_reason() -> None:
    # Given a segment with a big mixed value, a small value, and a single-class value
    rng = np.random.default_rng(1)
    segment = ["big"] * 100 + ["small"] * 5 + ["pure"] * 40
    y = np.concatenate([rng.integers(0, 2, 100), [0, 1, 0, 1, 0], np.zeros(40, dtype=int)])
    p = rng.random(145)

    # When per-segment metrics are computed
    result = segment_metrics(pd.DataFrame({"plan": segment}), y, p)["plan"]

    # Then the big value has an AUC, the others a reason
    assert result["big"]["roc_auc"] == pytest.approx(roc_auc_score(y[:100], p[:100]))
    assert result["small"]["skipped"].startswith("too small")
    assert result["pure"]["skipped"].startswith("single class")
