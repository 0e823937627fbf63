"""Which of the score function's metrics a live stage compares, and how its window is read back (pure).

The score function publishes namespace ``Sluice``, dimensions [usecase, variant] (:mod:`shared.scoring.telemetry`).
:func:`window_queries` names what a stage's analysis needs (candidate against champion), :func:`live_window`
turns the answers into a :class:`~shared.promotion.analysis.LiveWindow`, :func:`timeline_queries` names the
timeline's series. :class:`~shared.promotion.adapters.LiveMetrics` sends the queries to CloudWatch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.promotion.analysis import LiveWindow
from shared.promotion.exceptions import PromotionError
from shared.promotion.transitions import Stage
from shared.scoring import telemetry

SCORE_DELTA = telemetry.SCORE_DELTA
"""|candidate - champion| per shadow-scored request (emitted by the score function with variant=shadow)."""

Series = Mapping[str, Sequence[tuple[datetime, float]]]
"""Query id → (timestamp, value) points."""


def metric(name: str, usecase: str, variant: str, **extra: str) -> dict[str, Any]:
    """One score-function metric (``MetricStat.Metric``) of ``variant``; ``extra`` adds dimensions."""
    dimensions = [
        {"Name": telemetry.DIMENSION_USECASE, "Value": usecase},
        {"Name": telemetry.DIMENSION_VARIANT, "Value": variant},
    ]
    dimensions += [{"Name": key, "Value": value} for key, value in extra.items()]
    return {"Namespace": telemetry.NAMESPACE, "MetricName": name, "Dimensions": dimensions}


def window_period(start: datetime, end: datetime) -> int:
    """One CloudWatch period spanning the whole window (a multiple of 60 s)."""
    seconds = max((end - start).total_seconds(), 1.0)
    return 60 * math.ceil(seconds / 60)


def candidate_variant(stage: Stage) -> str:
    """How the score function labels the candidate's metrics in a live stage."""
    if stage is Stage.SHADOW:
        return telemetry.SHADOW
    if stage is Stage.CANARY:
        return telemetry.CHALLENGER
    raise PromotionError(f"stage {stage!r} has no live traffic to analyze")


def _queries(wanted: Mapping[str, tuple[dict[str, Any], str]], period: int) -> list[dict[str, Any]]:
    return [
        {"Id": key, "MetricStat": {"Metric": m, "Period": period, "Stat": stat}, "ReturnData": True}
        for key, (m, stat) in wanted.items()
    ]


def window_queries(usecase: str, stage: Stage, period: int) -> list[dict[str, Any]]:
    """The ``GetMetricData`` queries of a live stage's window: the candidate against the champion."""
    candidate = candidate_variant(stage)
    shadow = stage is Stage.SHADOW
    wanted: dict[str, tuple[dict[str, Any], str]] = {
        "cand_samples": (
            metric(telemetry.SHADOW_SCORES if shadow else telemetry.PREDICTIONS, usecase, candidate),
            "Sum",
        ),
        "cand_errors": (
            metric(telemetry.SHADOW_ERRORS if shadow else telemetry.ERRORS, usecase, candidate),
            "Sum",
        ),
        "cand_fallbacks": (metric(telemetry.FALLBACKS, usecase, candidate), "Sum"),
        "cand_p99": (metric(telemetry.LATENCY, usecase, candidate), "p99"),
        "champ_samples": (metric(telemetry.PREDICTIONS, usecase, telemetry.CHAMPION), "Sum"),
        "champ_p99": (metric(telemetry.LATENCY, usecase, telemetry.CHAMPION), "p99"),
        "delta_sum": (metric(SCORE_DELTA, usecase, telemetry.SHADOW), "Sum"),
        "delta_count": (metric(SCORE_DELTA, usecase, telemetry.SHADOW), "SampleCount"),
    }
    for index, bucket in enumerate(telemetry.SCORE_BUCKETS):
        for prefix, variant in (("cand", candidate), ("champ", telemetry.CHAMPION)):
            bucket_metric = metric(telemetry.SCORE_BUCKET, usecase, variant, **{telemetry.DIMENSION_BUCKET: bucket})
            wanted[f"{prefix}_bucket_{index}"] = (bucket_metric, "Sum")
    return _queries(wanted, period)


def live_window(results: Series) -> LiveWindow:
    """The answers of :func:`window_queries` as a :class:`LiveWindow`: counts summed, p99 the worst period's."""

    def total(key: str) -> float:
        return float(sum(value for _, value in results.get(key, [])))

    def worst(key: str) -> float | None:
        values = [value for _, value in results.get(key, [])]
        return float(max(values)) if values else None

    delta_count = total("delta_count")
    buckets = len(telemetry.SCORE_BUCKETS)
    return LiveWindow(
        candidate_samples=int(total("cand_samples")),
        candidate_errors=int(total("cand_errors")),
        candidate_fallbacks=int(total("cand_fallbacks")),
        candidate_latency_p99_ms=worst("cand_p99"),
        champion_samples=int(total("champ_samples")),
        champion_latency_p99_ms=worst("champ_p99"),
        candidate_score_buckets=tuple(total(f"cand_bucket_{i}") for i in range(buckets)),
        champion_score_buckets=tuple(total(f"champ_bucket_{i}") for i in range(buckets)),
        mean_score_delta=total("delta_sum") / delta_count if delta_count else None,
    )


TIMELINE_SERIES = (
    "p99 latency champion (ms)",
    "p99 latency challenger (ms)",
    "errors champion",
    "errors challenger",
    "shadow errors",
)


def timeline_queries(usecase: str, period: int) -> list[dict[str, Any]]:
    """The timeline's metric series (p99 latency and errors per variant), ids ``s0``… in :data:`TIMELINE_SERIES`
    order."""
    series = (
        (metric(telemetry.LATENCY, usecase, telemetry.CHAMPION), "p99"),
        (metric(telemetry.LATENCY, usecase, telemetry.CHALLENGER), "p99"),
        (metric(telemetry.ERRORS, usecase, telemetry.CHAMPION), "Sum"),
        (metric(telemetry.ERRORS, usecase, telemetry.CHALLENGER), "Sum"),
        (metric(telemetry.SHADOW_ERRORS, usecase, telemetry.SHADOW), "Sum"),
    )
    return _queries({f"s{index}": query for index, query in enumerate(series)}, period)


def timeline_series(results: Series) -> dict[str, list[tuple[datetime, float]]]:
    """The answers of :func:`timeline_queries` by series name, each sorted by time."""
    return {name: sorted(results.get(f"s{index}", [])) for index, name in enumerate(TIMELINE_SERIES)}
