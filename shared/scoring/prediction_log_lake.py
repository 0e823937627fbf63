"""The prediction log's other end: SQS message bodies → JSON Lines objects in the lake, one line a prediction.

:func:`parse_message` reads a message as :class:`~shared.scoring.prediction_log.PredictionLog` sends it
(a block of one variant's scores for a request, :class:`PredictionLogBlock`; or JSON Lines of
:class:`PredictionLogRecord`, as earlier versions sent). :func:`write_prediction_log` writes the records,
de-duplicated, one object per use case and UTC hour. A refusal message (``kind: "refusal"``: a request's
refused records counted by field and reason kind) is read by :func:`parse_log_message` into
:class:`RefusalLogRecord` lines, written in objects of their own beside the predictions
(:func:`~shared.lake.layout.refusal_log_key`), one line ``{"kind": "refusal", "usecase", "request_id", "time",
"field", "reason", "count"}`` per (request, field, reason). Apart from the score function's import path, so a
cold start of the score function does not build these models.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.lake import layout as lake
from shared.lake.exceptions import StorageError
from shared.lake.layout import LOG_LINE_KIND as KIND
from shared.lake.layout import REFUSAL_KIND as REFUSAL

log = logging.getLogger(__name__)


API_SOURCE = "api"
BATCH_SOURCE = "batch"
"""A prediction-log record's ``source``: scored for an API request, or by a batch job."""


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
    source: Literal["api", "batch"] = "api"
    """Who scored it: the API (a request) or a batch job (``request_id`` is then the job and chunk)."""

    @property
    def identity(self) -> tuple[str, str, int]:
        return (self.request_id, self.variant, self.index)


class PredictionLogBlock(BaseModel):
    """One prediction-log message as :class:`PredictionLog` writes it: a block of one variant's scores."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    usecase: str
    request_id: str = Field(min_length=1)
    time: datetime
    variant: str
    model_version: int
    threshold: float
    served: bool
    degraded: bool = False
    index: list[int]
    entity_id: list[str | int | None]
    score: list[float]
    label: list[str | int | bool | None]
    features: dict[str, list[Any]]
    """Each feature column's values."""

    @model_validator(mode="after")
    def _aligned(self) -> PredictionLogBlock:
        lengths = {len(self.index), len(self.entity_id), len(self.score), len(self.label)}
        lengths.update(len(values) for values in self.features.values())
        if len(lengths) != 1:
            raise ValueError("index, entity_id, score, label and every feature must have one entry per prediction")
        return self

    def lines(self) -> list[PredictionLogRecord]:
        names = list(self.features)
        rows = list(zip(*self.features.values(), strict=True)) if names else [()] * len(self.index)
        return [
            PredictionLogRecord(
                usecase=self.usecase,
                request_id=self.request_id,
                index=index,
                entity_id=entity_id,
                features=dict(zip(names, row, strict=True)),
                score=score,
                label=label,
                threshold=self.threshold,
                model_version=self.model_version,
                variant=self.variant,
                served=self.served,
                degraded=self.degraded,
                time=self.time,
            )
            for index, entity_id, score, label, row in zip(
                self.index, self.entity_id, self.score, self.label, rows, strict=True
            )
        ]


class RefusalLogRecord(BaseModel):
    """One refusal line of the log: how many of a request's records were refused for ``reason`` on ``field``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["refusal"] = REFUSAL
    usecase: str
    request_id: str = Field(min_length=1)
    time: datetime
    field: str
    reason: str
    """A reason kind (:func:`~shared.scoring.checks.reason_kind`): never a value."""
    count: int = Field(ge=1)

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (REFUSAL, self.request_id, self.field, self.reason)


class _RefusalCount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    field: str
    reason: str
    count: int = Field(ge=1)


class RefusalLogMessage(BaseModel):
    """A refusal message as :class:`PredictionLog` sends it: a request's refused records by (field, reason)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["refusal"]
    usecase: str
    request_id: str = Field(min_length=1)
    time: datetime
    refusals: list[_RefusalCount]

    def lines(self) -> list[RefusalLogRecord]:
        return [
            RefusalLogRecord(
                usecase=self.usecase,
                request_id=self.request_id,
                time=self.time,
                field=r.field,
                reason=r.reason,
                count=r.count,
            )
            for r in self.refusals
        ]


