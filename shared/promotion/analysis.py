"""Analysis in the style of Argo Rollouts: every check gives pass, fail or inconclusive, with its figures.

A check is *inconclusive* when it has too few samples to judge (fewer than ``min_samples``); the
promotion then bakes longer (up to ``max_bake_extensions`` times) and finally asks a human.
:func:`combine` folds the checks of one analysis: any fail → fail; else any inconclusive →
inconclusive; else pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shared.promotion.statistics import decision_agreement, psi, psi_from_counts
from shared.promotion.transitions import Verdict
from shared.usecase.settings import PromotionSettings


class CheckResult(BaseModel):
    """One check: its outcome, why, and what was measured."""

    model_config = ConfigDict(frozen=True)

    name: str
    outcome: Verdict
    reason: str
    figures: dict[str, float | int | None] = Field(default_factory=dict)


class AnalysisResult(BaseModel):
    """The outcome of one analysis: the combined outcome and every check behind it."""

    model_config = ConfigDict(frozen=True)

    outcome: Verdict
    checks: tuple[CheckResult, ...]

    @property
    def reasons(self) -> list[str]:
        """The reasons of the checks that decided the outcome (all of them when it passed)."""
        deciding = [c for c in self.checks if c.outcome is self.outcome]
        return [c.reason for c in deciding or self.checks]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def figures(self) -> dict[str, float | int | None]:
        """Every measured figure, prefixed with its check's name."""
        return {f"{c.name}.{key}": value for c in self.checks for key, value in c.figures.items()}


def combine(checks: Iterable[CheckResult]) -> AnalysisResult:
    """Any fail → fail; else any inconclusive → inconclusive; else pass (an empty analysis passes)."""
    results = tuple(checks)
    outcomes = {c.outcome for c in results}
    if Verdict.FAIL in outcomes:
        outcome = Verdict.FAIL
    elif Verdict.INCONCLUSIVE in outcomes:
        outcome = Verdict.INCONCLUSIVE
    else:
        outcome = Verdict.PASS
    return AnalysisResult(outcome=outcome, checks=results)


def _at_most(name: str, label: str, value: float, limit: float, **figures: float | int | None) -> CheckResult:
    passed = value <= limit
    word = "within" if passed else "above"
    return CheckResult(
        name=name,
        outcome=Verdict.PASS if passed else Verdict.FAIL,
        reason=f"{label} {value:.4g} is {word} the limit {limit:.4g}",
        figures={"value": value, "limit": limit, **figures},
    )


def _latency_check(window: LiveWindow, settings: PromotionSettings) -> CheckResult:
    """The candidate's p99 against the champion's, when the two are comparable; else recorded, not judged
    (the candidate's latency alarm still watches its absolute p99)."""
    ours, theirs = window.candidate_latency_p99_ms, window.champion_latency_p99_ms
    if ours is None or theirs is None or theirs <= 0:
        why = "p99 latency not reported for both variants"
    elif window.candidate_beside_champion:
        why = "a shadow scores beside the champion's request, its latency is not like for like"
    elif not window.champion_serves:
        why = "the champion serves no traffic at this step: no p99 baseline"
    elif window.champion_samples < settings.min_samples:
        # at the last canary step (100%) the champion serves only what the deployment cache still routes to it
        why = f"the champion served {window.champion_samples} requests, too few for a p99 baseline"
    else:
        return _latency_ratio(ours, theirs, settings)
    return CheckResult(
        name="latency_ratio",
        outcome=Verdict.PASS,
        reason=f"{why}; not compared (the latency alarm still watches)",
        figures={"candidate_p99_ms": ours, "champion_p99_ms": theirs, "champion_samples": window.champion_samples},
    )


def _latency_ratio(ours: float, theirs: float, settings: PromotionSettings) -> CheckResult:
    """The candidate's p99 over the champion's: it fails above ``max_latency_ratio`` *and* more than
    ``latency_tolerance_ms`` slower (as ``rtol``/``atol``: a 2 ms call against a 1 ms one is no regression)."""
    ratio, slower_ms = ours / theirs, ours - theirs
    failed = ratio > settings.max_latency_ratio and slower_ms > settings.latency_tolerance_ms
    if failed:
        reason = (
            f"candidate/champion p99 latency {ratio:.4g} is above the limit {settings.max_latency_ratio:.4g} "
            f"({slower_ms:.1f} ms slower, more than the {settings.latency_tolerance_ms:.4g} ms tolerance)"
        )
    else:
        reason = (
            f"candidate/champion p99 latency {ratio:.4g} ({ours:.1f} vs {theirs:.1f} ms) is within the limit "
            f"{settings.max_latency_ratio:.4g} or the {settings.latency_tolerance_ms:.4g} ms tolerance"
        )
    return CheckResult(
        name="latency_ratio",
        outcome=Verdict.FAIL if failed else Verdict.PASS,
        reason=reason,
        figures={
            "value": ratio,
            "limit": settings.max_latency_ratio,
            "candidate_p99_ms": ours,
            "champion_p99_ms": theirs,
            "tolerance_ms": settings.latency_tolerance_ms,
        },
    )


