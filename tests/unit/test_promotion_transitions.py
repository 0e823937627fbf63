"""Stage transitions and their guard rails."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.promotion.exceptions import (
    InvalidTransitionError,
    NoPreviousChampionError,
    NotInWatchWindowError,
    PromotionInProgressError,
)
from shared.promotion.transitions import (
    Action,
    PromotionOutcome,
    Stage,
    Transition,
    end_watch,
    enter_stage,
    promote,
    rollback,
    rollback_to_previous,
    set_canary_weight,
    start,
    start_shadow,
)
from tests.unit.promotion_fixtures import EXECUTION, T0, ref, serving

STEPS = (0.01, 0.05, 0.25, 1.0)


def _through_canary() -> Transition:
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    replaying = enter_stage(begun.state, begun.promotion, Stage.REPLAY, now=T0, actor="promotion")
    shadowing = start_shadow(replaying.state, replaying.promotion, now=T0, actor="promotion")
    return set_canary_weight(shadowing.state, shadowing.promotion, 1, STEPS, now=T0, actor="promotion")


def test_start_records_the_candidate_and_enters_the_offline_gate() -> None:
    # Given a use case served by version 1
    # When version 2's promotion starts
    transition = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    # Then the stage is offline_gate, nothing serves the candidate yet, and the event says who asked
    assert transition.state.stage == Stage.OFFLINE_GATE
    assert transition.state.challenger is None
    assert transition.promotion.candidate == ref(2)
    assert transition.promotion.execution_name == "promote-v2"
    assert (transition.event.action, transition.event.actor) == (Action.PROMOTE_START, "cli:ana")
    assert (transition.event.from_version, transition.event.to_version) == (1, 2)


def test_a_second_promotion_is_refused_while_one_runs() -> None:
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    with pytest.raises(PromotionInProgressError):
        start(begun.state, begun.promotion, ref(3), now=T0, actor="cli:bo")


def test_shadow_then_canary_move_the_challenger_weight() -> None:
    canary = _through_canary()
    assert canary.state.challenger == ref(2)
    assert (canary.state.stage, canary.state.challenger_weight, canary.state.shadow) == (Stage.CANARY, 0.05, False)
    assert canary.event.action is Action.WEIGHT
    assert canary.event.weight == 0.05
    with pytest.raises(InvalidTransitionError):
        set_canary_weight(canary.state, canary.promotion, 4, STEPS, now=T0, actor="promotion")


def test_shadow_scores_the_candidate_with_no_traffic() -> None:
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    assert (shadow.state.challenger, shadow.state.challenger_weight, shadow.state.shadow) == (ref(2), 0.0, True)


def test_promote_makes_the_candidate_champion_and_keeps_the_previous_one() -> None:
    canary = _through_canary()
    promoted = promote(canary.state, canary.promotion, now=T0, actor="promotion", watch_window_seconds=120)
    state = promoted.state
    assert (state.champion, state.previous_champion, state.challenger) == (ref(2), ref(1), None)
    assert (state.stage, state.challenger_weight, state.shadow) == (Stage.WATCH, 0.0, False)
    assert promoted.promotion.promoted_at == T0
    assert promoted.promotion.watch_until == T0 + timedelta(seconds=120)


def test_rollback_sends_all_traffic_back_to_the_champion() -> None:
    canary = _through_canary()
    rolled = rollback(canary.state, canary.promotion, now=T0, actor="rollback-alarm:x", reason="errors")
    assert (rolled.state.champion, rolled.state.challenger, rolled.state.challenger_weight) == (ref(1), None, 0.0)
    assert (rolled.state.stage, rolled.state.shadow) == (Stage.IDLE, False)
    assert rolled.promotion.outcome is PromotionOutcome.ROLLED_BACK
    assert (rolled.event.action, rolled.event.stage, rolled.event.reason) == (Action.ROLLBACK, "rolled_back", "errors")


def test_rollback_to_previous_only_inside_the_watch_window() -> None:
    canary = _through_canary()
    promoted = promote(canary.state, canary.promotion, now=T0, actor="promotion", watch_window_seconds=120)
    # When an alarm comes one minute into the window
    back = rollback_to_previous(
        promoted.state, promoted.promotion, now=T0 + timedelta(seconds=60), actor="rollback-alarm:x", reason="p99"
    )
    # Then version 1 serves again, in one step
    assert (back.state.champion, back.state.previous_champion, back.state.stage) == (ref(1), None, Stage.IDLE)
    assert (back.event.from_version, back.event.to_version) == (2, 1)
    # And after the window it is refused
    with pytest.raises(NotInWatchWindowError):
        rollback_to_previous(
            promoted.state, promoted.promotion, now=T0 + timedelta(seconds=121), actor="x", reason="late"
        )


def test_rollback_to_previous_needs_a_previous_champion() -> None:
    begun = start(serving().model_copy(update={"champion": None}), None, ref(2), now=T0, actor="cli:ana")
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    promoted = promote(shadow.state, shadow.promotion, now=T0, actor="promotion", watch_window_seconds=120)
    with pytest.raises(NoPreviousChampionError):
        rollback_to_previous(promoted.state, promoted.promotion, now=T0, actor="x", reason="r")


def test_end_watch_makes_the_promotion_final() -> None:
    canary = _through_canary()
    promoted = promote(canary.state, canary.promotion, now=T0, actor="promotion", watch_window_seconds=120)
    final = end_watch(promoted.state, promoted.promotion, now=T0 + timedelta(seconds=121), actor="promotion")
    assert (final.state.stage, final.state.champion) == (Stage.IDLE, ref(2))
    assert final.promotion.outcome is PromotionOutcome.PROMOTED
    # And a new promotion may start now
    start(final.state, final.promotion, ref(3), now=T0, actor="cli:ana")


def test_idle_cannot_be_rolled_back_or_promoted() -> None:
    with pytest.raises(InvalidTransitionError):
        promote(serving(), None, now=T0, actor="promotion", watch_window_seconds=1)
    with pytest.raises(InvalidTransitionError):
        rollback(serving(), None, now=T0, actor="promotion", reason="r")
