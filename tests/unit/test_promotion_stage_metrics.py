"""Which metrics a live stage compares, and how a window's answers add up (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.promotion.exceptions import PromotionError
from shared.promotion.stage_metrics import candidate_variant, live_window, window_period, window_queries
from shared.promotion.transitions import Stage
from shared.scoring import telemetry
from tests.unit.promotion_fixtures import T0, USECASE


def _metric_of(queries: list[dict], query_id: str) -> tuple[str, str, str]:
    (query,) = [q for q in queries if q["Id"] == query_id]
    stat = query["MetricStat"]
    variant = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}[telemetry.DIMENSION_VARIANT]
    return stat["Metric"]["MetricName"], variant, stat["Stat"]


def test_a_shadow_window_counts_shadow_scores_and_a_canary_window_predictions() -> None:
    # Given the queries of a shadow and of a canary window
    shadow = window_queries(USECASE, Stage.SHADOW, 300)
    canary = window_queries(USECASE, Stage.CANARY, 300)
    # Then the candidate's samples are its shadow scores, or its served predictions
    assert _metric_of(shadow, "cand_samples") == (telemetry.SHADOW_SCORES, telemetry.SHADOW, "Sum")
    assert _metric_of(canary, "cand_samples") == (telemetry.PREDICTIONS, telemetry.CHALLENGER, "Sum")
    # And the champion is compared in both
    assert _metric_of(canary, "champ_p99") == (telemetry.LATENCY, telemetry.CHAMPION, "p99")
    assert {q["MetricStat"]["Period"] for q in shadow} == {300}


def test_a_window_sums_counts_and_keeps_the_worst_p99() -> None:
    # Given two periods of answers
    at = [T0, T0 + timedelta(minutes=1)]
    results = {
        "cand_samples": list(zip(at, [10.0, 5.0], strict=True)),
        "cand_p99": list(zip(at, [20.0, 35.0], strict=True)),
        "delta_sum": [(T0, 1.0)],
        "delta_count": [(T0, 4.0)],
    }
    # When they are read as a window
    window = live_window(results)
    # Then counts are summed, the p99 is the worst period's and the mean delta is sum / count
    assert window.candidate_samples == 15
    assert window.candidate_latency_p99_ms == 35.0
    assert window.champion_latency_p99_ms is None
    assert window.mean_score_delta == 0.25


def test_only_live_stages_have_a_candidate_variant_and_periods_are_whole_minutes() -> None:
    assert candidate_variant(Stage.CANARY) == telemetry.CHALLENGER
    with pytest.raises(PromotionError):
        candidate_variant(Stage.REPLAY)
    assert window_period(T0, T0 + timedelta(seconds=61)) == 120
