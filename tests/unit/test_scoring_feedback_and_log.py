"""Feedback labels (contract-checked, idempotent keys) and the prediction log's JSON Lines objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.lake import layout as lake
from shared.scoring.exceptions import InvalidFeedbackError
from shared.scoring.feedback import FeedbackRequest, record_feedback
from shared.scoring.prediction_log_lake import PredictionLogRecord, logged_records, parse_message, write_prediction_log
from shared.usecase.settings import UseCase
from tests.scoring_fakes import InMemoryModelFiles

RECEIVED = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)


class _Writer:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        self.objects[key] = body


def test_feedback_is_written_at_deterministic_keys_so_a_repeat_is_idempotent(telco: UseCase) -> None:
    # Given two labels, one by request id and one by entity id
    request = FeedbackRequest.model_validate(
        {"labels": [{"request_id": "req-1", "label": "Yes"}, {"entity_id": 42, "label": "No"}]}
    )
    store = InMemoryModelFiles()
    # When the same feedback is submitted twice
    for _ in range(2):
        accepted = record_feedback(
            request, usecase=telco.name, contract=telco.contract, writer=store, bucket="lake", received_at=RECEIVED
        )
        assert accepted == 2
    # Then two objects exist, at the documented keys
    assert sorted(store.documents) == sorted(
        [
            lake.feedback_key("telco_churn", day=RECEIVED.date(), subject="request:req-1", label="Yes"),
            lake.feedback_key("telco_churn", day=RECEIVED.date(), subject="entity:42", label="No"),
        ]
    )
    assert all(k.startswith("feedback/telco_churn/date=2024-06-03/") for k in store.documents)


def test_labels_of_several_records_of_one_batch_request_are_kept_apart(telco: UseCase) -> None:
    # Given two labels with the same value for two customers scored in one batch request
    request = FeedbackRequest.model_validate(
        {"labels": [{"request_id": "batch-1", "entity_id": e, "label": "Yes"} for e in (7, 8)]}
    )
    store = InMemoryModelFiles()
    # When they are recorded
    record_feedback(
        request, usecase=telco.name, contract=telco.contract, writer=store, bucket="lake", received_at=RECEIVED
    )
    # Then each lands in its own object: neither overwrites the other
    assert sorted(store.documents) == sorted(
        lake.feedback_key("telco_churn", day=RECEIVED.date(), subject=f"request:batch-1/entity:{e}", label="Yes")
        for e in (7, 8)
    )


def test_a_label_the_contract_does_not_allow_is_refused_with_its_index(telco: UseCase) -> None:
    request = FeedbackRequest.model_validate(
        {"labels": [{"request_id": "a", "label": "Yes"}, {"request_id": "b", "label": "Maybe"}]}
    )
    with pytest.raises(InvalidFeedbackError) as raised:
        record_feedback(request, usecase=telco.name, contract=telco.contract, writer=InMemoryModelFiles(), bucket="l")
    assert raised.value.errors[0]["index"] == 1
    assert raised.value.errors[0]["errors"][0]["field"] == "label"


def test_a_label_needs_a_request_or_entity_id() -> None:
    with pytest.raises(ValidationError, match="request_id or an entity_id"):
        FeedbackRequest.model_validate({"labels": [{"label": "Yes"}]})


def _record(request_id: str, variant: str, index: int = 0, hour: int = 10) -> PredictionLogRecord:
    return PredictionLogRecord(
        usecase="telco_churn",
        request_id=request_id,
        index=index,
        entity_id=index,
        features={"tenure": 3},
        score=0.4,
        label="No",
        threshold=0.5,
        model_version=1,
        variant=variant,
        served=variant != "shadow",
        time=datetime(2024, 6, 3, hour, 5, tzinfo=UTC),
    )


def test_the_prediction_log_is_written_as_json_lines_per_hour_without_duplicates() -> None:
    # Given a batch with a duplicate delivery and records from two hours
    records = [
        ("m1", _record("r1", "champion")),
        ("m2", _record("r1", "champion")),
        ("m3", _record("r1", "shadow")),
        ("m4", _record("r2", "champion", hour=11)),
    ]
    writer = _Writer()
    # When written
    result = write_prediction_log(records, writer=writer, bucket="lake")
    # Then one object per hour holds each (request, variant, index) once
    assert sorted(k.split("/")[3] for k in writer.objects) == ["hour=10", "hour=11"]
    lines = [json.loads(line) for body in writer.objects.values() for line in body.decode().splitlines()]
    assert sorted((r["request_id"], r["variant"]) for r in lines) == [
        ("r1", "champion"),
        ("r1", "shadow"),
        ("r2", "champion"),
    ]
    assert all(k.startswith("predictions/telco_churn/date=2024-06-03/") for k in writer.objects)
    assert result.failed_message_ids == []
    # And writing the same batch again writes the same keys
    again = _Writer()
    write_prediction_log(records, writer=again, bucket="lake")
    assert sorted(again.objects) == sorted(writer.objects)


def test_a_log_message_is_read_back_one_line_a_prediction_and_a_torn_one_is_refused() -> None:
    # Given a block of two predictions as the score function sends it, and the older JSON Lines form
    block = {
        "usecase": "telco_churn",
        "request_id": "r9",
        "time": "2024-06-03T10:00:00+00:00",
        "variant": "challenger",
        "model_version": 2,
        "threshold": 0.3,
        "served": True,
        "degraded": False,
        "index": [0, 3],
        "entity_id": [17, 18],
        "score": [0.1, 0.9],
        "label": ["No", "Yes"],
        "features": {"tenure": [1, 40], "contract": ["Month-to-month", "Two year"]},
    }
    older = _record("r8", "champion").model_dump_json()
    # When they are parsed
    lines = parse_message(json.dumps(block)) + parse_message(older)
    # Then each prediction is one record, with its features by name
    assert [(r.request_id, r.index, r.entity_id, r.label) for r in lines[:2]] == [
        ("r9", 0, 17, "No"),
        ("r9", 3, 18, "Yes"),
    ]
    assert lines[1].features == {"tenure": 40, "contract": "Two year"}
    assert lines[2].request_id == "r8"
    # And a block whose columns do not line up is refused (its message fails alone)
    with pytest.raises(ValueError, match="one entry per prediction"):
        parse_message(json.dumps({**block, "score": [0.1]}))
    with pytest.raises(ValueError, match="one entry per prediction"):
        parse_message(json.dumps({**block, "features": {"tenure": [1], "contract": ["One year", "Two year"]}}))


def test_a_lake_object_is_read_back_as_records_leaving_out_lines_that_are_not_records() -> None:
    # Given a prediction-log object as the consumer writes it, and a line in another shape
    record = PredictionLogRecord(
        usecase="telco_churn",
        request_id="r1",
        features={"tenure": 3},
        score=0.4,
        threshold=0.5,
        model_version=2,
        variant="champion",
        served=True,
        time=datetime(2026, 1, 5, 12, tzinfo=UTC),
    )
    body = record.model_dump_json() + "\n" + json.dumps({"note": "not a record"}) + "\n\n"
    # When it is read back
    records = logged_records(body)
    # Then only the record comes back, as it was written
    assert records == [record]
    # And a line that is not JSON is an error
    with pytest.raises(json.JSONDecodeError):
        logged_records(body + "{torn")
