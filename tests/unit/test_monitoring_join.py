"""Labels joined to predictions: every rule and count, idempotent landing, and reading only a window's partitions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from shared.lake import layout as lake
from shared.monitoring.adapters import MonitoringLake
from shared.monitoring.join import FeedbackLabel, JoinOutcome, feedback_label, join_labels
from shared.monitoring.labels import land_joined_labels, read_window
from shared.monitoring.window import feature_kinds, prediction_columns
from shared.usecase.settings import MonitoringSettings, UseCase
from tests.fakes import InMemoryObjectStore

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
WINDOW = timedelta(hours=720)
BUCKET = "lake"


class _Store(InMemoryObjectStore):
    """The in-memory store, with ``put_bytes`` and a record of the prefixes listed."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[str] = []

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        self._write(bucket, key, body)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        self.listed.append(prefix)
        return super().list_keys(bucket, prefix)


def line(
    request_id: str,
    *,
    index: int = 0,
    entity: Any = 1,
    at: datetime = T0,
    variant: str = "champion",
    served: bool = True,
    score: float = 0.7,
    version: int = 3,
    features: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "usecase": "telco_churn",
        "request_id": request_id,
        "index": index,
        "entity_id": entity,
        "features": features if features is not None else {"tenure": 12, "contract": "Month-to-month"},
        "score": score,
        "label": None,
        "threshold": 0.5,
        "model_version": version,
        "variant": variant,
        "served": served,
        "degraded": False,
        "time": at.isoformat(),
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def label(
    *,
    request_id: str | None = None,
    entity: Any = None,
    value: str = "Yes",
    observed: datetime | None = None,
    received: datetime | None = None,
    feedback_id: str = "f1",
) -> FeedbackLabel:
    received = received or T0 + timedelta(days=1)
    return FeedbackLabel(
        feedback_id=feedback_id,
        request_id=request_id,
        entity_id=None if entity is None else str(entity),
        label=value,
        observed_at=observed,
        received_at=received,
        day=(observed or received).date(),
    )


def columns(telco: UseCase, lines: list[dict[str, Any]]) -> Any:
    return prediction_columns(jsonl(lines), feature_kinds(telco.contract)).columns


def test_a_request_label_joins_its_single_served_prediction_with_the_shadow_score(telco: UseCase) -> None:
    # Given a one-record request scored by the champion and, in shadow, by the challenger
    predictions = columns(telco, [line("r1"), line("r1", variant="shadow", served=False, score=0.2, version=4)])
    # When a label names the request
    result = join_labels(
        [label(request_id="r1", value="Yes")], predictions, contract=telco.contract, label_window=WINDOW
    )
    # Then it joins the served line, with the shadow score beside it
    assert result.outcome == JoinOutcome(joined_by_request=1)
    (joined,) = result.labels
    assert (joined.variant, joined.model_version, joined.score, joined.positive) == ("champion", 3, 0.7, True)
    assert (joined.shadow_score, joined.shadow_model_version, joined.joined_by) == (0.2, 4, "request_id")
    assert joined.features == {
        **{c.name: None for c in telco.contract.features},
        "tenure": 12.0,
        "contract": "Month-to-month",
    }


def test_a_request_label_for_several_records_needs_the_entity(telco: UseCase) -> None:
    # Given a request of two records
    predictions = columns(telco, [line("r1", index=0, entity=1), line("r1", index=1, entity=2, score=0.1)])
    labels = [
        label(request_id="r1", feedback_id="a"),
        label(request_id="r1", entity=2, value="No", feedback_id="b"),
    ]
    # When one label names the request alone and another the request and an entity
    result = join_labels(labels, predictions, contract=telco.contract, label_window=WINDOW)
    # Then the first is ambiguous, the second joins entity 2's line
    assert result.outcome == JoinOutcome(joined_by_request=1, ambiguous=1)
    assert [(j.index, j.score, j.positive) for j in result.labels] == [(1, 0.1, False)]


def test_an_entity_label_joins_the_latest_served_prediction_before_it(telco: UseCase) -> None:
    # Given three predictions of entity 7: two before the label, one after, and a shadow line
    predictions = columns(
        telco,
        [
            line("old", entity=7, at=T0 - timedelta(hours=5), score=0.1),
            line("new", entity=7, at=T0 - timedelta(hours=1), score=0.9),
            line("new", entity=7, at=T0 - timedelta(hours=1), variant="shadow", served=False, score=0.4),
            line("after", entity=7, at=T0 + timedelta(hours=1), score=0.5),
        ],
    )
    # When a label for entity 7 is observed at T0
    result = join_labels([label(entity=7, observed=T0)], predictions, contract=telco.contract, label_window=WINDOW)
    # Then it answers the latest served prediction strictly before T0
    assert result.outcome == JoinOutcome(joined_by_entity=1)
    assert [(j.request_id, j.score, j.shadow_score) for j in result.labels] == [("new", 0.9, 0.4)]


def test_late_unknown_and_early_labels_are_counted_not_joined(telco: UseCase) -> None:
    # Given entity 1 scored 40 days before its label, request r2 scored after its label
    predictions = columns(
        telco,
        [line("r1", entity=1, at=T0 - timedelta(days=40)), line("r2", entity=2, at=T0 + timedelta(hours=2))],
    )
    labels = [
        label(entity=1, observed=T0, feedback_id="late"),
        label(request_id="nobody", feedback_id="unknown"),
        label(entity=99, observed=T0, feedback_id="unknown-entity"),
        label(request_id="r2", observed=T0, feedback_id="early"),
        label(entity=2, observed=T0, feedback_id="early-entity"),
    ]
    # When they are joined with a 30-day label window
    result = join_labels(labels, predictions, contract=telco.contract, label_window=WINDOW, invalid=2)
    # Then each lands in its own count and nothing is joined
    assert result.labels == []
    assert result.outcome == JoinOutcome(late=1, no_prediction=2, before_prediction=2, invalid=2)
    assert result.outcome.total == 7


def test_repeated_labels_the_first_wins_and_the_others_are_counted(telco: UseCase) -> None:
    # Given one prediction, labelled three times (by request and by entity), and one already joined earlier
    predictions = columns(telco, [line("r1", entity=5), line("r9", entity=9)])
    labels = [
        label(request_id="r1", value="No", observed=T0 + timedelta(hours=3), feedback_id="second"),
        label(request_id="r1", value="Yes", observed=T0 + timedelta(hours=1), feedback_id="first"),
        label(entity=5, value="Yes", observed=T0 + timedelta(hours=5), feedback_id="third"),
        label(request_id="r9", observed=T0 + timedelta(hours=1), feedback_id="joined-yesterday"),
    ]
    # When they are joined
    result = join_labels(labels, predictions, contract=telco.contract, label_window=WINDOW, already_joined={("r9", 0)})
    # Then the earliest label wins; the others are repeated
    assert [j.feedback_id for j in result.labels] == ["first"]
    assert result.outcome == JoinOutcome(joined_by_request=1, repeated=3)


def test_a_feedback_object_the_contract_does_not_allow_is_invalid(telco: UseCase) -> None:
    # Given hand-written feedback objects: a label value outside the contract, no subject, no received time
    received = T0.isoformat()
    documents = [
        {"request_id": "r1", "label": "Maybe", "received_at": received},
        {"label": "Yes", "received_at": received},
        {"request_id": "r1", "label": "Yes"},
        ["not", "an", "object"],
    ]
    # Then none is a label; a good one is
    assert [feedback_label("f", d, telco.contract) for d in documents] == [None] * 4
    good = feedback_label("f", {"entity_id": 42, "label": "No", "received_at": received}, telco.contract)
    assert good is not None
    assert (good.entity_id, good.day) == ("42", T0.date())


def test_older_lines_and_torn_lines_are_read_and_counted(telco: UseCase) -> None:
    # Given an object mixing an old line (no index, no degraded, integer entity among strings), a block and junk
    old = {k: v for k, v in line("r1", entity=5).items() if k not in ("index", "degraded")}
    block = {
        "usecase": "telco_churn", "request_id": "r2", "time": T0.isoformat(), "variant": "champion",
        "model_version": 3, "threshold": 0.5, "served": True, "index": [0, 1], "entity_id": ["8", "9"],
        "score": [0.1, 0.2], "label": [None, None], "features": {"tenure": [1, None], "contract": ["One year", None]},
    }  # fmt: skip
    body = jsonl([old, line("r3", entity="6"), block]) + b"{torn\n" + jsonl([{"not": "a prediction"}])
    # When it is read
    parsed = prediction_columns(body, feature_kinds(telco.contract))
    # Then every prediction is read and the two bad lines are counted
    cols = parsed.columns
    assert parsed.unreadable == 2
    assert cols.request_id.tolist() == ["r1", "r3", "r2", "r2"]
    assert cols.entity_id.tolist() == ["5", "6", "8", "9"]
    assert cols.index.tolist() == [0, 0, 0, 1]
    assert np.isnan(cols.features["tenure"][3])
    assert cols.features["contract"].tolist()[2:] == ["One year", None]


def test_a_feature_always_null_is_a_column_of_nulls(telco: UseCase) -> None:
    # Given lines whose tenure is always null (and a category never given)
    lines = [line(f"r{i}", features={"tenure": None}) for i in range(3)]
    # When they are read (the fast path)
    parsed = prediction_columns(jsonl(lines), feature_kinds(telco.contract))
    # Then the numeric column is NaN and the categorical one None, one per line
    assert parsed.unreadable == 0
    assert np.isnan(parsed.columns.features["tenure"]).all()
    assert parsed.columns.features["contract"].tolist() == [None] * 3
    assert parsed.columns.features["tenure"].dtype == np.float64


def _put_feedback(store: _Store, document: dict[str, Any], *, day: date, name: str) -> None:
    store.put(BUCKET, f"{lake.feedback_day_prefix('telco_churn', day)}{name}.json", json.dumps(document).encode())


def _lake_with_traffic(store: _Store) -> None:
    for hour in range(6):
        at = T0 + timedelta(hours=hour)
        lines = [line(f"h{hour}-{i}", entity=100 * hour + i, at=at + timedelta(minutes=i)) for i in range(3)]
        store.put(BUCKET, lake.prediction_log_key("telco_churn", at=at, object_id=f"o{hour}"), jsonl(lines))


def test_landing_the_join_twice_writes_the_same_objects_and_counts(telco: UseCase) -> None:
    # Given six hours of traffic and a day of feedback: two good labels, a repeat, an unknown request, a bad value
    store = _Store()
    _lake_with_traffic(store)
    day = (T0 + timedelta(hours=8)).date()
    seen = (T0 + timedelta(hours=8)).isoformat()
    for name, document in {
        "a": {"request_id": "h0-0", "label": "Yes", "received_at": seen},
        "b": {"entity_id": 201, "label": "No", "observed_at": seen, "received_at": seen},
        "c": {"request_id": "h0-0", "label": "No", "received_at": (T0 + timedelta(hours=9)).isoformat()},
        "d": {"request_id": "unknown", "label": "Yes", "received_at": seen},
        "e": {"request_id": "h1-0", "label": "Maybe", "received_at": seen},
    }.items():
        _put_feedback(store, document, day=day, name=name)
    monitor = MonitoringLake(store, BUCKET)
    settings = MonitoringSettings()
    # When the join is landed twice
    first = land_joined_labels(monitor, usecase="telco_churn", contract=telco.contract, settings=settings, days=[day])
    snapshot = {k: store.body(BUCKET, k) for k in store.keys(BUCKET, lake.monitoring_prefix("telco_churn"))}
    second = land_joined_labels(monitor, usecase="telco_churn", contract=telco.contract, settings=settings, days=[day])
    # Then both runs count the same and leave the same two objects, byte for byte
    expected = JoinOutcome(joined_by_request=1, joined_by_entity=1, repeated=1, no_prediction=1, invalid=1)
    assert first == second == {day: expected}
    assert sorted(snapshot) == [lake.join_outcome_key("telco_churn", day), lake.joined_key("telco_churn", day)]
    assert {k: store.body(BUCKET, k) for k in snapshot} == snapshot
    # And the window's reader sees each joined prediction once
    data = read_window(monitor, usecase="telco_churn", contract=telco.contract, start=T0, end=T0 + timedelta(days=1))
    assert sorted(data.labels.predictions.request_id.tolist()) == ["h0-0", "h2-1"]
    assert data.join == expected


def test_a_prediction_joined_on_an_earlier_day_is_not_joined_again(telco: UseCase) -> None:
    # Given a label for h0-0 on one day, and another for the same request the next day
    store = _Store()
    _lake_with_traffic(store)
    day1, day2 = T0.date() + timedelta(days=1), T0.date() + timedelta(days=2)
    for day, value in ((day1, "Yes"), (day2, "No")):
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC).isoformat()
        _put_feedback(store, {"request_id": "h0-0", "label": value, "received_at": at}, day=day, name=value)
    monitor = MonitoringLake(store, BUCKET)
    # When each day is landed by its own run, in order
    outcomes = [
        land_joined_labels(
            monitor, usecase="telco_churn", contract=telco.contract, settings=MonitoringSettings(), days=[day]
        )[day]
        for day in (day1, day2)
    ]
    # Then the second day counts a repeat
    assert outcomes == [JoinOutcome(joined_by_request=1), JoinOutcome(repeated=1)]


