"""The prediction log and the human-review queue: what was predicted, sent to SQS without holding up the answer.

Every served prediction (and shadow score: variant ``"shadow"``, ``served`` false) is one JSON Lines
record of a prediction-log message; a message holds as many as fit in ``MESSAGE_BYTES_LIMIT``. Each
prediction whose score is inside ``review_band`` is also one message of the review queue. Messages are
sent with ``send_message_batch`` (at most 10 entries and 256 KiB a call) through a client with short
timeouts and no retries (:func:`queue_client_config`). A failure is caught, logged and counted
(``PredictionLogErrors``): it never fails a response.

:func:`write_prediction_log` is the other end: SQS message bodies → JSON Lines objects in the lake.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared import lake
from shared.scoring.exceptions import PredictionLogError

SQS_BATCH_LIMIT = 10
MESSAGE_BYTES_LIMIT = 240 * 1024
"""A prediction-log message holds as many JSON Lines as fit in this (SQS takes 256 KiB a message)."""
SQS_BATCH_BYTES_LIMIT = 256 * 1024
"""SQS also caps the sum of one ``send_message_batch`` call's bodies at 256 KiB."""
_LINE_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
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


def chunk_lines(lines: Iterable[str], limit: int = MESSAGE_BYTES_LIMIT) -> list[str]:
    """JSON Lines message bodies: the lines joined by newlines, as many a body as fit under ``limit`` bytes."""
    bodies: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > limit:
            bodies.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        bodies.append("\n".join(current))
    return bodies


def split_lines(body: str) -> list[str]:
    """The JSON Lines records of one prediction-log message body."""
    return [line for line in body.splitlines() if line.strip()]


class PredictionLogRecord(BaseModel):
    """One line of the prediction log."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    usecase: str
    request_id: str = Field(min_length=1)
    index: int = 0
    """The record's position in its request: (request_id, variant, index) identifies a line."""
    entity_id: str | int | None = None
    features: dict[str, Any] = Field(default_factory=dict)
    score: float
    label: str | int | bool | None = None
    threshold: float
    model_version: int
    variant: str
    served: bool
    degraded: bool = False
    time: datetime

    @property
    def identity(self) -> tuple[str, str, int]:
        return (self.request_id, self.variant, self.index)


@dataclass(frozen=True, kw_only=True)
class LoggedScore:
    """A score to log: served (champion, challenger) or shadow."""

    index: int
    entity_id: Any
    features: dict[str, Any]
    score: float
    label: Any
    threshold: float
    model_version: int
    variant: str
    served: bool
    degraded: bool = False


class PredictionLog:
    """Sends a request's scores to the prediction-log queue, and those in the review band to the review queue."""

    def __init__(
        self,
        sender: MessageSender,
        *,
        usecase: str,
        log_queue_url: str | None,
        review_queue_url: str | None,
        review_band: tuple[float, float] | None,
    ) -> None:
        self._sender = sender
        self._usecase = usecase
        self._log_queue_url = log_queue_url
        self._review_queue_url = review_queue_url
        self._review_band = review_band

    def in_review_band(self, score: float) -> bool:
        band = self._review_band
        return band is not None and band[0] <= score <= band[1]

    def messages(self, request_id: str, scores: Iterable[LoggedScore], at: datetime) -> tuple[list[str], list[str]]:
        """The prediction-log message bodies (JSON Lines, :func:`chunk_lines`) and review bodies of one request."""
        when = at.isoformat()
        logged: list[str] = []
        review: list[str] = []
        for item in scores:
            common = {
                "usecase": self._usecase,
                "request_id": request_id,
                "index": item.index,
                "entity_id": item.entity_id,
                "features": item.features,
                "score": item.score,
                "threshold": item.threshold,
                "model_version": item.model_version,
                "variant": item.variant,
                "time": when,
            }
            outcome = {"label": item.label, "served": item.served, "degraded": item.degraded}
            logged.append(_LINE_ENCODER.encode({**common, **outcome}))
            if item.served and self.in_review_band(item.score):
                review.append(json.dumps({**common, "band": list(self._review_band or ())}, default=str))
        return chunk_lines(logged), review

    def publish(self, request_id: str, scores: Iterable[LoggedScore], *, at: datetime | None = None) -> int:
        """Send the messages; return how many could not be sent (errors are logged, never raised)."""
        logged, review = self.messages(request_id, scores, at or datetime.now(UTC))
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


# --- the consumer: SQS messages → JSON Lines in the lake ------------------------------------------------------------


class ObjectWriter(Protocol):
    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None: ...


class S3ObjectWriter:
    """:class:`ObjectWriter` on S3 through a boto3 client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        from shared.exceptions import StorageError

        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot write s3://{bucket}/{key}: {exc}") from exc


def deduplicated(records: Iterable[tuple[str, PredictionLogRecord]]) -> list[tuple[str, PredictionLogRecord]]:
    """The first (message id, record) of each (request_id, variant, index)."""
    seen: set[tuple[str, str, int]] = set()
    kept = []
    for message_id, record in records:
        if record.identity not in seen:
            seen.add(record.identity)
            kept.append((message_id, record))
    return kept


@dataclass(frozen=True)
class PredictionLogWrite:
    written: dict[str, list[str]]
    """Object key → the message ids whose records it holds."""
    failed_message_ids: list[str]
    """Messages whose object could not be written (SQS delivers them again)."""


def write_prediction_log(
    records: Sequence[tuple[str, PredictionLogRecord]], *, writer: ObjectWriter, bucket: str
) -> PredictionLogWrite:
    """Write the records as JSON Lines, one object per (use case, UTC hour), de-duplicated by identity.

    Each object's name is a hash of the identities it holds, so a re-delivered batch overwrites its own
    objects. A failed write fails only the messages of that object.
    """
    from shared.exceptions import StorageError

    groups: dict[tuple[str, str], list[tuple[str, PredictionLogRecord]]] = defaultdict(list)
    for message_id, record in deduplicated(records):
        at = record.time.astimezone(UTC) if record.time.tzinfo else record.time
        groups[(record.usecase, at.strftime("%Y-%m-%dT%H"))].append((message_id, record))
    written: dict[str, list[str]] = {}
    failed: list[str] = []
    for (usecase, _hour), members in sorted(groups.items()):
        identities = sorted("|".join(map(str, r.identity)) for _, r in members)
        object_id = hashlib.sha256("\n".join(identities).encode()).hexdigest()[:32]
        key = lake.prediction_log_key(usecase, at=members[0][1].time, object_id=object_id)
        body = "".join(r.model_dump_json() + "\n" for _, r in members).encode()
        message_ids = [message_id for message_id, _ in members]
        try:
            writer.put_bytes(bucket, key, body, content_type="application/x-ndjson")
        except StorageError as exc:
            log.warning("prediction log object not written", extra={"key": key, "error": str(exc)})
            failed.extend(message_ids)
            continue
        written[key] = message_ids
    return PredictionLogWrite(written=written, failed_message_ids=failed)
