"""Refusals from the score function to the monitor: reason kinds, the log message, the lake lines, the window's
counts, and the report's page and EMF."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.lake import layout
from shared.monitoring import telemetry
from shared.monitoring.adapters import MonitoringLake
from shared.monitoring.html import render_report
from shared.monitoring.labels import read_window
from shared.monitoring.window import prediction_columns
from shared.scoring.checks import (
    REFUSAL_MALFORMED,
    REFUSAL_MISSING,
    REFUSAL_NOT_ALLOWED,
    REFUSAL_OUT_OF_RANGE,
    REFUSAL_UNEXPECTED,
    REFUSAL_WRONG_TYPE,
    reason_kind,
)
from shared.scoring.prediction_log import PredictionLog
from shared.scoring.prediction_log_lake import (
    PredictionLogRecord,
    RefusalLogRecord,
    parse_log_message,
    parse_message,
    write_prediction_log,
)
from shared.usecase.settings import UseCase
from tests.fakes import InMemoryObjectStore
from tests.unit.test_monitoring_monitor import drifted_and_degraded

AT = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
LAKE = "lake"


class NoSender:
    def send(self, queue_url: str, bodies: Any) -> int:  # pragma: no cover - never called here
        raise AssertionError


def _log() -> PredictionLog:
    return PredictionLog(NoSender(), usecase="churn", log_queue_url="q", review_queue_url=None, review=None)


def _usecase() -> UseCase:
    columns = [
        {"name": "customer", "type": "int"},
        {"name": "churn", "type": "category", "allowed": ["No", "Yes"]},
        {"name": "tenure", "type": "float", "nullable": True},
        {"name": "contract", "type": "category", "allowed": ["Month-to-month", "One year"], "nullable": True},
    ]
    contract = {"version": "1.0.0", "entity_id": "customer", "label": "churn", "positive_class": "Yes"}
    return UseCase.model_validate({"name": "churn", "contract": {**contract, "columns": columns}})


@pytest.mark.parametrize(
    ("error_type", "kind"),
    [
        ("missing", REFUSAL_MISSING),
        ("literal_error", REFUSAL_NOT_ALLOWED),
        ("greater_than_equal", REFUSAL_OUT_OF_RANGE),
        ("less_than_equal", REFUSAL_OUT_OF_RANGE),
        ("finite_number", REFUSAL_OUT_OF_RANGE),
        ("string_too_long", REFUSAL_OUT_OF_RANGE),
        ("int_type", REFUSAL_WRONG_TYPE),
        ("float_type", REFUSAL_WRONG_TYPE),
        ("int_from_float", REFUSAL_WRONG_TYPE),
        ("extra_forbidden", REFUSAL_UNEXPECTED),
        ("datetime_parsing", REFUSAL_MALFORMED),
        ("something_new", REFUSAL_MALFORMED),
    ],
)
def test_pydantic_error_types_map_to_a_few_fixed_reason_kinds(error_type: str, kind: str) -> None:
    assert reason_kind(error_type) == kind


def test_a_refusal_message_round_trips_and_is_never_read_as_predictions() -> None:
    # Given a request's refusals by (field, reason kind)
    refused = {("tenure", REFUSAL_OUT_OF_RANGE): 3, ("contract", REFUSAL_NOT_ALLOWED): 1}
    # When the log builds its messages (no scored block: a 422)
    logged, review = _log().messages("req-1", [], AT, refused)
    # Then one message carries them, read back as refusal lines only
    assert review == []
    assert len(logged) == 1
    assert json.loads(logged[0])["kind"] == layout.REFUSAL_KIND
    lines = parse_log_message(logged[0])
    assert {(line.field, line.reason, line.count) for line in lines if isinstance(line, RefusalLogRecord)} == {
        ("tenure", REFUSAL_OUT_OF_RANGE, 3),
        ("contract", REFUSAL_NOT_ALLOWED, 1),
    }
    assert all(line.request_id == "req-1" and line.time == AT for line in lines)
    assert parse_message(logged[0]) == []
    # And nothing is built when nothing was refused
    assert _log().messages("req-2", [], AT, {}) == ([], [])
    # And a message of a kind this version does not know fails alone
    with pytest.raises(ValueError, match="unknown kind"):
        parse_log_message(json.dumps({"kind": "audit", "request_id": "x"}))
    with pytest.raises(ValidationError):
        parse_log_message(json.dumps({"kind": "refusal", "request_id": "x"}))


def _prediction(request_id: str, index: int, at: datetime = AT) -> PredictionLogRecord:
    return PredictionLogRecord(
        usecase="churn",
        request_id=request_id,
        index=index,
        entity_id=index,
        features={"tenure": 3.0, "contract": "One year"},
        score=0.4,
        threshold=0.5,
        model_version=7,
        variant="champion",
        served=True,
        time=at,
    )


def _refusal(request_id: str, field: str, reason: str, count: int, at: datetime = AT) -> RefusalLogRecord:
    return RefusalLogRecord(usecase="churn", request_id=request_id, time=at, field=field, reason=reason, count=count)


def test_the_lake_writer_puts_refusals_in_their_own_objects_once_per_identity() -> None:
    # Given a batch with predictions and refusals, one refusal message delivered twice
    store = InMemoryObjectStore()
    lines: list[tuple[str, Any]] = [
        ("m1", _prediction("req-1", 0)),
        ("m2", _refusal("req-1", "tenure", REFUSAL_OUT_OF_RANGE, 2)),
        ("m3", _refusal("req-1", "tenure", REFUSAL_OUT_OF_RANGE, 2)),
        ("m2", _refusal("req-1", "contract", REFUSAL_NOT_ALLOWED, 1)),
    ]
    # When it is written, twice (a redelivered batch)
    first = write_prediction_log(lines, writer=store, bucket=LAKE)
    again = write_prediction_log(lines, writer=store, bucket=LAKE)
    # Then the refusals are one object of refusal lines beside the predictions' object, rewritten in place
    assert first.written.keys() == again.written.keys()
    hour = layout.prediction_log_hour_prefix("churn", AT)
    keys = store.keys(LAKE, hour)
    refusal_keys = [k for k in keys if k.removeprefix(hour).startswith(layout.REFUSAL_LOG_PREFIX)]
    assert len(keys) == 2
    assert len(refusal_keys) == 1
    written = [json.loads(line) for line in store.body(LAKE, refusal_keys[0]).decode().splitlines()]
    assert [(w["kind"], w["field"], w["reason"], w["count"]) for w in written] == [
        ("refusal", "tenure", REFUSAL_OUT_OF_RANGE, 2),
        ("refusal", "contract", REFUSAL_NOT_ALLOWED, 1),
    ]
    assert set(written[0]) == {"kind", "usecase", "request_id", "time", "field", "reason", "count"}


def test_the_window_counts_refusals_by_reason_once_and_keeps_predictions_and_older_lines_apart() -> None:
    # Given an hour with predictions (an older line among them), a refusal object, the same refusals again in
    # another object (a redelivery in another batch), a refusal outside the window, and a line of unknown kind
    store = InMemoryObjectStore()
    write_prediction_log([("m1", _prediction("req-1", 0)), ("m1", _prediction("req-1", 1))], writer=store, bucket=LAKE)
    refusals = [
        ("m2", _refusal("req-2", "tenure", REFUSAL_OUT_OF_RANGE, 2)),
        ("m2", _refusal("req-2", "contract", REFUSAL_NOT_ALLOWED, 1)),
        ("m3", _refusal("req-3", "tenure", REFUSAL_OUT_OF_RANGE, 1)),
    ]
    write_prediction_log(refusals, writer=store, bucket=LAKE)
    write_prediction_log(refusals[:1], writer=store, bucket=LAKE)
    write_prediction_log([("m4", _refusal("req-4", "tenure", REFUSAL_MISSING, 5, AT - timedelta(hours=3)))],
                         writer=store, bucket=LAKE)  # fmt: skip
    older = {k: v for k, v in json.loads(_prediction("req-5", 0).model_dump_json()).items() if k != "index"}
    unknown = {"kind": "audit", "request_id": "req-6", "time": AT.isoformat()}
    hour = layout.prediction_log_hour_prefix("churn", AT)
    store.put_bytes(LAKE, f"{hour}hand.jsonl", (json.dumps(older) + "\n" + json.dumps(unknown) + "\n").encode(),
                    content_type="application/x-ndjson")  # fmt: skip
    # When the monitor reads the window
    window = read_window(
        MonitoringLake(store, LAKE, workers=1),
        usecase="churn",
        contract=_usecase().contract,
        start=AT - timedelta(hours=1),
        end=AT + timedelta(minutes=30),
    )
    # Then refusals are counted by "field: reason", each (request, field, reason) once, in the window only
    assert dict(window.refusals) == {"contract: not allowed": 1, "tenure: out of range": 3}
    # And predictions are the predictions (the older line among them); the unknown kind is unreadable
    assert len(window.predictions) == 3
    assert window.unreadable_lines == 1


def test_a_refusal_object_parsed_alone_holds_no_prediction() -> None:
    body = (_refusal("r", "tenure", REFUSAL_WRONG_TYPE, 4).model_dump_json() + "\n").encode()
    parsed = prediction_columns(body, {"tenure": "numeric"})
    assert len(parsed.columns) == 0
    assert parsed.unreadable == 0
    assert [(r.key, r.count) for r in parsed.refusals] == [("tenure: wrong type", 4)]


def test_the_report_page_and_emf_carry_the_refusals_of_the_longest_window() -> None:
    # Given a report whose windows saw refusals
    report = drifted_and_degraded()
    longest = max(w.hours for w in report.windows)
    windows = [
        w.model_copy(
            update={"refusals": {"tenure: out of range": 4 if w.hours == longest else 1, "contract: missing": 2}}
        )
        for w in report.windows
    ]
    refused = report.model_copy(update={"windows": windows})
    # Then the page lists them by reason per window
    page = render_report(refused)
    assert "tenure: out of range: 4" in page
    assert "contract: missing: 2" in page
    # And the EMF carries the longest window's total per use case
    documents = [json.loads(line) for line in telemetry.documents(refused)]
    (counted,) = [d for d in documents if telemetry.REFUSALS in d]
    assert counted[telemetry.REFUSALS] == 6.0
    assert counted["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [list(telemetry.USECASE_DIMENSIONS)]
    (none,) = [json.loads(d) for d in telemetry.documents(report) if telemetry.REFUSALS in d]
    assert none[telemetry.REFUSALS] == 0.0
