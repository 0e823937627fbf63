"""The review service over in-memory fakes: intake, claim with a lease, decide, k reviewers, capacity, feedback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.review.exceptions import (
    ClaimLapsedError,
    InvalidDecisionError,
    NotClaimedError,
    ReviewConflictError,
)
from shared.review.routing import Reason, audit_draw
from shared.review.service import InboundMessage, ReviewService
from shared.review.types import ItemState
from shared.scoring.feedback import INCLUSION_PROBABILITY, PROVENANCE
from shared.usecase.settings import UseCase, load_usecase
from tests.review_fakes import InMemoryReviewStore, RecordingFeedback, SteppingClock

ROOT = Path(__file__).resolve().parents[2]
TELCO = load_usecase(ROOT / "usecases" / "telco_churn.toml")


def _usecase(**review: object) -> UseCase:
    return TELCO.model_copy(update={"review": TELCO.review.model_copy(update=review)})


def _message(request_id: str, scores: list[float], *, message_id: str = "m1", served: bool = True) -> InboundMessage:
    n = len(scores)
    body = {
        "usecase": TELCO.name,
        "request_id": request_id,
        "time": "2026-12-01T08:59:00+00:00",
        "variant": "champion",
        "model_version": 3,
        "threshold": 0.45,
        "served": served,
        "index": list(range(n)),
        "entity_id": [100 + i for i in range(n)],
        "score": scores,
        "label": ["Yes" if s >= 0.45 else "No" for s in scores],
        "features": {"contract": ["Month-to-month"] * n, "tenure": [3] * n, "senior_citizen": [0] * n},
        "band": [0.35, 0.55],
    }
    return InboundMessage(message_id=message_id, body=json.dumps(body))


class Setup:
    def __init__(self, usecase: UseCase = TELCO) -> None:
        self.store = InMemoryReviewStore()
        self.feedback = RecordingFeedback()
        self.clock = SteppingClock()
        self.service = ReviewService(self.store, self.feedback, usecase, bucket="lake", clock=self.clock)


def _one_item(setup: Setup, score: float = 0.5) -> str:
    setup.service.intake([_message("req-1", [score])])
    [item] = setup.store.stored.values()
    return item.item_id


def test_intake_makes_one_item_per_routed_record_and_the_same_message_twice_makes_none_more() -> None:
    # Given a message of three scores, two inside the band [0.35, 0.55]
    setup = Setup(_usecase(audit_rate=0.0))
    message = _message("req-1", [0.4, 0.9, 0.5])
    # When it is taken in twice
    first = setup.service.intake([message])
    second = setup.service.intake([message])
    # Then two items exist, with their reasons and inclusion probability 1
    assert (first.created, first.not_routed) == (2, 1)
    assert (second.created, second.duplicates) == (0, 2)
    items = sorted(setup.store.stored.values(), key=lambda i: i.index)
    assert [i.index for i in items] == [0, 2]
    assert all(i.reasons == (Reason.IN_BAND,) and i.inclusion_probability == 1.0 for i in items)
    assert items[0].segments == {"contract": "Month-to-month", "senior_citizen": "0"}


def test_past_capacity_the_message_stays_in_sqs_and_nothing_is_lost() -> None:
    # Given a queue of capacity 2 and two messages of two in-band records each
    setup = Setup(_usecase(capacity=2, audit_rate=0.0))
    messages = [_message("a", [0.4, 0.5], message_id="m-a"), _message("b", [0.4, 0.5], message_id="m-b")]
    # When both are taken in
    result = setup.service.intake(messages)
    # Then the second is a batch item failure, with a typed back-pressure error
    assert result.created == 2
    assert result.batch_item_failures() == {"batchItemFailures": [{"itemIdentifier": "m-b"}]}
    assert result.back_pressure is not None
    assert result.back_pressure.status == 429
    # And once the first two are decided, the redelivered message is taken in whole
    for item in list(setup.store.stored.values()):
        setup.service.claim(item.item_id, "ana")
        setup.service.decide(item.item_id, "ana", label="No", taxonomy="correct")
    again = setup.service.intake([messages[1]])
    assert again.created == 2
    assert not again.refused
    assert len(setup.store.stored) == 4


def test_an_unreadable_message_is_refused_not_dropped() -> None:
    setup = Setup()
    result = setup.service.intake([InboundMessage("bad", "{not json")])
    assert result.refused == ["bad"]


def test_a_claim_leases_the_item_and_a_lapsed_lease_returns_it() -> None:
    # Given an item claimed by ana (lease 900 s)
    setup = Setup()
    item_id = _one_item(setup)
    claimed = setup.service.claim(item_id, "ana")
    assert claimed.state is ItemState.CLAIMED
    # Then bo cannot claim it, nor ana twice
    with pytest.raises(ReviewConflictError) as taken:
        setup.service.claim(item_id, "bo")
    assert taken.value.status == 409
    with pytest.raises(ReviewConflictError, match="already holds"):
        setup.service.claim(item_id, "ana")
    assert setup.service.next_item("bo") is None
    # When the lease lapses, Then the item is back in the queue and bo's claim succeeds
    setup.clock.advance(901)
    assert setup.service.next_item("bo") is not None
    setup.service.claim(item_id, "bo")
    # And ana's decision on her lapsed claim is refused (410)
    with pytest.raises(ClaimLapsedError) as lapsed:
        setup.service.decide(item_id, "ana", label="Yes", taxonomy="correct")
    assert lapsed.value.status == 410


def test_the_first_decision_wins_and_a_second_gets_409() -> None:
    setup = Setup()
    item_id = _one_item(setup)
    setup.service.claim(item_id, "ana")
    decided = setup.service.decide(item_id, "ana", label="Yes", taxonomy="wrong_label", note="<script>x</script>")
    assert decided.state is ItemState.DECIDED
    assert decided.label == "Yes"
    assert decided.decisions[0].note == "<script>x</script>"  # stored as text, never interpreted
    with pytest.raises(ReviewConflictError) as second:
        setup.service.decide(item_id, "ana", label="No", taxonomy="correct")
    assert second.value.status == 409
    with pytest.raises(ReviewConflictError):
        setup.service.claim(item_id, "bo")


def test_bad_decisions_are_refused_by_kind() -> None:
    setup = Setup()
    item_id = _one_item(setup)
    # A decision without a claim (e.g. on another reviewer's claim): 403
    setup.service.claim(item_id, "ana")
    with pytest.raises(NotClaimedError) as foreign:
        setup.service.decide(item_id, "bo", label="Yes", taxonomy="correct")
    assert foreign.value.status == 403
    # A taxonomy value not declared, or a label the contract does not allow: 400
    with pytest.raises(InvalidDecisionError, match="not declared") as undeclared:
        setup.service.decide(item_id, "ana", label="Yes", taxonomy="typo")
    assert undeclared.value.status == 400
    with pytest.raises(InvalidDecisionError, match="label"):
        setup.service.decide(item_id, "ana", label="Maybe", taxonomy="correct")
    assert setup.store.stored[("telco_churn", item_id)].state is ItemState.CLAIMED


def test_k_reviewers_each_decide_once_and_the_kth_decision_writes_the_label() -> None:
    # Given items needing two reviewers
    setup = Setup(_usecase(reviewers_per_item=2))
    item_id = _one_item(setup)
    setup.service.claim(item_id, "ana")
    setup.service.claim(item_id, "bo")
    with pytest.raises(ReviewConflictError, match="other reviewers"):
        setup.service.claim(item_id, "cy")
    # When ana decides, Then the item waits for bo and no label is written
    after_one = setup.service.decide(item_id, "ana", label="Yes", taxonomy="wrong_label")
    assert after_one.state is ItemState.CLAIMED
    assert not setup.feedback.written
    with pytest.raises(ReviewConflictError, match="already decided"):
        setup.service.decide(item_id, "ana", label="Yes", taxonomy="wrong_label")
    # When bo decides, Then the label lands in the lake's feedback with its provenance
    setup.clock.advance(60)
    decided = setup.service.decide(item_id, "bo", label="Yes", taxonomy="ambiguous_case")
    assert decided.state is ItemState.DECIDED
    assert decided.feedback_written_at is not None
    [((bucket, key), document)] = setup.feedback.written.items()
    assert bucket == "lake"
    assert key.startswith("feedback/telco_churn/date=2026-12-01/")
    assert (document["request_id"], document["entity_id"], document["label"]) == ("req-1", 100, "Yes")
    provenance = document[PROVENANCE]
    assert provenance["reviewers"] == ["ana", "bo"]
    assert provenance["reasons"] == ["in_band"]
    assert provenance[INCLUSION_PROBABILITY] == 1.0
    assert provenance["taxonomy"] == "wrong_label"
    assert provenance["decided_at"] == "2026-12-01T09:01:00+00:00"


def test_audited_items_carry_the_audit_rate_as_inclusion_probability() -> None:
    # Given a score outside the band on a request the audit picks
    setup = Setup(_usecase(audit_rate=0.05))
    request = next(f"r{n}" for n in range(1000) if audit_draw(f"r{n}", 0) < 0.05)
    setup.service.intake([_message(request, [0.95])])
    [item] = setup.store.stored.values()
    assert item.reasons == (Reason.AUDIT,)
    assert item.inclusion_probability == pytest.approx(0.05)
    assert item.weight == pytest.approx(20.0)


def test_shadow_blocks_are_not_reviewed_and_given_routing_is_kept() -> None:
    setup = Setup()
    assert setup.service.intake([_message("s", [0.5], served=False)]).created == 0
    message = json.loads(_message("g", [0.9]).body)
    message["routing"] = [{"reasons": ["disagreement"], "inclusion_probability": 1.0, "challenger_score": 0.5}]
    setup.service.intake([InboundMessage("g", json.dumps(message))])
    [item] = setup.store.stored.values()
    assert item.reasons == (Reason.DISAGREEMENT,)
    assert item.challenger_score == 0.5
    assert item.priority == 1


def test_items_past_the_sla_are_marked_expired_counted_and_still_claimable() -> None:
    setup = Setup(_usecase(sla_seconds=3600))
    item_id = _one_item(setup)
    setup.clock.advance(3601)
    assert setup.service.mark_overdue() == 1
    assert setup.service.mark_overdue() == 0
    stats = setup.service.stats()
    assert stats.overdue == 1
    assert stats.depth["expired"] == 1
    assert stats.oldest_age_seconds == pytest.approx(3601)
    setup.service.claim(item_id, "ana")
    assert setup.service.decide(item_id, "ana", label="No", taxonomy="correct").state is ItemState.DECIDED


def test_next_item_serves_priority_then_age() -> None:
    setup = Setup(_usecase(audit_rate=0.0))
    setup.service.intake([_message("old-band", [0.5])])
    setup.clock.advance(10)
    message = json.loads(_message("new-disagreement", [0.9]).body)
    message["routing"] = [{"reasons": ["disagreement"], "inclusion_probability": 1.0}]
    setup.service.intake([InboundMessage("x", json.dumps(message))])
    setup.clock.advance(10)
    setup.service.intake([_message("newer-band", [0.4])])
    assert [i.request_id for i in setup.service.queue()] == ["new-disagreement", "old-band", "newer-band"]
