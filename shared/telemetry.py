"""The score function's metrics: names, dimensions and score buckets (CDK alarms import these), and how they are sent.

Every metric is in namespace ``Sluice`` and is sent with two dimension sets: ``usecase``,
``model_version``, ``variant`` (the dashboard's per-version view) and ``usecase``, ``variant`` (what
the promotion alarms watch: the candidate is the only model served as ``challenger`` or scored as
``shadow`` during a promotion, so those alarms are scoped to it whatever its version).
``ScoreBucket`` has one more dimension, ``bucket`` (``"0.0-0.1"`` … ``"0.9-1.0"``). ``ScoreDelta`` is
|shadow score - champion score| per shadow-scored record (variant ``shadow``): prediction divergence.
Metrics are high resolution (1 s storage), so alarms may use 10-second periods. EMF puts one dimension
set on every metric of a document, so each (dimension set, model version, variant) gets its own
document and each score bucket another: :func:`publish` sends them through powertools'
``EphemeralMetrics``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

NAMESPACE = "Sluice"

LATENCY = "Latency"
PREDICTIONS = "Predictions"
ERRORS = "Errors"
FALLBACKS = "Fallbacks"
SHADOW_SCORES = "ShadowScores"
SHADOW_ERRORS = "ShadowErrors"
SCORE_BUCKET = "ScoreBucket"
SCORE_DELTA = "ScoreDelta"
PREDICTION_LOG_ERRORS = "PredictionLogErrors"

DIMENSION_USECASE = "usecase"
DIMENSION_MODEL_VERSION = "model_version"
DIMENSION_VARIANT = "variant"
DIMENSION_BUCKET = "bucket"
VARIANT_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_MODEL_VERSION, DIMENSION_VARIANT)
ALARM_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_VARIANT)
"""The dimension set the promotion alarms use (every metric is also sent with it)."""
SCORE_BUCKET_DIMENSIONS = (*VARIANT_DIMENSIONS, DIMENSION_BUCKET)
DIMENSION_SETS = (VARIANT_DIMENSIONS, ALARM_DIMENSIONS)

CHAMPION = "champion"
CHALLENGER = "challenger"
SHADOW = "shadow"
VARIANTS = (CHAMPION, CHALLENGER, SHADOW)
NO_MODEL_VERSION = "none"
"""``model_version`` of metrics about a request no model answered (no champion deployed)."""

SCORE_BUCKET_EDGES = tuple(round(i / 10, 1) for i in range(11))
SCORE_BUCKETS = tuple(f"{low:.1f}-{high:.1f}" for low, high in pairwise(SCORE_BUCKET_EDGES))

COUNT_METRICS = (PREDICTIONS, ERRORS, FALLBACKS, SHADOW_SCORES, SHADOW_ERRORS, PREDICTION_LOG_ERRORS)


def score_bucket(score: float) -> str:
    """The bucket of a score in [0, 1] (1.0 falls in the last one)."""
    index = min(max(int(score * 10), 0), len(SCORE_BUCKETS) - 1)
    return SCORE_BUCKETS[index]


@dataclass
class VariantTally:
    """What one request did with one model variant: the counts one EMF document carries."""

    model_version: str
    variant: str
    counts: Counter[str] = field(default_factory=Counter)
    buckets: Counter[str] = field(default_factory=Counter)
    latency_ms: float | None = None
    observations: dict[str, list[float]] = field(default_factory=dict)
    """Distributions sent as several values of one metric (``ScoreDelta``)."""

    def add_score(self, score: float) -> None:
        self.buckets[score_bucket(score)] += 1


@dataclass
class RequestTelemetry:
    """The tallies of one request, keyed by (model version, variant)."""

    usecase: str
    tallies: dict[tuple[str, str], VariantTally] = field(default_factory=dict)

    def tally(self, model_version: int | str | None, variant: str) -> VariantTally:
        key = (NO_MODEL_VERSION if model_version is None else str(model_version), variant)
        found = self.tallies.get(key)
        if found is None:
            found = self.tallies[key] = VariantTally(model_version=key[0], variant=variant)
        return found

    def count(self, name: str, model_version: int | str | None, variant: str, value: int = 1) -> None:
        self.tally(model_version, variant).counts[name] += value

    def observe(self, name: str, model_version: int | str | None, variant: str, values: list[float]) -> None:
        self.tally(model_version, variant).observations.setdefault(name, []).extend(values)


def publish(telemetry: RequestTelemetry, metrics: Any) -> None:
    """Send the tallies as EMF documents in ``metrics``' namespace (a powertools ``Metrics``).

    The dimension sets are exactly the ones above (powertools' own ``service`` dimension is left out).
    """
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricResolution, MetricUnit

    namespace = getattr(metrics, "namespace", None) or NAMESPACE

    def document(dimensions: dict[str, str]) -> Any:
        emitter = EphemeralMetrics(namespace=namespace)
        # powertools adds a "service" dimension when a service name is set; the alarms are on exactly these sets
        emitter.service = ""
        for name, value in dimensions.items():
            emitter.add_dimension(name=name, value=value)
        return emitter

    high = MetricResolution.High
    for tally in telemetry.tallies.values():
        full = {
            DIMENSION_USECASE: telemetry.usecase,
            DIMENSION_MODEL_VERSION: tally.model_version,
            DIMENSION_VARIANT: tally.variant,
        }
        for names in DIMENSION_SETS:
            dimensions = {name: full[name] for name in names}
            emitter = document(dimensions)
            for name, value in tally.counts.items():
                emitter.add_metric(name=name, unit=MetricUnit.Count, value=value, resolution=high)
            if tally.latency_ms is not None:
                emitter.add_metric(name=LATENCY, unit=MetricUnit.Milliseconds, value=tally.latency_ms, resolution=high)
            for name, observed in tally.observations.items():
                for sample in observed:
                    emitter.add_metric(name=name, unit=MetricUnit.NoUnit, value=sample, resolution=high)
            if tally.counts or tally.latency_ms is not None or tally.observations:
                emitter.flush_metrics()
            for bucket, count in tally.buckets.items():
                bucket_emitter = document({**dimensions, DIMENSION_BUCKET: bucket})
                bucket_emitter.add_metric(name=SCORE_BUCKET, unit=MetricUnit.Count, value=count, resolution=high)
                bucket_emitter.flush_metrics()