def _too_few(name: str, samples: int, min_samples: int) -> CheckResult:
    return CheckResult(
        name=name,
        outcome=Verdict.INCONCLUSIVE,
        reason=f"{samples} samples, fewer than the {min_samples} needed to judge",
        figures={"samples": samples, "min_samples": min_samples},
    )


# --- offline gate -----------------------------------------------------------------------------


def _number(document: Mapping[str, Any], *path: str) -> float | None:
    value: Any = document
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _segment_checks(
    candidate_metrics: Mapping[str, Any], champion_metrics: Mapping[str, Any], max_drop: float
) -> list[CheckResult]:
    checks = []
    candidate_segments = candidate_metrics.get("segments") or {}
    champion_segments = champion_metrics.get("segments") or {}
    for segment, values in sorted(candidate_segments.items()):
        for value, figures in sorted((values or {}).items()):
            theirs = (champion_segments.get(segment) or {}).get(value)
            if not isinstance(figures, Mapping) or not isinstance(theirs, Mapping):
                continue
            if "skipped" in figures or "skipped" in theirs:
                continue
            ours_auc, theirs_auc = _number(figures, "roc_auc"), _number(theirs, "roc_auc")
            if ours_auc is None or theirs_auc is None:
                continue
            drop = theirs_auc - ours_auc
            name = f"segment_auc[{segment}={value}]"
            passed = drop <= max_drop
            checks.append(
                CheckResult(
                    name=name,
                    outcome=Verdict.PASS if passed else Verdict.FAIL,
                    reason=(
                        f"AUC on {segment}={value} is {ours_auc:.4f} vs the champion's {theirs_auc:.4f} "
                        f"(drop {drop:.4f}, limit {max_drop:.4f})"
                    ),
                    figures={"candidate": ours_auc, "champion": theirs_auc, "drop": drop, "limit": max_drop},
                )
            )
    return checks


def offline_gate(
    candidate_metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any] | None,
    candidate_latency_p99_ms: float,
    settings: PromotionSettings,
) -> AnalysisResult:
    """The candidate's metrics.json against the champion's (when there is one), and its offline latency.

    Relative checks (AUC drop, per-segment AUC drop) need a champion; ECE and latency are absolute.
    Segment values skipped in either model's evaluation (too few rows, one class) are not compared.
    """
    checks: list[CheckResult] = []
    auc = _number(candidate_metrics, "auc")
    if auc is None:
        auc = _number(candidate_metrics, "holdout", "roc_auc")
    ece = _number(candidate_metrics, "ece")
    if ece is None:
        ece = _number(candidate_metrics, "holdout", "ece")
    if champion_metrics is not None:
        champion_auc = _number(champion_metrics, "auc") or _number(champion_metrics, "holdout", "roc_auc")
        if auc is None or champion_auc is None:
            checks.append(CheckResult(name="auc", outcome=Verdict.FAIL, reason="AUC missing from metrics.json"))
        else:
            drop = champion_auc - auc
            checks.append(
                CheckResult(
                    name="auc",
                    outcome=Verdict.PASS if drop <= settings.max_auc_drop else Verdict.FAIL,
                    reason=(
                        f"AUC {auc:.4f} vs the champion's {champion_auc:.4f} "
                        f"(drop {drop:.4f}, limit {settings.max_auc_drop:.4f})"
                    ),
                    figures={"candidate": auc, "champion": champion_auc, "drop": drop, "limit": settings.max_auc_drop},
                )
            )
        checks.extend(_segment_checks(candidate_metrics, champion_metrics, settings.max_segment_auc_drop))
    if ece is None:
        checks.append(CheckResult(name="ece", outcome=Verdict.FAIL, reason="ECE missing from metrics.json"))
    else:
        checks.append(_at_most("ece", "ECE", ece, settings.max_ece))
    checks.append(_at_most("latency", "offline p99 latency (ms)", candidate_latency_p99_ms, settings.latency_budget_ms))
    return combine(checks)


# --- replay -----------------------------------------------------------------------------------


def replay(
    candidate_scores: Sequence[float] | np.ndarray,
    champion_scores: Sequence[float] | np.ndarray,
    thresholds: tuple[float, float],
    settings: PromotionSettings,
) -> AnalysisResult:
    """Recorded traffic scored by both models: score PSI (champion = baseline) and decision agreement.

    ``thresholds`` is (candidate's, champion's). Fewer than ``min_samples`` records → inconclusive.
    """
    samples = len(candidate_scores)
    if samples < settings.min_samples:
        return combine(
            [_too_few("psi", samples, settings.min_samples), _too_few("agreement", samples, settings.min_samples)]
        )
    stability = psi(champion_scores, candidate_scores)
    agreement = decision_agreement(
        candidate_scores, champion_scores, candidate_threshold=thresholds[0], champion_threshold=thresholds[1]
    )
    agreed = agreement >= settings.min_agreement
    return combine(
        [
            _at_most("psi", "score PSI vs the champion", stability, settings.max_psi, samples=samples),
            CheckResult(
                name="agreement",
                outcome=Verdict.PASS if agreed else Verdict.FAIL,
                reason=(
                    f"decisions agree on {agreement:.2%} of {samples} records "
                    f"({'at least' if agreed else 'below'} the minimum {settings.min_agreement:.2%})"
                ),
                figures={"value": agreement, "limit": settings.min_agreement, "samples": samples},
            ),
        ]
    )


