"""Labels joined to the predictions they answer: pure, counted, never twice.

A feedback label (:mod:`shared.scoring.feedback`) names its prediction in one of three ways:

- ``request_id`` and ``entity_id``: the served line of that entity in that request (the lowest ``index`` if
  the entity appears twice in the request);
- ``request_id`` alone: the request's served prediction, when the request had a single served record; a
  label for a request of several records cannot say which one it answers and is counted ``ambiguous``;
- ``entity_id`` alone: that entity's latest served prediction strictly before the label's time.

The label's time is ``observed_at``, else ``received_at``. Only served lines (champion or challenger) are
join targets; the shadow line of the same record (same request and index) gives ``shadow_score`` beside the
served one, so a challenger scored in shadow is monitored on the same labels.

Each label lands in exactly one count of :class:`JoinOutcome`:

- ``joined_by_request`` / ``joined_by_entity``;
- ``no_prediction``: no served line matches (an unknown request id, an entity never scored in the
  predictions read — including one whose prediction is older than what was read);
- ``before_prediction``: every matching prediction is at or after the label's time;
- ``late``: the prediction it answers is more than ``label_window`` older than the label;
- ``repeated``: the prediction was already joined to another label — the first label wins, ordered by label
  time, then received time, then feedback id; labels joined on earlier days (``already_joined``) count as
  first. The others are counted, never joined;
- ``ambiguous``: a ``request_id``-only label for a request with several served records;
- ``invalid``: a feedback object that is not a label of this contract (its value is not an allowed label
  value, no subject, unreadable times, a provenance inclusion probability outside (0, 1]). The API refuses
  those; a hand-written object may still hold one.

A label written by human review (:mod:`shared.review.labels`) carries its inclusion probability P in its
provenance; the joined label keeps it and weighs ``1 / P`` in the monitor's estimates (others weigh 1).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import ValidationError

from shared.monitoring.window import PredictionColumns, to_time
from shared.scoring.feedback import INCLUSION_PROBABILITY, PROVENANCE, FeedbackItem, label_errors
from shared.usecase.settings import Contract

JOINED_BY_REQUEST = "request_id"
JOINED_BY_ENTITY = "entity_id"
PredictionIdentity = tuple[str, int]
"""(request_id, index): one served record."""


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FeedbackLabel:
    """One feedback object of the lake, checked against the contract."""

    feedback_id: str
    request_id: str | None
    entity_id: str | None
    """``str()`` of the label's entity id (``42`` and ``"42"`` name the same entity)."""
    label: str | int | bool
    observed_at: datetime | None
    received_at: datetime
    day: date
    """The feedback day partition it lives in (:func:`shared.lake.layout.feedback_key`)."""
    inclusion_probability: float | None = None
    """A reviewed label's inclusion probability (its provenance); None for a label nobody sampled."""

    @property
    def label_time(self) -> datetime:
        return self.observed_at or self.received_at


def feedback_label(
    feedback_id: str, document: Any, contract: Contract, *, day: date | None = None
) -> FeedbackLabel | None:
    """The label of one feedback object, or None when it is not a valid label of ``contract``; ``day``: the
    partition it was read from (by default the label time's UTC date, as the API files it)."""
    if not isinstance(document, dict):
        return None
    try:
        item = FeedbackItem.model_validate(
            {name: document.get(name) for name in ("request_id", "entity_id", "label", "observed_at")}
        )
        received_at = _utc(datetime.fromisoformat(str(document["received_at"])))
    except (ValidationError, KeyError, TypeError, ValueError):
        return None
    if label_errors([item], contract):
        return None
    observed_at = _utc(item.observed_at) if item.observed_at else None
    probability = _inclusion_probability(document)
    if probability is False:
        return None
    return FeedbackLabel(
        feedback_id=feedback_id,
        request_id=item.request_id,
        entity_id=None if item.entity_id is None else str(item.entity_id),
        label=item.label,
        observed_at=observed_at,
        received_at=received_at,
        day=day or (observed_at or received_at).date(),
        inclusion_probability=probability or None,
    )


def _inclusion_probability(document: dict[str, Any]) -> float | bool | None:
    """The provenance's inclusion probability; None when there is none, False when it is not in (0, 1]."""
    provenance = document.get(PROVENANCE)
    if not isinstance(provenance, dict) or provenance.get(INCLUSION_PROBABILITY) is None:
        return None
    value = provenance[INCLUSION_PROBABILITY]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        return False
    return float(value)


