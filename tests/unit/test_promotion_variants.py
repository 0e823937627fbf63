"""The endpoint's variants for a deployment state (pure): which change each transition needs."""

from __future__ import annotations

import pytest

from shared.promotion.exceptions import TargetError
from shared.promotion.transitions import set_canary_weight, start, start_shadow
from shared.promotion.variants import (
    ConfigChange,
    VariantWeight,
    WeightsChange,
    endpoint_change,
    endpoint_config_name,
    model_name,
)
from tests.unit.promotion_fixtures import T0, USECASE, ref, serving

ENDPOINT = "sluice-telco-churn"
STEPS = (0.1, 0.5, 1.0)


def test_shadowing_needs_a_config_with_the_candidate_as_a_shadow_variant() -> None:
    # Given a champion and a candidate about to shadow it
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    # When the change is computed
    change = endpoint_change(begun.state, shadow.state, endpoint_name=ENDPOINT)
    # Then the champion serves alone and the candidate shadows it
    assert change == ConfigChange(production=(VariantWeight(ref(1), 1.0),), shadow=(VariantWeight(ref(2), 1.0),))


def test_a_canary_step_with_the_same_pair_only_moves_the_weights() -> None:
    # Given a canary at its first step
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    first = set_canary_weight(shadow.state, shadow.promotion, 0, STEPS, now=T0, actor="promotion")
    second = set_canary_weight(first.state, first.promotion, 1, STEPS, now=T0, actor="promotion")
    # When the weight grows
    change = endpoint_change(first.state, second.state, endpoint_name=ENDPOINT)
    # Then only the weights change
    assert change == WeightsChange(ref(1), ref(2), 0.5)
    assert change.desired_weights() == [
        {"VariantName": "v1", "DesiredWeight": 0.5},
        {"VariantName": "v2", "DesiredWeight": 0.5},
    ]


def test_a_state_without_a_champion_cannot_be_served() -> None:
    # Given a state with no champion
    empty = serving().model_copy(update={"champion": None})
    # When its change is computed, Then it is refused
    with pytest.raises(TargetError, match=USECASE):
        endpoint_change(serving(), empty, endpoint_name=ENDPOINT)


def test_names_stay_within_sagemakers_limits() -> None:
    long_name = "e" * 80
    assert len(model_name(long_name, ref(12))) <= 63
    assert len(endpoint_config_name(long_name, 12345)) <= 63
