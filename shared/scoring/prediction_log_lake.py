"""The prediction log's other end: SQS message bodies → JSON Lines objects in the lake, one line a prediction.

:func:`parse_message` reads a message as :class:`~shared.scoring.prediction_log.PredictionLog` sends it
(a block of one variant's scores for a request, :class:`PredictionLogBlock`; or JSON Lines of
:class:`PredictionLogRecord`, as earlier versions sent). :func:`write_prediction_log` writes the records,
de-duplicated, one object per use case and UTC hour. Apart from the score function's import path, so a
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


def parse_message(body: str) -> list[PredictionLogRecord]:
    """The prediction-log lines of one message: a block, or (as earlier versions sent) JSON Lines of records.

    Raises ``ValueError`` (pydantic's ``ValidationError`` is one) when the message is neither.
    """
    lines: list[PredictionLogRecord] = []
    for line in split_lines(body):
        document = json.loads(line)
        if isinstance(document, dict) and isinstance(document.get("index"), list):  # a block; a record has one index
            lines += PredictionLogBlock.model_validate(document).lines()
        else:
            lines.append(PredictionLogRecord.model_validate(document))
    return lines


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