# --- live: shadow and canary ------------------------------------------------------------------


class LiveWindow(BaseModel):
    """What CloudWatch saw of the candidate and the champion over one stage's window."""

    model_config = ConfigDict(frozen=True)

    candidate_samples: int = Field(ge=0)
    """Requests the candidate scored (served in canary, shadow-scored in shadow)."""
    candidate_errors: int = Field(default=0, ge=0)
    candidate_fallbacks: int = Field(default=0, ge=0)
    candidate_latency_p99_ms: float | None = None
    champion_samples: int = Field(default=0, ge=0)
    champion_latency_p99_ms: float | None = None
    candidate_score_buckets: tuple[float, ...] = ()
    """Score counts in the ten buckets of ``shared.scoring.telemetry.SCORE_BUCKETS`` (empty when not reported)."""
    champion_score_buckets: tuple[float, ...] = ()
    mean_score_delta: float | None = None
    """Average |candidate - champion| over shadow-scored requests (shadow only)."""
    champion_serves: bool = True
    """False at a canary step of 100%: what the champion still served came from stale routing, no baseline."""
    candidate_beside_champion: bool = False
    """True in shadow: the candidate scores on a background thread while the champion serves the same request,
    so its latency carries the wait for the interpreter and is no like-for-like comparison."""


def live(window: LiveWindow, settings: PromotionSettings) -> AnalysisResult:
    """Shadow or canary: error rate, latency ratio, fallback rate and divergence, once there are enough samples."""
    samples = window.candidate_samples
    if samples < settings.min_samples:
        return combine([_too_few("samples", samples, settings.min_samples)])
    checks = [
        _at_most(
            "error_rate",
            "candidate error rate",
            window.candidate_errors / samples,
            settings.max_error_rate,
            errors=window.candidate_errors,
            samples=samples,
        ),
        _at_most(
            "fallback_rate",
            "candidate fallback rate",
            window.candidate_fallbacks / samples,
            settings.max_fallback_rate,
            fallbacks=window.candidate_fallbacks,
            samples=samples,
        ),
    ]
    checks.append(_latency_check(window, settings))
    candidate_total, champion_total = sum(window.candidate_score_buckets), sum(window.champion_score_buckets)
    needed = max(settings.min_samples, settings.min_divergence_samples)
    if candidate_total >= needed and champion_total >= needed:
        checks.append(
            _at_most(
                "divergence",
                "score PSI vs the champion",
                psi_from_counts(window.champion_score_buckets, window.candidate_score_buckets),
                settings.max_divergence,
                candidate_scores=candidate_total,
                champion_scores=champion_total,
            )
        )
    elif candidate_total == 0 and window.mean_score_delta is not None:
        # The candidate's score distribution is not reported (a shadow scores no buckets): the per-request
        # |candidate - champion| below compares the same requests directly, so it judges divergence alone.
        checks.append(
            CheckResult(
                name="divergence",
                outcome=Verdict.PASS,
                reason="candidate score distribution not reported; judged by the mean score delta instead",
                figures={"candidate_scores": 0, "champion_scores": champion_total},
            )
        )
    elif not window.champion_serves and candidate_total >= settings.min_samples:
        # At the 100% step the champion scores only what stale routing still sends it: no distribution to
        # compare with (the earlier steps compared it; the divergence alarm watches the shadow delta).
        checks.append(
            CheckResult(
                name="divergence",
                outcome=Verdict.PASS,
                reason="the champion serves no traffic at this step: no score distribution to compare with",
                figures={"candidate_scores": candidate_total, "champion_scores": champion_total},
            )
        )
    elif candidate_total >= settings.min_samples and champion_total >= settings.min_samples:
        checks.append(
            CheckResult(
                name="divergence",
                outcome=Verdict.PASS,
                reason=f"score PSI not judged below {needed} scores per side (a small sample's PSI is noise)",
                figures={"candidate_scores": candidate_total, "champion_scores": champion_total, "needed": needed},
            )
        )
    elif window.candidate_score_buckets or window.champion_score_buckets:
        checks.append(_too_few("divergence", int(min(candidate_total, champion_total)), settings.min_samples))
    if window.mean_score_delta is not None:
        checks.append(
            _at_most(
                "score_delta", "mean |candidate - champion| score", window.mean_score_delta, settings.max_divergence
            )
        )
    return combine(checks)
