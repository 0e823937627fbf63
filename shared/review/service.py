"""The review capability's entry points: :class:`ReviewService` (what a handler, the page's API or the CLI calls).

- :meth:`ReviewService.intake` — review-queue SQS messages → items, idempotently; past capacity the message is
  refused (a batch item failure: it stays in SQS, nothing is lost);
- :meth:`ReviewService.queue` / :meth:`ReviewService.next_item` — what waits, by priority then age;
- :meth:`ReviewService.claim` / :meth:`ReviewService.decide` — a leased claim, then a decision under it;
  the item's k-th decision writes its feedback label with provenance to the lake;
- :meth:`ReviewService.mark_overdue` — marks undecided items past the SLA ``expired`` (counted, not deleted);
- :meth:`ReviewService.stats` — the operating metrics.

Errors are :mod:`shared.review.exceptions` (each with its HTTP ``status``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.review import queue
from shared.review.adapters import FeedbackObjects, ReviewStore
from shared.review.exceptions import (
    ConcurrentReviewError,
    InvalidDecisionError,
    QueueFullError,
    ReviewItemNotFoundError,
)
from shared.review.labels import review_feedback
from shared.review.routing import ROUTING, Reason, Routing, route
from shared.review.stats import ReviewStats, review_stats
from shared.review.types import UNDECIDED, ItemState, ReviewItem, review_item_id
from shared.scoring.feedback import FeedbackItem, label_errors
from shared.scoring.prediction_log_lake import PredictionLogBlock
from shared.usecase.settings import UseCase

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
AlertedSegments = Callable[[str], frozenset[str]]
WRITE_ATTEMPTS = 3
"""A claim or decision that lost a race is re-read and re-applied this many times at most."""


@dataclass(frozen=True)
class InboundMessage:
    """One SQS message of the review queue: its id (for a batch item failure) and its body."""

    message_id: str
    body: str


@dataclass(frozen=True, kw_only=True)
class IntakeResult:
    created: int = 0
    duplicates: int = 0
    not_routed: int = 0
    """Records no rule routes (e.g. the band changed since they were sent): not queued."""
    refused: list[str] = field(default_factory=list)
    """Message ids left in SQS: past capacity (:attr:`back_pressure`) or unreadable (retried, then dead-lettered)."""
    back_pressure: QueueFullError | None = None

    def batch_item_failures(self) -> dict[str, list[dict[str, str]]]:
        """The SQS event source's partial batch response."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.refused]}


