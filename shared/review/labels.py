"""A decided item as a feedback label with provenance, written where the feedback API writes (same lake layout).

The document is the feedback API's (:func:`shared.scoring.feedback.feedback_documents`: same key, same fields)
plus :data:`~shared.scoring.feedback.PROVENANCE`: the item, its reviewers and their decisions (label, taxonomy
value, time: notes stay in the review table), the routing reasons and the inclusion probability, which the
monitor's label join reads to weigh the label ``1 / P``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from shared.review.exceptions import ReviewError
from shared.review.types import ReviewItem
from shared.scoring.feedback import INCLUSION_PROBABILITY, PROVENANCE, FeedbackItem, FeedbackRequest, feedback_documents
from shared.usecase.settings import Contract

REVIEW_SOURCE = "human_review"


def item_taxonomy(item: ReviewItem) -> str:
    """The taxonomy value of the decided item: the most frequent among the decisions that gave its label
    (ties: the earliest)."""
    agreeing = sorted((d for d in item.decisions if d.label == item.label), key=lambda d: d.decided_at)
    counts = Counter(d.taxonomy for d in agreeing)
    top = max(counts.values())
    return next(d.taxonomy for d in agreeing if counts[d.taxonomy] == top)


def provenance(item: ReviewItem) -> dict[str, Any]:
    if item.decided_at is None:
        raise ReviewError(f"review item {item.item_id} is not decided")
    return {
        "source": REVIEW_SOURCE,
        "item_id": item.item_id,
        "reviewers": [d.reviewer for d in item.decisions],
        "decisions": [
            {"reviewer": d.reviewer, "label": d.label, "taxonomy": d.taxonomy, "decided_at": d.decided_at.isoformat()}
            for d in item.decisions
        ],
        "reasons": [reason.value for reason in item.reasons],
        INCLUSION_PROBABILITY: item.inclusion_probability,
        "taxonomy": item_taxonomy(item),
        "decided_at": item.decided_at.isoformat(),
        "model_version": item.model_version,
        "variant": item.variant,
    }


def review_feedback(item: ReviewItem, *, contract: Contract, received_at: datetime) -> tuple[str, dict[str, Any]]:
    """(lake key, document) of a decided item's label."""
    if item.decided_at is None or item.label is None:
        raise ReviewError(f"review item {item.item_id} is not decided")
    label = FeedbackItem(
        request_id=item.request_id, entity_id=item.entity_id, label=item.label, observed_at=item.decided_at
    )
    [(key, document)] = feedback_documents(
        FeedbackRequest(labels=[label]), usecase=item.usecase, contract=contract, received_at=received_at
    )
    return key, {**document, PROVENANCE: provenance(item)}