@dataclass(frozen=True)
class JoinedLabel:
    """A label and the served prediction it answers (one line of the joined set)."""

    request_id: str
    index: int
    entity_id: str | None
    variant: str
    model_version: int
    score: float
    threshold: float
    features: dict[str, Any]
    predicted_at: datetime
    label: str | int | bool
    positive: bool
    observed_at: datetime
    """The label's time (``observed_at``, else ``received_at``)."""
    joined_by: str
    feedback_id: str
    shadow_score: float | None = None
    shadow_model_version: int | None = None
    inclusion_probability: float | None = None
    """A reviewed label's inclusion probability: it weighs 1 / P in the monitor's estimates."""

    @property
    def weight(self) -> float:
        return 1.0 if self.inclusion_probability is None else 1.0 / self.inclusion_probability

    @property
    def identity(self) -> PredictionIdentity:
        return (self.request_id, self.index)

    def document(self) -> dict[str, Any]:
        """A JSON-ready dict (times ISO 8601, NaN features as null)."""
        document = asdict(self)
        document["predicted_at"] = self.predicted_at.isoformat()
        document["observed_at"] = self.observed_at.isoformat()
        document["features"] = {k: _json_value(v) for k, v in self.features.items()}
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> JoinedLabel:
        values = {f.name: document[f.name] for f in fields(cls) if f.name in document}
        values["predicted_at"] = _utc(datetime.fromisoformat(values["predicted_at"]))
        values["observed_at"] = _utc(datetime.fromisoformat(values["observed_at"]))
        return cls(**values)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return _json_value(value.item())
    return value


@dataclass(frozen=True)
class JoinOutcome:
    """How many labels went where (each label in exactly one count)."""

    joined_by_request: int = 0
    joined_by_entity: int = 0
    no_prediction: int = 0
    before_prediction: int = 0
    late: int = 0
    repeated: int = 0
    ambiguous: int = 0
    invalid: int = 0

    @property
    def joined(self) -> int:
        return self.joined_by_request + self.joined_by_entity

    @property
    def total(self) -> int:
        return sum(self.counts().values())

    def counts(self) -> dict[str, int]:
        return asdict(self)

    def __add__(self, other: JoinOutcome) -> JoinOutcome:
        return JoinOutcome(**{name: value + getattr(other, name) for name, value in self.counts().items()})


@dataclass(frozen=True)
class JoinResult:
    labels: list[JoinedLabel] = field(default_factory=list)
    outcome: JoinOutcome = field(default_factory=JoinOutcome)


def first_label_order(label: FeedbackLabel) -> tuple[datetime, datetime, str]:
    """The order in which labels claim predictions: the first wins."""
    return (label.label_time, label.received_at, label.feedback_id)


def join_labels(
    labels: Sequence[FeedbackLabel],
    predictions: PredictionColumns,
    *,
    contract: Contract,
    label_window: timedelta,
    already_joined: Collection[PredictionIdentity] = (),
    invalid: int = 0,
) -> JoinResult:
    """Join ``labels`` to the served ``predictions`` (see the module's rules); ``invalid`` feedback objects
    found while reading are carried into the outcome's count."""
    counts: dict[str, int] = defaultdict(int)
    counts["invalid"] = invalid
    index = _ServedIndex(predictions, labels)
    claimed = set(already_joined)
    window = np.timedelta64(label_window, "us")
    matched: list[tuple[FeedbackLabel, int, str]] = []
    for label in sorted(labels, key=first_label_order):
        at = to_time(label.label_time)
        row, reason = index.match(label, at)
        if row is not None and at - predictions.time[row] > window:
            row, reason = None, "late"
        if row is not None:
            identity = (str(predictions.request_id[row]), int(predictions.index[row]))
            if identity in claimed:
                row, reason = None, "repeated"
            else:
                claimed.add(identity)
        if row is None:
            counts[reason] += 1
            continue
        by = JOINED_BY_REQUEST if label.request_id is not None else JOINED_BY_ENTITY
        counts["joined_by_request" if by == JOINED_BY_REQUEST else "joined_by_entity"] += 1
        matched.append((label, row, by))
    shadows = index.shadows({(str(predictions.request_id[r]), int(predictions.index[r])) for _, r, _ in matched})
    joined = [
        _joined(label, row, by, predictions=predictions, contract=contract, shadows=shadows)
        for label, row, by in matched
    ]
    return JoinResult(labels=joined, outcome=JoinOutcome(**counts))