def test_a_window_reads_only_its_hours_partitions(telco: UseCase) -> None:
    # Given six hours of traffic
    store = _Store()
    _lake_with_traffic(store)
    # When the window 12:30-14:30 is read
    start, end = T0 + timedelta(hours=2, minutes=30), T0 + timedelta(hours=4, minutes=30)
    data = read_window(MonitoringLake(store, BUCKET), usecase="telco_churn", contract=telco.contract, start=start,
                       end=end)  # fmt: skip
    # Then only the hours 12, 13 and 14 were listed, and only the lines inside the window kept
    hours = [p for p in store.listed if p.startswith(lake.prediction_log_prefix("telco_churn"))]
    assert hours == [lake.prediction_log_hour_prefix("telco_churn", T0 + timedelta(hours=h)) for h in (2, 3, 4)]
    assert data.objects == 3
    assert sorted(data.predictions.request_id.tolist()) == ["h3-0", "h3-1", "h3-2", "h4-0", "h4-1", "h4-2"]
    assert data.predictions.time.dtype == np.dtype("datetime64[us]")


def test_a_window_with_no_traffic_is_empty_not_an_error(telco: UseCase) -> None:
    # Given an empty lake
    monitor = MonitoringLake(_Store(), BUCKET)
    # When a window is read
    data = read_window(monitor, usecase="telco_churn", contract=telco.contract, start=T0, end=T0 + timedelta(hours=6))
    # Then it is empty, with every feature column present
    assert data.empty
    assert len(data.labels) == 0
    assert data.join == JoinOutcome()
    assert set(data.predictions.features) == {c.name for c in telco.contract.features}


@pytest.mark.parametrize("hours", [1, 6, 24])
def test_window_hours_cover_the_window(hours: int) -> None:
    from shared.monitoring.adapters import window_hours

    assert len(window_hours(T0, T0 + timedelta(hours=hours))) == hours
    assert len(window_hours(T0 + timedelta(minutes=1), T0 + timedelta(hours=hours))) == hours
