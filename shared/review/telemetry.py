"""The review queue's metrics: names and dimensions (the stack's alarms and dashboard import these), and the EMF
documents of one :class:`~shared.review.stats.ReviewStats`.

Namespace ``Sluice``. Dimension sets:

=================================  ==========================================================================
dimensions                         metrics
=================================  ==========================================================================
``usecase``                        ``ReviewQueueDepth``, ``ReviewOldestItemAgeSeconds`` (alarm past the SLA),
                                   ``ReviewOverdueItems``, ``ReviewDecisionsPerHour``, ``ReviewerAgreement``
                                   (kappa, when items had several decisions), ``ReviewIntakeRefused``
``usecase, taxonomy``              ``ReviewModelDisagreement`` (share of reviewed items the model got wrong)
``usecase, segment``               ``ReviewModelDisagreement``
=================================  ==========================================================================
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.monitoring.telemetry import DIMENSION_SEGMENT
from shared.review.stats import ReviewStats
from shared.scoring.telemetry import DIMENSION_USECASE, NAMESPACE

DIMENSION_TAXONOMY = "taxonomy"

USECASE_DIMENSIONS = (DIMENSION_USECASE,)
TAXONOMY_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_TAXONOMY)
SEGMENT_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_SEGMENT)

QUEUE_DEPTH = "ReviewQueueDepth"
OLDEST_ITEM_AGE = "ReviewOldestItemAgeSeconds"
OVERDUE_ITEMS = "ReviewOverdueItems"
DECISIONS_PER_HOUR = "ReviewDecisionsPerHour"
REVIEWER_AGREEMENT = "ReviewerAgreement"
INTAKE_REFUSED = "ReviewIntakeRefused"
MODEL_DISAGREEMENT = "ReviewModelDisagreement"
UNIT_COUNT = "Count"
UNIT_SECONDS = "Seconds"
UNIT_NONE = "None"


def _document(at: datetime, dimensions: tuple[str, ...], values: dict[str, tuple[float, str]], **dims: str) -> str:
    directive = {
        "Namespace": NAMESPACE,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
    }
    document: dict[str, Any] = {
        "_aws": {"Timestamp": int(at.timestamp() * 1000), "CloudWatchMetrics": [directive]},
        **dims,
        **{name: value for name, (value, _) in values.items()},
    }
    return json.dumps(document)


def documents(stats: ReviewStats, *, intake_refused: int = 0) -> list[str]:
    """The EMF documents of one look at the queue (one JSON object a line)."""
    usecase = {DIMENSION_USECASE: stats.usecase}
    values: dict[str, tuple[float, str]] = {
        QUEUE_DEPTH: (float(stats.queue_depth), UNIT_COUNT),
        OLDEST_ITEM_AGE: (float(stats.oldest_age_seconds or 0.0), UNIT_SECONDS),
        OVERDUE_ITEMS: (float(stats.overdue), UNIT_COUNT),
        DECISIONS_PER_HOUR: (stats.decisions_per_hour, UNIT_COUNT),
        INTAKE_REFUSED: (float(intake_refused), UNIT_COUNT),
    }
    if stats.agreement is not None and stats.agreement.kappa is not None:
        values[REVIEWER_AGREEMENT] = (stats.agreement.kappa, UNIT_NONE)
    lines = [_document(stats.at, USECASE_DIMENSIONS, values, **usecase)]
    for dimension, dimensions, rates in (
        (DIMENSION_TAXONOMY, TAXONOMY_DIMENSIONS, stats.by_taxonomy),
        (DIMENSION_SEGMENT, SEGMENT_DIMENSIONS, stats.by_segment),
    ):
        for name, rate in rates.items():
            if rate.items:
                values = {MODEL_DISAGREEMENT: (rate.rate, UNIT_NONE)}
                lines.append(_document(stats.at, dimensions, values, **usecase, **{dimension: name}))
    return lines