def _joined(
    label: FeedbackLabel,
    row: int,
    by: str,
    *,
    predictions: PredictionColumns,
    contract: Contract,
    shadows: dict[PredictionIdentity, int],
) -> JoinedLabel:
    identity = (str(predictions.request_id[row]), int(predictions.index[row]))
    shadow = shadows.get(identity)
    predicted_at = predictions.time[row].astype("datetime64[us]").item().replace(tzinfo=UTC)
    return JoinedLabel(
        request_id=identity[0],
        index=identity[1],
        entity_id=predictions.entity_id[row],
        variant=str(predictions.variant[row]),
        model_version=int(predictions.model_version[row]),
        score=float(predictions.score[row]),
        threshold=float(predictions.threshold[row]),
        features={name: _json_value(values[row]) for name, values in predictions.features.items()},
        predicted_at=predicted_at,
        label=label.label,
        positive=label.label == contract.positive_class,
        observed_at=label.label_time,
        joined_by=by,
        feedback_id=label.feedback_id,
        shadow_score=None if shadow is None else float(predictions.score[shadow]),
        shadow_model_version=None if shadow is None else int(predictions.model_version[shadow]),
        inclusion_probability=label.inclusion_probability,
    )


class _ServedIndex:
    """The served lines the labels may answer, by request id and by entity id (in time order)."""

    def __init__(self, predictions: PredictionColumns, labels: Sequence[FeedbackLabel]) -> None:
        self._predictions = predictions
        requests = {label.request_id for label in labels if label.request_id is not None}
        entities = {label.entity_id for label in labels if label.request_id is None and label.entity_id is not None}
        self._times = predictions.time.astype(np.int64)
        served = np.flatnonzero(predictions.served)
        self.by_request: dict[str, list[int]] = defaultdict(list)
        by_entity: dict[str, list[int]] = defaultdict(list)
        ids = predictions.request_id[served].tolist()
        entity_ids = predictions.entity_id[served].tolist()
        for row, request_id, entity_id in zip(served.tolist(), ids, entity_ids, strict=True):
            if request_id in requests:
                self.by_request[request_id].append(row)
            if entity_id in entities:
                by_entity[entity_id].append(row)
        for rows in self.by_request.values():
            rows.sort(key=lambda r: int(predictions.index[r]))
        self.by_entity: dict[str, tuple[list[int], list[int]]] = {}
        for entity, rows in by_entity.items():
            rows.sort(key=lambda r: (self._times[r], int(predictions.index[r])))
            self.by_entity[entity] = (rows, [int(self._times[r]) for r in rows])

    def match(self, label: FeedbackLabel, at: np.datetime64) -> tuple[int | None, str]:
        """The served line ``label`` answers, or None and why not (before the window check)."""
        moment = int(at.astype(np.int64))
        if label.request_id is not None:
            rows = self.by_request.get(label.request_id, [])
            if label.entity_id is not None:
                rows = [r for r in rows if self._predictions.entity_id[r] == label.entity_id]
            elif len(rows) > 1:
                return None, "ambiguous"
            if not rows:
                return None, "no_prediction"
            row = rows[0]
            return (row, "") if self._times[row] < moment else (None, "before_prediction")
        rows, times = self.by_entity.get(label.entity_id or "", ([], []))
        if not rows:
            return None, "no_prediction"
        before = bisect.bisect_left(times, moment)
        if before == 0:
            return None, "before_prediction"
        return rows[before - 1], ""

    def shadows(self, identities: set[PredictionIdentity]) -> dict[PredictionIdentity, int]:
        """The shadow line of each joined record, where one was logged."""
        if not identities:
            return {}
        predictions = self._predictions
        candidates = np.flatnonzero(~predictions.served)
        found: dict[PredictionIdentity, int] = {}
        rows = candidates.tolist()
        requests = predictions.request_id[candidates].tolist()
        indices = predictions.index[candidates].tolist()
        for row, request_id, index in zip(rows, requests, indices, strict=True):
            key = (request_id, index)
            if key in identities and key not in found:
                found[key] = row
        return found
