"""The prediction log and the human-review queue: what was predicted, sent to SQS without holding up the answer.

Every served prediction (and shadow score: variant ``"shadow"``, ``served`` false) reaches the log
queue in a block of its request's scores (:class:`ScoredBlock`: one JSON object holding the block's
columns and records, split until it fits in ``MESSAGE_BYTES_LIMIT``). The records of a request the contract
refused are one more message, ``{"kind": "refusal", ..., "refusals": [{"field", "reason", "count"}]}``:
counts by field and reason kind (:func:`~shared.scoring.checks.reason_kind`), never values; none is built when
no record was refused. Each
served prediction that the use case's ``[review]`` rules route (:func:`shared.review.routing.route`: inside the
band, champion/challenger disagreement when the challenger scored it in shadow, a segment under a monitoring
alert, the audit slice) is also in a message of the review queue, with its routing (reasons, inclusion
probability, challenger score) under ``routing``, one entry a record. Messages are
sent with ``send_message_batch`` (at most 10 entries and 256 KiB a call) through a client with short
timeouts and no retries (:func:`queue_client_config`). A failure is caught, logged and counted
(``PredictionLogErrors``): it never fails a response.

:mod:`shared.scoring.prediction_log_lake` is the other end: SQS message bodies → one JSON Lines
record per prediction in the lake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Protocol

import msgspec

from shared.lake.layout import LOG_LINE_KIND as KIND
from shared.lake.layout import REFUSAL_KIND as REFUSAL
from shared.review.routing import ROUTING, route_block
from shared.scoring.exceptions import PredictionLogError
from shared.usecase.settings import ReviewSettings

SQS_BATCH_LIMIT = 10
MESSAGE_BYTES_LIMIT = 240 * 1024
"""A prediction-log message holds as many JSON Lines as fit in this (SQS takes 256 KiB a message)."""
SQS_BATCH_BYTES_LIMIT = 256 * 1024
"""SQS also caps the sum of one ``send_message_batch`` call's bodies at 256 KiB."""
_ENCODER = msgspec.json.Encoder()
QUEUE_TIMEOUT_SECONDS = 0.5

log = logging.getLogger(__name__)


def queue_client_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=QUEUE_TIMEOUT_SECONDS,
        read_timeout=QUEUE_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )


class MessageSender(Protocol):
    def send(self, queue_url: str, bodies: Sequence[str]) -> int:
        """Send the bodies; return how many failed (raise :class:`PredictionLogError` when none could be sent)."""
        ...


