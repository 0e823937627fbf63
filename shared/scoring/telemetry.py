"""The score function's metrics: names, dimensions and score buckets (CDK alarms import these), and how they are sent.

Every metric is in namespace ``Sluice`` and is sent with two dimension sets: ``usecase``,
``model_version``, ``variant`` (the dashboard's per-version view) and ``usecase``, ``variant`` (what
the promotion alarms watch: the candidate is the only model served as ``challenger`` or scored as
``shadow`` during a promotion, so those alarms are scoped to it whatever its version).
``ScoreBucket`` has one more dimension, ``bucket`` (``"0.0-0.1"`` … ``"0.9-1.0"``). ``ScoreDelta`` is
|shadow score - champion score| per shadow-scored record (variant ``shadow``): prediction divergence.
``Latency`` is each variant's own scoring time in a request (its model call, or the endpoint call with
retries and fallback; not a model's one-time load), so the candidate's latency alarm sees the candidate,
not the champion beside it.
Metrics are high resolution (1 s storage), so alarms may use 10-second periods. EMF puts one dimension
sets on every metric of a document: each (model version, variant) gets one document with both sets,
and each score bucket another (:func:`documents`).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

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
MODEL_LOADS = "ModelLoads"
"""A heavy endpoint loaded its model (once per worker), by execution provider: which one serves and why."""

DIMENSION_USECASE = "usecase"
DIMENSION_MODEL_VERSION = "model_version"
DIMENSION_VARIANT = "variant"
DIMENSION_BUCKET = "bucket"
DIMENSION_PROVIDER = "provider"
"""The onnxruntime execution provider an endpoint serves with (``CUDAExecutionProvider`` …)."""
PROVIDER_REASON = "provider_reason"
"""A property (not a dimension) of the ``ModelLoads`` document: why that provider serves."""
VARIANT_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_MODEL_VERSION, DIMENSION_VARIANT)
ALARM_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_VARIANT)
"""The dimension set the promotion alarms use (every metric is also sent with it)."""
SCORE_BUCKET_DIMENSIONS = (*VARIANT_DIMENSIONS, DIMENSION_BUCKET)
MODEL_LOAD_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_PROVIDER)
DIMENSION_SETS = (VARIANT_DIMENSIONS, ALARM_DIMENSIONS)

CHAMPION = "champion"
CHALLENGER = "challenger"
SHADOW = "shadow"
VARIANTS = (CHAMPION, CHALLENGER, SHADOW)
NO_MODEL_VERSION = "none"
"""``model_version`` of metrics about a request no model answered (no champion deployed)."""

SCORE_BUCKET_EDGES = tuple(round(i / 10, 1) for i in range(11))
SCORE_BUCKETS = tuple(f"{low:.1f}-{high:.1f}" for low, high in pairwise(SCORE_BUCKET_EDGES))

UNIT_COUNT = "Count"
UNIT_MILLISECONDS = "Milliseconds"
UNIT_NONE = "None"
HIGH_RESOLUTION = 1
EMF_MAX_VALUES = 100
"""EMF takes at most 100 values of one metric in one document."""
_EMF_ENCODER = json.JSONEncoder(separators=(",", ":"))

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

    def add_scores(self, scores: ArrayLike) -> None:
        """Count a batch of scores into the buckets (numpy: one pass, no Python loop)."""
        import numpy as np

        values = np.asarray(scores, dtype=np.float64)
        if not values.size:
            return
        indices = np.clip((values * 10).astype(np.intp), 0, len(SCORE_BUCKETS) - 1)
        for index, count in enumerate(np.bincount(indices, minlength=len(SCORE_BUCKETS)).tolist()):
            if count:
                self.buckets[SCORE_BUCKETS[index]] += count


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


def _directive(namespace: str, dimension_sets: list[list[str]], metrics: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Namespace": namespace,
        "Dimensions": dimension_sets,
        "Metrics": [{"Name": name, "Unit": unit, "StorageResolution": HIGH_RESOLUTION} for name, unit in metrics],
    }


def documents(telemetry: RequestTelemetry, *, namespace: str = NAMESPACE, timestamp_ms: int | None = None) -> list[str]:
    """The EMF documents of one request: per (model version, variant) one document carrying both dimension
    sets (the EMF specification allows several sets per directive), one per score bucket, and the
    observations in documents of at most ``EMF_MAX_VALUES`` values a metric."""
    when = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    sets = [list(names) for names in DIMENSION_SETS]
    bucket_sets = [[*names, DIMENSION_BUCKET] for names in DIMENSION_SETS]
    lines: list[str] = []

    def emit(
        dimension_sets: list[list[str]], values: dict[str, Any], units: list[tuple[str, str]], **dims: str
    ) -> None:
        document = {
            "_aws": {"Timestamp": when, "CloudWatchMetrics": [_directive(namespace, dimension_sets, units)]},
            **dims,
            **values,
        }
        lines.append(_EMF_ENCODER.encode(document))

    for tally in telemetry.tallies.values():
        dims = {
            DIMENSION_USECASE: telemetry.usecase,
            DIMENSION_MODEL_VERSION: tally.model_version,
            DIMENSION_VARIANT: tally.variant,
        }
        values: dict[str, Any] = dict(tally.counts)
        units = [(name, UNIT_COUNT) for name in tally.counts]
        if tally.latency_ms is not None:
            values[LATENCY] = tally.latency_ms
            units.append((LATENCY, UNIT_MILLISECONDS))
        if values:
            emit(sets, values, units, **dims)
        for name, observed in tally.observations.items():
            for start in range(0, len(observed), EMF_MAX_VALUES):
                emit(sets, {name: observed[start : start + EMF_MAX_VALUES]}, [(name, UNIT_NONE)], **dims)
        for bucket, count in tally.buckets.items():
            if count:
                emit(
                    bucket_sets,
                    {SCORE_BUCKET: count},
                    [(SCORE_BUCKET, UNIT_COUNT)],
                    **dims,
                    **{DIMENSION_BUCKET: bucket},
                )
    return lines


def model_load_document(
    usecase: str, *, provider: str, reason: str, namespace: str = NAMESPACE, timestamp_ms: int | None = None
) -> str:
    """The EMF document of one model load on a heavy endpoint: ``ModelLoads`` = 1 by use case and provider,
    with the reason as a property (searchable in the log, not a dimension)."""
    when = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    document = {
        "_aws": {
            "Timestamp": when,
            "CloudWatchMetrics": [_directive(namespace, [list(MODEL_LOAD_DIMENSIONS)], [(MODEL_LOADS, UNIT_COUNT)])],
        },
        DIMENSION_USECASE: usecase,
        DIMENSION_PROVIDER: provider,
        PROVIDER_REASON: reason,
        MODEL_LOADS: 1,
    }
    return _EMF_ENCODER.encode(document)


def publish(telemetry: RequestTelemetry, *, namespace: str = NAMESPACE, out: TextIO | None = None) -> None:
    """Write the request's EMF documents to stdout (one write), where Lambda's log agent picks them up.

    Written here rather than through powertools' ``Metrics``: powertools puts one dimension set in a
    document, so a request would need twice the documents, and it builds each for ~70 µs while a
    1,000-record request has a budget of about a millisecond for everything but the model.
    """
    lines = documents(telemetry, namespace=namespace)
    if lines:
        (out or sys.stdout).write("\n".join(lines) + "\n")
