"""Routing for review: the reasons that apply, the inclusion probability, the audit draw, priority; the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.review.routing import LOWEST_PRIORITY, Reason, audit_draw, inclusion_probability, route, route_block
from shared.usecase.exceptions import UseCaseError
from shared.usecase.settings import ReviewSettings, UseCase, load_usecase

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ReviewSettings(band=(0.4, 0.6), audit_rate=0.05, disagreement_threshold=0.2)


def _unaudited_request(index: int = 0) -> str:
    return next(f"r{n}" for n in range(1000) if audit_draw(f"r{n}", index) >= SETTINGS.audit_rate)


def test_a_score_in_the_band_is_routed_with_probability_one() -> None:
    # Given a score inside [0.4, 0.6], When routed
    routing = route(settings=SETTINGS, request_id=_unaudited_request(), index=0, score=0.5)
    # Then its reason is the band and it was certain to be picked
    assert routing.reasons == (Reason.IN_BAND,)
    assert routing.inclusion_probability == 1.0
    assert routing.priority == 2


def test_a_score_no_rule_catches_has_the_audit_rate_as_its_probability() -> None:
    routing = route(settings=SETTINGS, request_id=_unaudited_request(), index=0, score=0.9)
    assert not routing.routed
    assert routing.inclusion_probability == pytest.approx(0.05)
    assert routing.priority == LOWEST_PRIORITY


def test_disagreement_and_segment_alerts_route_with_their_reasons_and_priority() -> None:
    # Given a challenger 0.3 away and a segment under alert
    routing = route(
        settings=SETTINGS,
        request_id=_unaudited_request(),
        index=0,
        score=0.9,
        challenger_score=0.6,
        segments={"contract": "Month-to-month"},
        alerted_segments={"contract=Month-to-month"},
    )
    # Then both reasons apply, P = 1, and the segment alert comes first
    assert routing.reasons == (Reason.SEGMENT_ALERT, Reason.DISAGREEMENT)
    assert routing.inclusion_probability == 1.0
    assert routing.priority == 0
    # And a gap under the threshold, or a segment not alerted, routes nothing
    quiet = route(
        settings=SETTINGS,
        request_id=_unaudited_request(),
        index=0,
        score=0.9,
        challenger_score=0.8,
        segments={"contract": "Two year"},
        alerted_segments={"contract=Month-to-month"},
    )
    assert not quiet.routed


def test_the_audit_draw_is_deterministic_and_uniform() -> None:
    # Given 20,000 records, When each is drawn twice
    draws = [audit_draw(f"req-{n}", n % 7) for n in range(20_000)]
    # Then a retry draws the same, and about 5% fall under a 5% rate
    assert draws == [audit_draw(f"req-{n}", n % 7) for n in range(20_000)]
    share = sum(d < 0.05 for d in draws) / len(draws)
    assert 0.045 < share < 0.055
    audited = next(f"r{n}" for n in range(1000) if audit_draw(f"r{n}", 0) < 0.05)
    assert route(settings=SETTINGS, request_id=audited, index=0, score=0.9).reasons == (Reason.AUDIT,)


def test_inclusion_probability_combines_rules() -> None:
    assert inclusion_probability([0.0, 0.0, 0.1]) == pytest.approx(0.1)
    assert inclusion_probability([0.5, 0.5]) == pytest.approx(0.75)
    assert inclusion_probability([1.0, 0.1]) == 1.0


def test_review_settings_are_validated_when_the_file_is_read() -> None:
    with pytest.raises(ValueError, match="band"):
        ReviewSettings(band=(0.7, 0.2))
    with pytest.raises(ValueError, match="twice"):
        ReviewSettings(taxonomy=("a", "a"))
    with pytest.raises(ValueError, match="lowercase"):
        ReviewSettings(taxonomy=("<script>",))
    with pytest.raises(ValueError, match="at least one"):
        ReviewSettings(taxonomy=())


def test_the_telco_file_declares_review_and_an_older_serving_band_still_loads(tmp_path: Path) -> None:
    # Given the Telco use case, Then its [review] section is read
    usecase = load_usecase(ROOT / "usecases" / "telco_churn.toml")
    assert usecase.review.band == (0.35, 0.55)
    assert "wrong_label" in usecase.review.taxonomy
    # Given an older document with [serving] review_band, Then it is read as [review] band
    document = usecase.model_dump(mode="json")
    document["serving"]["review_band"] = [0.3, 0.5]
    del document["review"]
    assert UseCase.model_validate(document).review.band == (0.3, 0.5)
    # And both at once is refused
    document["review"] = {"band": [0.3, 0.5]}
    with pytest.raises(ValueError, match="both set"):
        UseCase.model_validate(document)
    path = tmp_path / "bad.toml"
    text = (ROOT / "usecases" / "telco_churn.toml").read_text().replace("audit_rate = 0.02", "audit_rate = 2.0")
    path.write_text(text)
    with pytest.raises(UseCaseError, match="audit_rate"):
        load_usecase(path)


@pytest.mark.parametrize("seed", range(5))
def test_a_block_is_routed_exactly_as_each_of_its_records_alone(seed: int) -> None:
    import numpy as np

    # Given a block of random scores, some with a shadow score, segment values, and an alerted segment
    rng = np.random.default_rng(seed)
    settings = ReviewSettings(band=(0.35, 0.55), audit_rate=0.1, disagreement_threshold=0.2)
    size = 500
    scores = rng.random(size)
    challengers = [None if rng.random() < 0.3 else float(rng.random()) for _ in range(size)]
    contract = [rng.choice(["Month-to-month", "One year", None]) for _ in range(size)]
    indices = list(range(3, 3 + size))
    alerted = {"contract=Month-to-month"}
    # When the block is routed at once
    block = route_block(
        settings=settings,
        request_id=f"req-{seed}",
        indices=indices,
        scores=scores,
        challenger_scores=challengers,
        segments={"contract": contract},
        alerted_segments=alerted,
    )
    # Then its routed records, reasons and probabilities are those of the per-record rules
    alone = [
        route(
            settings=settings,
            request_id=f"req-{seed}",
            index=index,
            score=float(score),
            challenger_score=challenger,
            segments={"contract": value},
            alerted_segments=alerted,
        )
        for index, score, challenger, value in zip(indices, scores, challengers, contract, strict=True)
    ]
    expected = [i for i, routing in enumerate(alone) if routing.routed]
    assert block.positions == expected
    assert block.reasons == [alone[i].reasons for i in expected]
    assert block.inclusion_probabilities == [alone[i].inclusion_probability for i in expected]
    assert {r for reasons in block.reasons for r in reasons} == set(Reason)
