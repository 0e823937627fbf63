"""Analysis verdicts: pass, fail and inconclusive (too few samples), and how they combine."""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.promotion.analysis import CheckResult, LiveWindow, combine, live, offline_gate, replay
from shared.promotion.transitions import Verdict
from shared.usecase.settings import PromotionSettings

SETTINGS = PromotionSettings(min_samples=100, min_divergence_samples=100)


def _metrics(auc: float, ece: float = 0.03, *, segments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"auc": auc, "ece": ece, "holdout": {"roc_auc": auc, "ece": ece}, "segments": segments or {}}


def test_combine_any_fail_beats_inconclusive_beats_pass() -> None:
    passed = CheckResult(name="a", outcome=Verdict.PASS, reason="ok")
    unsure = CheckResult(name="b", outcome=Verdict.INCONCLUSIVE, reason="few")
    failed = CheckResult(name="c", outcome=Verdict.FAIL, reason="bad")
    assert combine([passed, unsure, failed]).outcome is Verdict.FAIL
    assert combine([passed, unsure]).outcome is Verdict.INCONCLUSIVE
    assert combine([passed]).outcome is Verdict.PASS
    assert combine([passed, failed]).reason == "bad"


def test_offline_gate_passes_a_candidate_as_good_as_the_champion() -> None:
    verdict = offline_gate(_metrics(0.84), _metrics(0.845), 3.0, SETTINGS)
    assert verdict.outcome is Verdict.PASS
    assert verdict.figures["auc.drop"] == np.float64(0.845 - 0.84)


def test_offline_gate_fails_on_auc_drop_ece_and_latency() -> None:
    # Given a candidate 0.05 AUC worse, badly calibrated and slow
    verdict = offline_gate(_metrics(0.80, ece=0.2), _metrics(0.85), 80.0, SETTINGS)
    # Then all three checks fail, with their reasons
    assert verdict.outcome is Verdict.FAIL
    failed = {c.name for c in verdict.checks if c.outcome is Verdict.FAIL}
    assert failed == {"auc", "ece", "latency"}


def test_offline_gate_compares_segments_skipping_those_skipped_in_either() -> None:
    # Given a segment value much worse, and another skipped by the champion's evaluation
    candidate = _metrics(0.85, segments={"contract": {"One year": {"roc_auc": 0.70}, "Two year": {"roc_auc": 0.5}}})
    champion = _metrics(
        0.85, segments={"contract": {"One year": {"roc_auc": 0.80}, "Two year": {"rows": 3, "skipped": "too small"}}}
    )
    # When the gate runs
    verdict = offline_gate(candidate, champion, 1.0, SETTINGS)
    # Then only the compared segment fails
    segment_checks = [c for c in verdict.checks if c.name.startswith("segment_auc")]
    assert [c.name for c in segment_checks] == ["segment_auc[contract=One year]"]
    assert verdict.outcome is Verdict.FAIL


def test_offline_gate_without_champion_checks_only_absolute_figures() -> None:
    verdict = offline_gate(_metrics(0.6), None, 1.0, SETTINGS)
    assert verdict.outcome is Verdict.PASS
    assert {c.name for c in verdict.checks} == {"ece", "latency"}


def test_replay_passes_similar_models_and_fails_divergent_ones() -> None:
    rng = np.random.default_rng(7)
    champion = rng.beta(2, 5, size=1000)
    close = np.clip(champion + rng.normal(0, 0.01, size=1000), 0, 1)
    assert replay(close, champion, (0.3, 0.3), SETTINGS).outcome is Verdict.PASS
    # Given a candidate whose scores are mirrored: distribution and decisions differ
    verdict = replay(1 - champion, champion, (0.3, 0.3), SETTINGS)
    assert verdict.outcome is Verdict.FAIL
    assert {c.name for c in verdict.checks if c.outcome is Verdict.FAIL} == {"psi", "agreement"}


def test_replay_with_too_few_records_is_inconclusive() -> None:
    verdict = replay([0.1] * 99, [0.1] * 99, (0.5, 0.5), SETTINGS)
    assert verdict.outcome is Verdict.INCONCLUSIVE
    assert "99 samples" in verdict.reason


def test_live_window_verdicts() -> None:
    buckets = (10.0,) * 10
    healthy = LiveWindow(
        candidate_samples=500,
        candidate_errors=1,
        candidate_latency_p99_ms=12.0,
        champion_samples=5000,
        champion_latency_p99_ms=10.0,
        candidate_score_buckets=buckets,
        champion_score_buckets=buckets,
        mean_score_delta=0.02,
    )
    assert live(healthy, SETTINGS).outcome is Verdict.PASS
    # When errors, latency and fallbacks go up
    sick = healthy.model_copy(
        update={"candidate_errors": 50, "candidate_latency_p99_ms": 40.0, "candidate_fallbacks": 100}
    )
    verdict = live(sick, SETTINGS)
    assert verdict.outcome is Verdict.FAIL
    assert {c.name for c in verdict.checks if c.outcome is Verdict.FAIL} == {
        "error_rate",
        "latency_ratio",
        "fallback_rate",
    }
    # When the candidate's scores pile up in other buckets
    skewed = healthy.model_copy(update={"candidate_score_buckets": (100.0,) + (0.0,) * 9})
    assert live(skewed, SETTINGS).outcome is Verdict.FAIL


