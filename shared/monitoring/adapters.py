"""The monitor's lake: the prediction log and feedback of a window in, the joined set out.

:class:`MonitoringLake` reads and writes through :class:`~shared.lake.adapters.S3ObjectStore` (or any store
with ``list_keys``, ``get_bytes`` and ``put_bytes``); it never makes a client of its own. It lists only the
partitions a window covers — the prediction log's ``date=…/hour=…/`` prefixes of the window's UTC hours, the
feedback's ``date=…/`` prefixes of its days — and reads their objects on a few threads (S3 latency, not CPU,
bounds a read of many small objects; pyarrow parses outside the GIL).

Refusals (records the score function refused) are in the prediction log too, as lines of kind ``refusal`` in
``refusals-<id>.jsonl`` objects of the same hour partitions: :meth:`MonitoringLake.read_predictions` counts
them by ``field: reason``, each (request, field, reason) once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol, TypeVar

import numpy as np

from shared.lake import layout as lake
from shared.monitoring.join import FeedbackLabel, JoinedLabel, JoinOutcome, JoinResult, feedback_label
from shared.monitoring.window import PredictionColumns, RefusalLine, concatenate, prediction_columns, to_time
from shared.usecase.settings import Contract

READ_WORKERS = 16
T = TypeVar("T")
R = TypeVar("R")


class LakeStore(Protocol):
    """What the monitor needs of the object store (:class:`~shared.lake.adapters.S3ObjectStore`)."""

    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...

    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None: ...


def window_hours(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours ``[start, end)`` touches, each as the start of its hour."""
    start, end = _utc(start), _utc(end)
    hour = start.replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def window_days(start: datetime, end: datetime) -> list[date]:
    """The UTC days ``[start, end)`` touches."""
    start, end = _utc(start), _utc(end)
    day, days = start.date(), []
    while datetime.combine(day, datetime.min.time(), tzinfo=UTC) < end:
        days.append(day)
        day += timedelta(days=1)
    return days


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PredictionRead:
    """The prediction log of a window: its lines as columns, and what was read to get them."""

    predictions: PredictionColumns
    objects: int
    """Objects read (one per hour and log batch)."""
    unreadable: int
    """Lines that were not predictions (not JSON, or not a record of any format): skipped, counted."""
    refusals: dict[str, int] = field(default_factory=dict)
    """Records refused in the window, by ``field: reason`` (each request's count for a reason taken once)."""


@dataclass(frozen=True)
class FeedbackRead:
    labels: list[FeedbackLabel]
    invalid: dict[date, int]
    """Per day partition, the feedback objects that are not labels of the contract
    (:func:`~shared.monitoring.join.feedback_label`)."""


@dataclass(frozen=True)
class SubjectFilter:
    """Keep only lines a label may answer: of these requests, or of these entities."""

    request_ids: frozenset[str]
    entity_ids: frozenset[str]

    def mask(self, columns: PredictionColumns) -> np.ndarray:
        requests, entities = self.request_ids, self.entity_ids
        return np.fromiter(
            (r in requests or e in entities for r, e in zip(columns.request_id, columns.entity_id, strict=True)),
            dtype=bool,
            count=len(columns),
        )


def refusal_counts(lines: Iterable[RefusalLine], start: datetime, end: datetime) -> dict[str, int]:
    """Refused records of ``[start, end)`` by ``field: reason``; a line seen twice (same request, field and
    reason: a message delivered again) counts once."""
    low, high = to_time(start), to_time(end)
    seen: set[tuple[str, str, str]] = set()
    counts: dict[str, int] = {}
    for line in lines:
        if not low <= line.time < high or line.identity in seen:
            continue
        seen.add(line.identity)
        counts[line.key] = counts.get(line.key, 0) + line.count
    return dict(sorted(counts.items()))


