"""Landing the joined set, and one window's data for the monitor.

:func:`land_joined_labels` joins the feedback of some days (a run's windows' days) and rewrites one object per
feedback day, ``monitoring/{usecase}/joined/date=YYYY-MM-DD/part.jsonl`` with its counts in ``outcome.json``
beside it (:func:`shared.lake.layout.joined_key`). A day is rebuilt from scratch from that day's feedback, so
running the monitor twice, or over overlapping windows, writes the same objects: nothing is joined twice.
A prediction joined on an earlier day (within the label window) is not joined again on a later one: those
days' joined objects are read first, and days are joined in order.

:func:`read_window` gives the monitor one window (:class:`~shared.monitoring.types.MonitorWindow`): the
predictions logged in it, and the labels observed in it with the predictions they answer (read from the joined
set; a prediction is kept once, for its first label).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from shared.monitoring.adapters import MonitoringLake, SubjectFilter, window_days
from shared.monitoring.join import (
    FeedbackLabel,
    JoinedLabel,
    JoinOutcome,
    PredictionIdentity,
    join_labels,
)
from shared.monitoring.types import MonitorWindow
from shared.monitoring.window import (
    NUMERIC,
    JoinedColumns,
    PredictionColumns,
    empty_predictions,
    feature_kinds,
    to_time,
)
from shared.usecase.settings import Contract, MonitoringSettings


def label_window(settings: MonitoringSettings) -> timedelta:
    return timedelta(hours=settings.label_window_hours)


def land_joined_labels(
    lake: MonitoringLake,
    *,
    usecase: str,
    contract: Contract,
    settings: MonitoringSettings,
    days: Iterable[date],
) -> dict[date, JoinOutcome]:
    """Join each of ``days``' feedback to the prediction log and rewrite that day's joined objects.

    Reads the feedback of ``days``, the joined objects of the label window's days before them (first label
    wins across days), and the prediction log from the label window before the first day to the end of the
    last, keeping only the lines of the labels' requests and entities.
    """
    wanted = sorted(set(days))
    if not wanted:
        return {}
    window = label_window(settings)
    feedback = lake.read_feedback(usecase, wanted, contract=contract)
    by_day: dict[date, list[FeedbackLabel]] = {day: [] for day in wanted}
    for label in feedback.labels:
        by_day.setdefault(label.day, []).append(label)
    first = datetime.combine(wanted[0], time(), tzinfo=UTC)
    end = datetime.combine(wanted[-1] + timedelta(days=1), time(), tzinfo=UTC)
    subjects = SubjectFilter(
        request_ids=frozenset(label.request_id for label in feedback.labels if label.request_id is not None),
        entity_ids=frozenset(label.entity_id for label in feedback.labels if label.entity_id is not None),
    )
    predictions = lake.read_predictions(
        usecase, first - window, end, kinds=feature_kinds(contract), subjects=subjects
    ).predictions
    earlier_days = [first.date() - timedelta(days=n) for n in range(math.ceil(window / timedelta(days=1)), 0, -1)]
    earlier, _ = lake.read_joined(usecase, earlier_days)
    claimed: set[PredictionIdentity] = {label.identity for label in earlier}
    outcomes: dict[date, JoinOutcome] = {}
    for day in wanted:
        result = join_labels(
            by_day[day],
            predictions,
            contract=contract,
            label_window=window,
            already_joined=claimed,
            invalid=feedback.invalid.get(day, 0),
        )
        claimed.update(label.identity for label in result.labels)
        lake.write_joined(usecase, day, result)
        outcomes[day] = result.outcome
    return outcomes


def joined_columns(labels: Sequence[JoinedLabel], kinds: dict[str, str]) -> JoinedColumns:
    if not labels:
        return JoinedColumns(
            predictions=empty_predictions(kinds),
            positive=np.empty(0, dtype=bool),
            observed_at=np.empty(0, dtype="datetime64[us]"),
            joined_by=np.empty(0, dtype=object),
            shadow_score=np.empty(0, dtype=np.float64),
        )
    features = {}
    for name, kind in kinds.items():
        values = [label.features.get(name) for label in labels]
        if kind == NUMERIC:
            features[name] = np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        else:
            features[name] = np.asarray([None if v is None else str(v) for v in values], dtype=object)
    predictions = PredictionColumns(
        request_id=np.asarray([label.request_id for label in labels], dtype=object),
        index=np.asarray([label.index for label in labels], dtype=np.int64),
        entity_id=np.asarray([label.entity_id for label in labels], dtype=object),
        variant=np.asarray([label.variant for label in labels], dtype=object),
        served=np.ones(len(labels), dtype=bool),
        degraded=np.zeros(len(labels), dtype=bool),
        model_version=np.asarray([label.model_version for label in labels], dtype=np.int64),
        score=np.asarray([label.score for label in labels], dtype=np.float64),
        threshold=np.asarray([label.threshold for label in labels], dtype=np.float64),
        time=np.asarray([to_time(label.predicted_at) for label in labels], dtype="datetime64[us]"),
        features=features,
    )
    return JoinedColumns(
        predictions=predictions,
        positive=np.asarray([label.positive for label in labels], dtype=bool),
        observed_at=np.asarray([to_time(label.observed_at) for label in labels], dtype="datetime64[us]"),
        joined_by=np.asarray([label.joined_by for label in labels], dtype=object),
        shadow_score=np.asarray(
            [np.nan if label.shadow_score is None else label.shadow_score for label in labels], dtype=np.float64
        ),
        weight=np.asarray([label.weight for label in labels], dtype=np.float64),
    )


def read_window(
    lake: MonitoringLake, *, usecase: str, contract: Contract, start: datetime, end: datetime
) -> MonitorWindow:
    """One window's data, as the monitor takes it (land the joined set first: :func:`land_joined_labels`).

    ``predictions``: every line logged in ``[start, end)``, served and shadow (``served`` tells them apart);
    ``labels``: the labels observed in ``[start, end)`` joined to their served prediction (of any time in the
    label window); ``join``: the counts of the feedback days the window touches; ``refusals``: the records the
    score function refused in ``[start, end)``, by ``field: reason``."""
    kinds = feature_kinds(contract)
    read = lake.read_predictions(usecase, start, end, kinds=kinds)
    labels, outcome = lake.read_joined(usecase, window_days(start, end))
    low, high = to_time(start), to_time(end)
    seen: set[PredictionIdentity] = set()
    kept = []
    for label in sorted(labels, key=lambda label: (label.observed_at, label.feedback_id)):
        if low <= to_time(label.observed_at) < high and label.identity not in seen:
            seen.add(label.identity)
            kept.append(label)
    return MonitorWindow(
        hours=(end - start) / timedelta(hours=1),
        start=start,
        end=end,
        predictions=read.predictions,
        labels=joined_columns(kept, kinds),
        join=outcome,
        objects=read.objects,
        unreadable_lines=read.unreadable,
        refusals=read.refusals,
    )