def test_live_window_with_too_few_samples_is_inconclusive() -> None:
    verdict = live(LiveWindow(candidate_samples=99, candidate_errors=99), SETTINGS)
    assert verdict.outcome is Verdict.INCONCLUSIVE
    assert verdict.figures == {"samples.samples": 99, "samples.min_samples": 100}


def test_a_shadow_without_score_buckets_is_judged_by_its_score_delta() -> None:
    # Given a shadow window: enough shadow scores, champion buckets, but none reported for the shadow
    shadow = LiveWindow(
        candidate_samples=500,
        champion_samples=500,
        candidate_score_buckets=(0.0,) * 10,
        champion_score_buckets=(50.0,) * 10,
        mean_score_delta=0.01,
    )
    # Then the divergence is not "too few samples" for ever: the mean score delta decides
    assert live(shadow, SETTINGS).outcome is Verdict.PASS
    assert live(shadow.model_copy(update={"mean_score_delta": 0.5}), SETTINGS).outcome is Verdict.FAIL
    # And without a score delta either, the missing distribution stays inconclusive
    assert live(shadow.model_copy(update={"mean_score_delta": None}), SETTINGS).outcome is Verdict.INCONCLUSIVE


def test_score_psi_is_not_judged_on_a_small_sample() -> None:
    # Given a canary of 150 scores in a few buckets, against a champion spread over all ten
    canary = LiveWindow(
        candidate_samples=150,
        champion_samples=3000,
        candidate_score_buckets=(50.0, 50.0, 50.0) + (0.0,) * 7,
        champion_score_buckets=(300.0,) * 10,
    )
    settings = PromotionSettings(min_samples=100, min_divergence_samples=1000)
    # Then below min_divergence_samples the PSI is recorded but does not decide
    verdict = live(canary, settings)
    assert verdict.outcome is Verdict.PASS
    assert verdict.figures["divergence.needed"] == 1000
    # And with enough scores the same shapes fail
    many = canary.model_copy(update={"candidate_score_buckets": (500.0, 500.0, 500.0) + (0.0,) * 7})
    assert live(many, settings).outcome is Verdict.FAIL


def test_latency_is_not_compared_with_a_champion_that_served_too_few() -> None:
    # Given the last canary step: the challenger serves everything, the champion a handful of requests
    full = LiveWindow(
        candidate_samples=5000, candidate_latency_p99_ms=30.0, champion_samples=12, champion_latency_p99_ms=5.0
    )
    # Then the ratio is recorded, not judged; with a real baseline the same figures fail
    assert live(full, SETTINGS).outcome is Verdict.PASS
    assert live(full.model_copy(update={"champion_samples": 500}), SETTINGS).outcome is Verdict.FAIL
    # And when the champion serves nothing by design (a 100% step), there is no baseline either
    assert live(full.model_copy(update={"champion_samples": 500, "champion_serves": False}), SETTINGS).outcome is (
        Verdict.PASS
    )


def test_the_100_percent_step_is_not_held_for_a_champion_distribution_it_cannot_have() -> None:
    # Given the last canary step: the candidate's scores are reported, the champion's are a stale handful
    full = LiveWindow(
        candidate_samples=800,
        champion_samples=5,
        candidate_score_buckets=(80.0,) * 10,
        champion_score_buckets=(5.0,) + (0.0,) * 9,
        champion_serves=False,
    )
    # Then divergence passes, said why, rather than waiting (inconclusive) for a baseline that cannot come
    verdict = live(full, SETTINGS)
    assert verdict.outcome is Verdict.PASS
    assert "serves no traffic" in next(c.reason for c in verdict.checks if c.name == "divergence")
    # And at a step where the champion should serve, the same handful is too few: inconclusive
    assert live(full.model_copy(update={"champion_serves": True}), SETTINGS).outcome is Verdict.INCONCLUSIVE


def test_a_shadows_latency_is_recorded_not_compared() -> None:
    # Given a shadow window whose candidate p99 (measured on a background thread) is nine times the champion's
    shadow = LiveWindow(
        candidate_samples=500,
        candidate_latency_p99_ms=9.0,
        champion_samples=500,
        champion_latency_p99_ms=1.0,
        mean_score_delta=0.0,
        candidate_beside_champion=True,
    )
    # Then the ratio is recorded but does not fail the shadow; the same figures in canary do
    verdict = live(shadow, SETTINGS)
    assert verdict.outcome is Verdict.PASS
    assert "not like for like" in next(c.reason for c in verdict.checks if c.name == "latency_ratio")
    assert live(shadow.model_copy(update={"candidate_beside_champion": False}), SETTINGS).outcome is Verdict.FAIL


def test_a_latency_ratio_fails_only_when_the_candidate_is_also_slower_by_more_than_the_tolerance() -> None:
    # Given canary windows with the same ratio (2.4) at two scales, and a 5 ms tolerance
    settings = PromotionSettings(min_samples=100, max_latency_ratio=1.5, latency_tolerance_ms=5.0)
    small = LiveWindow(
        candidate_samples=500, candidate_latency_p99_ms=2.4, champion_samples=500, champion_latency_p99_ms=1.0
    )
    large = small.model_copy(update={"candidate_latency_p99_ms": 24.0, "champion_latency_p99_ms": 10.0})
    # Then 1.4 ms slower is no regression, 14 ms slower is
    assert live(small, settings).outcome is Verdict.PASS
    failed = live(large, settings)
    assert failed.outcome is Verdict.FAIL
    assert "14.0 ms slower" in failed.reason
