"""The review queue on DynamoDB (moto): conditional writes, the queue index, leases, 409s, k reviewers, capacity."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from shared.review.adapters import TABLE_SCHEMA, DynamoReviewStore
from shared.review.exceptions import ClaimLapsedError, ConcurrentReviewError, ReviewConflictError
from shared.review.service import InboundMessage, ReviewService
from shared.review.types import ItemState
from shared.usecase.settings import UseCase, load_usecase
from tests.review_fakes import RecordingFeedback, SteppingClock

ROOT = Path(__file__).resolve().parents[2]
TELCO = load_usecase(ROOT / "usecases" / "telco_churn.toml")
TABLE = "review-items"


def _usecase(**review: object) -> UseCase:
    return TELCO.model_copy(update={"review": TELCO.review.model_copy(update={"audit_rate": 0.0, **review})})


def _message(request_id: str, scores: list[float]) -> InboundMessage:
    n = len(scores)
    body = {
        "usecase": TELCO.name, "request_id": request_id, "time": "2026-12-01T08:59:00+00:00",
        "variant": "champion", "model_version": 3, "threshold": 0.45, "served": True, "index": list(range(n)),
        "entity_id": list(range(n)), "score": scores, "label": ["No"] * n,
        "features": {"contract": ["One year"] * n}, "band": [0.35, 0.55],
    }  # fmt: skip
    return InboundMessage(message_id=request_id, body=json.dumps(body))


@pytest.fixture
def store() -> Iterator[DynamoReviewStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, **TABLE_SCHEMA)
        yield DynamoReviewStore(client, TABLE)


def _service(store: DynamoReviewStore, clock: SteppingClock, **review: object) -> ReviewService:
    return ReviewService(store, RecordingFeedback(), _usecase(**review), bucket="lake", clock=clock)


def test_intake_is_idempotent_and_next_follows_the_queue_index(store: DynamoReviewStore) -> None:
    clock = SteppingClock()
    service = _service(store, clock)
    service.intake([_message("a", [0.4, 0.5])])
    clock.advance(5)
    result = service.intake([_message("a", [0.4, 0.5]), _message("b", [0.45])])
    assert (result.created, result.duplicates) == (1, 2)
    assert store.count("telco_churn", ItemState.OPEN) == 3
    queued = [(i.request_id, i.index) for i in service.queue()]
    assert sorted(queued[:2]) == [("a", 0), ("a", 1)]
    assert queued[2] == ("b", 0)


def test_claim_lease_lapse_and_the_first_decision_wins(store: DynamoReviewStore) -> None:
    clock = SteppingClock()
    service = _service(store, clock, lease_seconds=60)
    service.intake([_message("a", [0.5])])
    [item] = service.queue()
    service.claim(item.item_id, "ana")
    assert store.count("telco_churn", ItemState.CLAIMED) == 1
    with pytest.raises(ReviewConflictError):
        service.claim(item.item_id, "bo")
    clock.advance(61)
    assert service.next_item("bo") is not None  # the lapsed claim returned it
    service.claim(item.item_id, "bo")
    with pytest.raises(ClaimLapsedError):
        service.decide(item.item_id, "ana", label="No", taxonomy="correct")
    decided = service.decide(item.item_id, "bo", label="Yes", taxonomy="wrong_label", note="<b>not</b> html")
    assert decided.state is ItemState.DECIDED
    stored = store.get("telco_churn", item.item_id)
    assert stored is not None
    assert stored.decisions[0].note == "<b>not</b> html"
    assert stored.feedback_written_at is not None
    with pytest.raises(ReviewConflictError) as second:
        service.decide(item.item_id, "bo", label="No", taxonomy="correct")
    assert second.value.status == 409
    assert store.count("telco_churn", ItemState.DECIDED) == 1


def test_a_stale_write_is_refused_by_the_table(store: DynamoReviewStore) -> None:
    clock = SteppingClock()
    service = _service(store, clock)
    service.intake([_message("a", [0.5])])
    [item] = service.queue()
    service.claim(item.item_id, "ana")
    with pytest.raises(ConcurrentReviewError):
        store.replace(item.model_copy(update={"revision": item.revision + 1}), expected_revision=item.revision)


def test_k_reviewers_and_capacity_on_the_table(store: DynamoReviewStore) -> None:
    clock = SteppingClock()
    service = _service(store, clock, reviewers_per_item=2, capacity=2)
    result = service.intake([_message("a", [0.4, 0.5]), _message("b", [0.5])])
    assert result.refused == ["b"]
    assert result.back_pressure is not None
    item = service.queue()[0]
    service.claim(item.item_id, "ana")
    service.claim(item.item_id, "bo")
    with pytest.raises(ReviewConflictError):
        service.claim(item.item_id, "cy")
    service.decide(item.item_id, "ana", label="No", taxonomy="correct")
    assert service.get(item.item_id).state is ItemState.CLAIMED
    with pytest.raises(ReviewConflictError):
        service.decide(item.item_id, "ana", label="No", taxonomy="correct")
    assert service.decide(item.item_id, "bo", label="No", taxonomy="correct").state is ItemState.DECIDED
    assert service.intake([_message("b", [0.5])]).created == 1
    assert service.stats().agreement is not None