class MonitoringLake:
    def __init__(self, store: LakeStore, bucket: str, *, workers: int = READ_WORKERS) -> None:
        self._store = store
        self._bucket = bucket
        self._workers = workers

    # --- the prediction log -----------------------------------------------------------------------------------------

    def prediction_keys(self, usecase: str, start: datetime, end: datetime) -> list[str]:
        """The prediction log's objects of the hours ``[start, end)`` covers (one listing per hour)."""
        prefixes = [lake.prediction_log_hour_prefix(usecase, hour) for hour in window_hours(start, end)]
        return [key for keys in self._map(self._list, prefixes) for key in keys]

    def read_predictions(
        self,
        usecase: str,
        start: datetime,
        end: datetime,
        *,
        kinds: dict[str, str],
        subjects: SubjectFilter | None = None,
    ) -> PredictionRead:
        """The lines logged in ``[start, end)`` (served and shadow), ``subjects`` only when given."""
        keys = self.prediction_keys(usecase, start, end)

        def read(key: str) -> tuple[PredictionColumns, int, tuple[RefusalLine, ...]]:
            parsed = prediction_columns(self._store.get_bytes(self._bucket, key), kinds)
            columns = parsed.columns
            if subjects is not None and len(columns):
                columns = columns.take(subjects.mask(columns))
            return columns, parsed.unreadable, parsed.refusals

        parts = self._map(read, keys)
        columns = concatenate((c for c, _, _ in parts), kinds).between(start, end)
        refusals = refusal_counts((line for _, _, lines in parts for line in lines), start, end)
        return PredictionRead(columns, objects=len(keys), unreadable=sum(n for _, n, _ in parts), refusals=refusals)

    # --- feedback ---------------------------------------------------------------------------------------------------

    def read_feedback(self, usecase: str, days: Iterable[date], *, contract: Contract) -> FeedbackRead:
        """Every feedback object of the ``days`` partitions, checked against ``contract``."""
        wanted = list(days)
        listings = self._map(self._list, [lake.feedback_day_prefix(usecase, day) for day in wanted])
        keys = [(day, key) for day, found in zip(wanted, listings, strict=True) for key in found]

        def read(item: tuple[date, str]) -> FeedbackLabel | None:
            day, key = item
            try:
                document = json.loads(self._store.get_bytes(self._bucket, key))
            except ValueError:
                return None
            return feedback_label(key.rsplit("/", 1)[-1].removesuffix(".json"), document, contract, day=day)

        found = self._map(read, keys)
        invalid: dict[date, int] = {}
        for (day, _), label in zip(keys, found, strict=True):
            if label is None:
                invalid[day] = invalid.get(day, 0) + 1
        return FeedbackRead(labels=[label for label in found if label is not None], invalid=invalid)

    # --- the joined set ---------------------------------------------------------------------------------------------

    def write_joined(self, usecase: str, day: date, result: JoinResult) -> None:
        """Replace one feedback day's joined labels and counts (a rerun writes the same objects)."""
        lines = sorted(result.labels, key=lambda label: (label.observed_at, label.feedback_id))
        body = "".join(json.dumps(label.document(), sort_keys=True) + "\n" for label in lines).encode()
        self._store.put_bytes(self._bucket, lake.joined_key(usecase, day), body, content_type="application/x-ndjson")
        outcome = json.dumps({"day": day.isoformat(), **result.outcome.counts()}, indent=2, sort_keys=True)
        self._store.put_bytes(
            self._bucket, lake.join_outcome_key(usecase, day), outcome.encode(), content_type="application/json"
        )

    def read_joined(self, usecase: str, days: Iterable[date]) -> tuple[list[JoinedLabel], JoinOutcome]:
        """The joined labels and summed counts of the ``days`` that have been joined (others are skipped)."""
        wanted = list(days)
        present = {
            key for keys in self._map(self._list, [lake.joined_prefix(usecase, day) for day in wanted]) for key in keys
        }

        def read(day: date) -> tuple[list[JoinedLabel], JoinOutcome]:
            if lake.joined_key(usecase, day) not in present:
                return [], JoinOutcome()
            body = self._store.get_bytes(self._bucket, lake.joined_key(usecase, day))
            labels = [JoinedLabel.from_document(json.loads(line)) for line in body.splitlines() if line.strip()]
            outcome = JoinOutcome()
            if lake.join_outcome_key(usecase, day) in present:
                counts = json.loads(self._store.get_bytes(self._bucket, lake.join_outcome_key(usecase, day)))
                outcome = JoinOutcome(**{k: int(v) for k, v in counts.items() if k in JoinOutcome().counts()})
            return labels, outcome

        parts = self._map(read, wanted)
        total = JoinOutcome()
        for _, outcome in parts:
            total = total + outcome
        return [label for labels, _ in parts for label in labels], total

    # --- plumbing ---------------------------------------------------------------------------------------------------

    def _list(self, prefix: str) -> list[str]:
        return self._store.list_keys(self._bucket, prefix)

    def _map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1 or self._workers <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self._workers, len(items))) as pool:
            return list(pool.map(function, items))