class ReviewService:
    """Human review of one use case over a :class:`~shared.review.adapters.ReviewStore`."""

    def __init__(
        self,
        store: ReviewStore,
        feedback: FeedbackObjects,
        usecase: UseCase,
        *,
        bucket: str,
        clock: Clock,
        alerted_segments: AlertedSegments | None = None,
    ) -> None:
        self._store = store
        self._feedback = feedback
        self._usecase = usecase
        self._settings = usecase.review
        self._bucket = bucket
        self._clock = clock
        self._alerted = alerted_segments or (lambda _usecase: frozenset())

    @property
    def name(self) -> str:
        return self._usecase.name

    # --- intake -----------------------------------------------------------------------------------------------

    def undecided(self) -> int:
        return sum(self._store.count(self.name, state) for state in UNDECIDED)

    def intake(self, messages: Sequence[InboundMessage]) -> IntakeResult:
        """Take review-queue messages in as items (see the module). Each message is taken whole or left in SQS;
        a message left half-taken is taken again later: its items already stored are not made twice."""
        created = duplicates = not_routed = 0
        refused: list[str] = []
        back_pressure: QueueFullError | None = None
        undecided = self.undecided()
        alerted = self._alerted(self.name) if self._settings.segment_alerts else frozenset()
        for message in messages:
            try:
                items, skipped = self._items(message.body, alerted)
            except (ValueError, ValidationError) as exc:
                log.warning("unreadable review message", extra={"message_id": message.message_id, "error": str(exc)})
                refused.append(message.message_id)
                continue
            not_routed += skipped
            for item in items:
                if undecided >= self._settings.capacity:
                    back_pressure = QueueFullError(undecided, self._settings.capacity)
                    refused.append(message.message_id)
                    break
                if self._store.create(item):
                    created += 1
                    undecided += 1
                else:
                    duplicates += 1
        return IntakeResult(
            created=created, duplicates=duplicates, not_routed=not_routed, refused=refused, back_pressure=back_pressure
        )

    def _items(self, body: str, alerted: frozenset[str]) -> tuple[list[ReviewItem], int]:
        document = json.loads(body)
        block = PredictionLogBlock.model_validate(document)
        routed: Sequence[Mapping[str, Any] | None] = document.get(ROUTING) or [None] * len(block.index)
        if len(routed) != len(block.index):
            raise ValueError("routing must have one entry per record")
        if not block.served:
            return [], len(block.index)
        now = self._clock()
        segment_columns = self._usecase.contract.segments
        items, skipped = [], 0
        for line, given in zip(block.lines(), routed, strict=True):
            segments = {c: str(line.features[c]) for c in segment_columns if line.features.get(c) is not None}
            challenger = None if given is None else given.get("challenger_score")
            routing = self._routing(line.request_id, line.index, line.score, challenger, segments, alerted, given)
            if not routing.routed:
                skipped += 1
                continue
            items.append(
                ReviewItem(
                    usecase=self.name,
                    item_id=review_item_id(self.name, line.request_id, line.index),
                    request_id=line.request_id,
                    index=line.index,
                    entity_id=line.entity_id,
                    variant=line.variant,
                    model_version=line.model_version,
                    score=line.score,
                    threshold=line.threshold,
                    challenger_score=challenger,
                    features=line.features,
                    segments=segments,
                    predicted_at=line.time,
                    created_at=now,
                    reasons=routing.reasons,
                    inclusion_probability=routing.inclusion_probability,
                    priority=routing.priority,
                    reviewers_needed=self._settings.reviewers_per_item,
                )
            )
        return items, skipped

    def _routing(  # noqa: PLR0917 - private: one argument per input of a rule
        self,
        request_id: str,
        index: int,
        score: float,
        challenger: float | None,
        segments: Mapping[str, str],
        alerted: frozenset[str],
        given: Mapping[str, Any] | None,
    ) -> Routing:
        if given is not None and given.get("reasons"):
            return Routing(
                reasons=tuple(Reason(r) for r in given["reasons"]),
                inclusion_probability=float(given["inclusion_probability"]),
            )
        return route(
            settings=self._settings,
            request_id=request_id,
            index=index,
            score=score,
            challenger_score=challenger,
            segments=segments,
            alerted_segments=alerted,
        )

    # --- the queue --------------------------------------------------------------------------------------------

    def get(self, item_id: str) -> ReviewItem:
        item = self._store.get(self.name, item_id)
        if item is None:
            raise ReviewItemNotFoundError(f"no review item {item_id} in {self.name}")
        return item

    def queue(self, *, limit: int = 50) -> list[ReviewItem]:
        """Up to ``limit`` items a reviewer may claim now (open, expired, or claimed with every lease lapsed),
        by priority, then oldest first."""
        now, sla = self._clock(), self._settings.sla_seconds
        found = [
            item
            for state in (ItemState.OPEN, ItemState.EXPIRED, ItemState.CLAIMED)
            for item in self._store.queued(self.name, state, limit=limit)
            if queue.claimable(item, now, sla)
        ]
        return sorted(found, key=lambda item: (item.priority, item.created_at, item.item_id))[:limit]

    def next_item(self, reviewer: str, *, limit: int = 50) -> ReviewItem | None:
        """The first item of :meth:`queue` that ``reviewer`` may claim (none they decided or hold)."""
        now = self._clock()
        for item in self.queue(limit=limit):
            holds = any(c.reviewer == reviewer for c in queue.live_claims(item, now))
            if reviewer not in queue.decided_by(item) and not holds:
                return item
        return None

    def _apply(self, item_id: str, change: Callable[[ReviewItem], ReviewItem]) -> ReviewItem:
        """Read, apply, write conditionally; on a lost race re-read and re-apply (the change decides again)."""
        for attempt in range(WRITE_ATTEMPTS):
            item = self.get(item_id)
            changed = change(item)
            try:
                self._store.replace(changed, expected_revision=item.revision)
            except ConcurrentReviewError:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                continue
            return changed
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def claim(self, item_id: str, reviewer: str) -> ReviewItem:
        """``reviewer`` leases the item for ``lease_seconds``."""
        return self._apply(
            item_id, lambda item: queue.claim(item, reviewer=reviewer, now=self._clock(), settings=self._settings)
        )

    def decide(
        self, item_id: str, reviewer: str, *, label: str | int | bool, taxonomy: str, note: str = ""
    ) -> ReviewItem:
        """``reviewer``'s decision under their claim; the item's k-th decision writes its label to the lake."""
        contract = self._usecase.contract
        problems = label_errors([FeedbackItem(request_id=item_id, label=label)], contract)
        if problems:
            raise InvalidDecisionError(f"label {label!r} is not a label of {self.name}: {problems[0]['errors']}")
        item = self._apply(
            item_id,
            lambda item: queue.decide(
                item,
                reviewer=reviewer,
                label=label,
                taxonomy=taxonomy,
                note=note,
                now=self._clock(),
                settings=self._settings,
            ),
        )
        return self._write_feedback(item) if item.decided_at is not None else item

    def _write_feedback(self, item: ReviewItem) -> ReviewItem:
        now = self._clock()
        key, document = review_feedback(item, contract=self._usecase.contract, received_at=now)
        self._feedback.put_json(self._bucket, key, document)
        return self._apply(
            item.item_id,
            lambda stored: stored.model_copy(update={"feedback_written_at": now, "revision": stored.revision + 1}),
        )

    def flush_feedback(self) -> int:
        """Write the labels of decided items whose write failed after the decision (idempotent keys)."""
        pending = [item for item in self._store.items(self.name) if item.decided_at and not item.feedback_written_at]
        for item in pending:
            self._write_feedback(item)
        return len(pending)

    def mark_overdue(self) -> int:
        """Mark undecided items past the SLA ``expired``; returns how many were marked."""
        now, marked = self._clock(), 0
        for state in (ItemState.OPEN, ItemState.CLAIMED):
            for item in self._store.queued(self.name, state, limit=self._settings.capacity):
                changed = queue.mark_overdue(item, now=now, settings=self._settings)
                if changed is None:
                    continue
                try:
                    self._store.replace(changed, expected_revision=item.revision)
                except ConcurrentReviewError:
                    continue  # someone claimed or decided it meanwhile: the next sweep looks again
                marked += 1
        return marked

    def stats(self, *, window_hours: float = 1.0, items: Iterable[ReviewItem] | None = None) -> ReviewStats:
        return review_stats(
            self._store.items(self.name) if items is None else items,
            usecase=self.name,
            now=self._clock(),
            sla_seconds=self._settings.sla_seconds,
            positive_class=self._usecase.contract.positive_class,
            window_hours=window_hours,
        )