LogLine = PredictionLogRecord | RefusalLogRecord
"""A line of the prediction log in the lake: a prediction, or a request's refusals for one reason."""


def parse_log_message(body: str) -> list[LogLine]:
    """The lines of one prediction-log message: a block, a refusal message, or (as earlier versions sent) JSON
    Lines of records.

    Raises ``ValueError`` (pydantic's ``ValidationError`` is one) when the message is none of these, or has a
    ``kind`` this version does not know.
    """
    lines: list[LogLine] = []
    for line in split_lines(body):
        document = json.loads(line)
        kind = document.get(KIND) if isinstance(document, dict) else None
        if kind == REFUSAL:
            lines += RefusalLogMessage.model_validate(document).lines()
        elif kind is not None:
            raise ValueError(f"a prediction-log message of unknown kind {kind!r}")
        elif isinstance(document, dict) and isinstance(document.get("index"), list):  # a block; a record has one
            lines += PredictionLogBlock.model_validate(document).lines()
        else:
            lines.append(PredictionLogRecord.model_validate(document))
    return lines


def parse_message(body: str) -> list[PredictionLogRecord]:
    """The predictions of one message (:func:`parse_log_message` without the refusals)."""
    return [line for line in parse_log_message(body) if isinstance(line, PredictionLogRecord)]


def logged_records(body: str) -> list[PredictionLogRecord]:
    """The records of one prediction-log object in the lake (JSON Lines, as :func:`write_prediction_log` writes
    them), in order. A line that is JSON but not a record is left out; a line that is not JSON raises
    ``json.JSONDecodeError``."""
    records: list[PredictionLogRecord] = []
    for line in split_lines(body):
        document = json.loads(line)
        try:
            records.append(PredictionLogRecord.model_validate(document))
        except ValidationError:
            continue
    return records


# --- the consumer: SQS messages → JSON Lines in the lake ------------------------------------------------------------


class ObjectWriter(Protocol):
    """Where the log's objects go (:class:`~shared.lake.adapters.S3ObjectStore` on AWS)."""

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None: ...


def deduplicated(records: Iterable[tuple[str, LogLine]]) -> list[tuple[str, LogLine]]:
    """The first (message id, line) of each identity: a prediction's (request_id, variant, index), a refusal's
    ("refusal", request_id, field, reason)."""
    seen: set[tuple[Any, ...]] = set()
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
    records: Sequence[tuple[str, LogLine]], *, writer: ObjectWriter, bucket: str
) -> PredictionLogWrite:
    """Write the lines as JSON Lines, one object per (use case, UTC hour, kind), de-duplicated by identity:
    predictions in one object, refusals in another (:func:`~shared.lake.layout.refusal_log_key`).

    Each object's name is a hash of the identities it holds, so a re-delivered batch overwrites its own
    objects. A failed write fails only the messages of that object.
    """

    groups: dict[tuple[str, str, bool], list[tuple[str, LogLine]]] = defaultdict(list)
    for message_id, record in deduplicated(records):
        at = record.time.astimezone(UTC) if record.time.tzinfo else record.time
        refusal = isinstance(record, RefusalLogRecord)
        groups[(record.usecase, at.strftime("%Y-%m-%dT%H"), refusal)].append((message_id, record))
    written: dict[str, list[str]] = {}
    failed: list[str] = []
    for (usecase, _hour, refusal), members in sorted(groups.items()):
        identities = sorted("|".join(map(str, r.identity)) for _, r in members)
        object_id = hashlib.sha256("\n".join(identities).encode()).hexdigest()[:32]
        key_of = lake.refusal_log_key if refusal else lake.prediction_log_key
        key = key_of(usecase, at=members[0][1].time, object_id=object_id)
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
