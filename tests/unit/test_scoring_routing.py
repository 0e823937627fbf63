"""Canary split by entity and shadow sampling by request: stable, and at the configured share."""

from __future__ import annotations

import pytest

from shared.scoring.routing import canary_position, canary_variant, shadow_sampled, unit_position


def test_one_customer_always_sees_one_model() -> None:
    # Given a weight of 0.25
    # When the same entity is routed many times
    variants = {canary_variant("telco_churn", 4242, 0.25) for _ in range(100)}
    # Then it always gets the same variant
    assert len(variants) == 1


def test_a_quarter_of_ten_thousand_customers_get_the_challenger_at_weight_025() -> None:
    # Given 10,000 entity ids and a weight of 0.25
    ids = range(1, 10_001)
    # When each is routed
    challenger = sum(canary_variant("telco_churn", i, 0.25) == "challenger" for i in ids)
    # Then the challenger serves 25% of them, within 2 points
    assert 0.23 <= challenger / 10_000 <= 0.27


def test_customers_stay_with_the_challenger_as_its_weight_grows() -> None:
    # Given the customers the challenger serves at 5%
    at_five = {i for i in range(5000) if canary_variant("telco_churn", i, 0.05) == "challenger"}
    # When the weight grows to 25%
    at_twenty_five = {i for i in range(5000) if canary_variant("telco_churn", i, 0.25) == "challenger"}
    # Then all of them still get the challenger
    assert at_five <= at_twenty_five


def test_weights_zero_and_one_send_everyone_one_way() -> None:
    assert {canary_variant("u", i, 0.0) for i in range(500)} == {"champion"}
    assert {canary_variant("u", i, 1.0) for i in range(500)} == {"challenger"}


def test_the_split_depends_on_the_use_case() -> None:
    # Given the same entity in two use cases
    # Then its positions differ (use cases are split independently)
    assert canary_position("telco_churn", 7) != canary_position("fraud", 7)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 1.0])
def test_shadow_sampling_is_deterministic_and_near_its_rate(rate: float) -> None:
    # Given 10,000 request ids
    ids = [f"req-{i}" for i in range(10_000)]
    # When each is sampled twice
    first = [shadow_sampled(r, rate) for r in ids]
    second = [shadow_sampled(r, rate) for r in ids]
    # Then the answers agree, and the share is the rate within 2 points
    assert first == second
    assert abs(sum(first) / len(ids) - rate) <= 0.02


def test_positions_are_in_the_unit_interval() -> None:
    assert all(0.0 <= unit_position(str(i)) < 1.0 for i in range(1000))