class SqsMessageSender:
    """:class:`MessageSender` on SQS through a boto3 client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def send(self, queue_url: str, bodies: Sequence[str]) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        failed = 0
        for chunk in _batches(bodies):
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            try:
                response = self._client.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                raise PredictionLogError(f"cannot send to {queue_url}: {exc}") from exc
            failed += len(response.get("Failed", []))
        return failed


def _batches(bodies: Sequence[str]) -> list[Sequence[str]]:
    """Consecutive bodies, at most 10 and 256 KiB (bodies are ASCII JSON: one byte a character) a batch."""
    batches: list[Sequence[str]] = []
    start, size = 0, 0
    for end, body in enumerate(bodies):
        if end > start and (end - start == SQS_BATCH_LIMIT or size + len(body) > SQS_BATCH_BYTES_LIMIT):
            batches.append(bodies[start:end])
            start, size = end, 0
        size += len(body)
    if start < len(bodies):
        batches.append(bodies[start:])
    return batches


@dataclass(frozen=True, kw_only=True)
class ScoredBlock:
    """The scores one model variant gave to some records of a request: one block of the prediction log.

    ``features`` holds each feature column's values, aligned with ``indices``, ``entity_ids``, ``scores``
    and ``labels``.
    """

    variant: str
    model_version: int
    threshold: float
    served: bool
    degraded: bool = False
    indices: list[int]
    entity_ids: list[Any]
    scores: list[float]
    labels: list[Any]
    features: Mapping[str, Sequence[Any]]

    def __len__(self) -> int:
        return len(self.indices)

    def select(self, positions: list[int]) -> ScoredBlock:
        """The predictions at ``positions`` (of this block; picked by one C-level ``itemgetter`` a column)."""
        getter = itemgetter(*positions) if len(positions) > 1 else None

        def pick(values: Sequence[Any]) -> list[Any]:
            return list(getter(values)) if getter is not None else [values[p] for p in positions]

        return replace(
            self,
            indices=pick(self.indices),
            entity_ids=pick(self.entity_ids),
            scores=pick(self.scores),
            labels=pick(self.labels),
            features={name: pick(values) for name, values in self.features.items()},
        )

    def part(self, start: int, stop: int) -> ScoredBlock:
        return replace(
            self,
            indices=self.indices[start:stop],
            entity_ids=self.entity_ids[start:stop],
            scores=self.scores[start:stop],
            labels=self.labels[start:stop],
            features={name: values[start:stop] for name, values in self.features.items()},
        )


def _fitting(encode: Callable[[int, int], bytes], count: int, limit: int) -> list[bytes]:
    """Bodies of items [0, count), encoded in consecutive ranges that each fit in ``limit`` (halving the range
    until they do; one item over the limit is sent alone and refused by SQS, which counts as a failure)."""

    def split(start: int, stop: int) -> list[bytes]:
        body = encode(start, stop)
        if len(body) <= limit or stop - start == 1:
            return [body]
        middle = (start + stop) // 2
        return split(start, middle) + split(middle, stop)

    return split(0, count) if count else []


AlertedSegments = Callable[[], frozenset[str]]
"""The segments (``column=value``) under a monitoring alert now."""


class PredictionLog:
    """Sends a request's scores to the prediction-log queue, and those routed for review to the review queue.

    A log message is one JSON object per block: the block's columns and its features by column, split in halves
    until each fits in ``MESSAGE_BYTES_LIMIT`` (one encoder call for a whole request instead of one per
    prediction; ``prediction_log_lake.PredictionLogBlock`` reads it back, one line a prediction). A review
    message is a block of the served predictions routed for review, with their ``routing``.
    """

    def __init__(
        self,
        sender: MessageSender,
        *,
        usecase: str,
        log_queue_url: str | None,
        review_queue_url: str | None,
        review: ReviewSettings | None,
        segment_columns: Sequence[str] = (),
        alerted_segments: AlertedSegments | None = None,
    ) -> None:
        """``review``: the use case's ``[review]`` (None: nothing is routed); ``alerted_segments``: the segments
        under a monitoring alert (asked once a request, only when ``review.segment_alerts``)."""
        self._sender = sender
        self._usecase = usecase
        self._log_queue_url = log_queue_url
        self._review_queue_url = review_queue_url
        self._review = review
        self._segment_columns = tuple(segment_columns)
        self._alerted = alerted_segments

    def _block_bodies(
        self, request_id: str, block: ScoredBlock, when: str, routing: Sequence[Mapping[str, Any]] | None = None
    ) -> list[bytes]:
        """``routing``: one entry a record of ``block``, sent under ``routing`` with the records of each part."""

        def encode(start: int, stop: int) -> bytes:
            part = block.part(start, stop) if (start, stop) != (0, len(block)) else block
            return _ENCODER.encode(
                {
                    "usecase": self._usecase,
                    "request_id": request_id,
                    "time": when,
                    "variant": part.variant,
                    "model_version": part.model_version,
                    "threshold": part.threshold,
                    "served": part.served,
                    "degraded": part.degraded,
                    "index": part.indices,
                    "entity_id": part.entity_ids,
                    "score": part.scores,
                    "label": part.labels,
                    "features": part.features,
                    **({ROUTING: routing[start:stop]} if routing is not None else {}),
                }
            )

        return _fitting(encode, len(block), MESSAGE_BYTES_LIMIT)

    def _alerted_now(self) -> frozenset[str]:
        review = self._review
        if review is None or not review.segment_alerts or self._alerted is None:
            return frozenset()
        try:
            return self._alerted()
        except Exception as exc:  # noqa: BLE001 - routing must never fail a response; the band and audit still apply
            log.warning("alerted segments unreadable; routing without them", extra={"error": str(exc)})
            return frozenset()

    def routed_for_review(
        self,
        request_id: str,
        block: ScoredBlock,
        challenger_scores: Mapping[int, float],
        alerted: frozenset[str],
    ) -> tuple[ScoredBlock, list[dict[str, Any]]] | None:
        """The block's served predictions that a review rule routes, and each one's routing (None: none)."""
        review = self._review
        if review is None or not block.served:
            return None
        challengers = [challenger_scores.get(index) for index in block.indices] if challenger_scores else None
        routed = route_block(
            settings=review,
            request_id=request_id,
            indices=block.indices,
            scores=block.scores,
            challenger_scores=challengers,
            segments={c: block.features[c] for c in self._segment_columns if c in block.features},
            alerted_segments=alerted,
        )
        positions = routed.positions
        routing = [
            {
                "reasons": reasons,  # StrEnum members: encoded as their values
                "inclusion_probability": probability,
                "challenger_score": challengers[position] if challengers else None,
            }
            for position, reasons, probability in zip(
                positions, routed.reasons, routed.inclusion_probabilities, strict=True
            )
        ]
        return (block.select(positions), routing) if positions else None

    def refusal_body(self, request_id: str, refused: Mapping[tuple[str, str], int], when: str) -> bytes:
        """The message of a request's refused records: counts by (field, reason kind)."""
        return _ENCODER.encode(
            {
                KIND: REFUSAL,
                "usecase": self._usecase,
                "request_id": request_id,
                "time": when,
                "refusals": [
                    {"field": field, "reason": reason, "count": count}
                    for (field, reason), count in sorted(refused.items())
                ],
            }
        )

    def messages(
        self,
        request_id: str,
        blocks: Iterable[ScoredBlock],
        at: datetime,
        refused: Mapping[tuple[str, str], int] | None = None,
    ) -> tuple[list[str], list[str]]:
        """The prediction-log message bodies and the review message bodies of one request.

        A review message is a block too (the predictions routed for review, with their ``routing``): the
        review intake reads it with the prediction log's own reader, one record a prediction with its features.
        The challenger's score of a record is its shadow score in the same request. ``refused`` (the request's
        refused records by (field, reason kind)) adds one message when not empty.
        """
        when = at.isoformat()
        logged: list[bytes] = []
        review: list[bytes] = []
        blocks = [block for block in blocks if len(block)]
        shadow = {
            index: float(score)
            for block in blocks
            if not block.served
            for index, score in zip(block.indices, block.scores, strict=True)
        }
        alerted = self._alerted_now() if self._review is not None and self._review_queue_url else frozenset()
        for block in blocks:
            logged += self._block_bodies(request_id, block, when)
            routed = self.routed_for_review(request_id, block, shadow, alerted)
            if routed is not None:
                review += self._block_bodies(request_id, routed[0], when, routed[1])
        if refused:
            logged.append(self.refusal_body(request_id, refused, when))
        return [body.decode() for body in logged], [body.decode() for body in review]

    def publish(
        self,
        request_id: str,
        blocks: Iterable[ScoredBlock],
        *,
        at: datetime | None = None,
        refused: Mapping[tuple[str, str], int] | None = None,
    ) -> int:
        """Send the messages; return how many could not be sent (errors are logged, never raised)."""
        logged, review = self.messages(request_id, blocks, at or datetime.now(UTC), refused)
        failed = 0
        for queue_url, bodies in ((self._log_queue_url, logged), (self._review_queue_url, review)):
            if not queue_url or not bodies:
                continue
            try:
                failed += self._sender.send(queue_url, bodies)
            except Exception as exc:  # noqa: BLE001 - the log must never fail a response, whatever the sender did
                log.warning("prediction log messages not sent", extra={"queue_url": queue_url, "error": str(exc)})
                failed += len(bodies)
        return failed
