"""The stage transitions of a promotion: pure functions from one deployment to the next, with their audit event.

Stages (``DeploymentState.stage``)::

    idle ─start→ offline_gate ─enter_stage→ replay ─start_shadow→ shadow ─set_canary_weight→ canary ─promote→ watch
      ↑                                                                                                       │
      └──────────── rollback (any stage before watch) / rollback_to_previous (watch) / end_watch ─────────────┘

What :class:`~shared.deployment.state.DeploymentState` does not hold yet (the candidate before it becomes the
challenger, the execution ARN, a pending task token, ``promoted_at``) is kept in a :class:`Promotion`
record, stored beside the state (``sk = "promotion"``). Every transition takes the state and the record
and returns a :class:`Transition`: the new state, the new record and the audit event to append.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.deployment.state import IDLE_STAGE, DeploymentState, ModelRef
from shared.promotion.exceptions import (
    InvalidTransitionError,
    NoPreviousChampionError,
    NotInWatchWindowError,
    PromotionInProgressError,
)


class Stage(StrEnum):
    """The stage a use case's deployment is in (``DeploymentState.stage``); a promotion walks them in order."""

    IDLE = IDLE_STAGE
    OFFLINE_GATE = "offline_gate"
    REPLAY = "replay"
    SHADOW = "shadow"
    CANARY = "canary"
    WATCH = "watch"


PRE_PROMOTION_STAGES = frozenset({Stage.OFFLINE_GATE, Stage.REPLAY, Stage.SHADOW, Stage.CANARY})
LIVE_STAGES = frozenset({Stage.SHADOW, Stage.CANARY})


class Verdict(StrEnum):
    """A stage's verdict (the offline gate, the replay, a shadow or canary analysis) and each of its checks'."""

    PASS = "pass"  # noqa: S105 - not a password
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Action(StrEnum):
    """``action`` of an audit event."""

    DEPLOY = "deploy"
    PROMOTE_START = "promote_start"
    STAGE = "stage"
    WEIGHT = "weight"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    REJECT = "reject"
    APPROVE = "approve"
    ABORT = "abort"
    INCONCLUSIVE = Verdict.INCONCLUSIVE.value
    NOTIFY = "notify"


class PromotionOutcome(StrEnum):
    """How one promotion run stands (``Promotion.outcome``): running until it is promoted or rolled back."""

    RUNNING = "running"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


ROLLED_BACK = PromotionOutcome.ROLLED_BACK.value
"""Recorded in the audit log (``stage``) when a promotion is rolled back; the state itself returns to idle."""


class Promotion(BaseModel):
    """One promotion run: what the deployment state does not hold (item ``sk = "promotion"``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    usecase: str
    candidate: ModelRef
    champion_at_start: ModelRef | None = None
    execution_arn: str = ""
    requested_by: str = ""
    started_at: datetime
    stage_started_at: datetime
    promoted_at: datetime | None = None
    watch_until: datetime | None = None
    finished_at: datetime | None = None
    outcome: PromotionOutcome = PromotionOutcome.RUNNING
    reason: str = ""
    canary_step: int | None = None
    extensions: int = Field(default=0, ge=0)
    """Inconclusive analyses of the current stage so far (reset when the stage changes)."""
    task_token: str | None = None
    """The Step Functions task token while the promotion waits for a human (approve / abort)."""

    @property
    def execution_name(self) -> str:
        """The execution's name (the last part of its ARN); ``manual`` when run outside Step Functions."""
        return self.execution_arn.rsplit(":", 1)[-1] if self.execution_arn else "manual"


class AuditEvent(BaseModel):
    """One append-only audit item (``sk = "event#<ISO time>#<uuid>"``)."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    actor: str
    action: Action
    from_version: int | None = None
    to_version: int | None = None
    stage: str = ""
    weight: float | None = None
    reason: str = ""
    execution_arn: str = ""


@dataclass(frozen=True, kw_only=True)
class Transition:
    state: DeploymentState
    promotion: Promotion
    event: AuditEvent


CHAMPION_ONLY: dict[str, Any] = {"challenger": None, "challenger_weight": 0.0, "shadow": False}
"""The deployment-state fields of "only the champion serves": no challenger, no canary, no shadow."""


def _version(ref: ModelRef | None) -> int | None:
    return ref.version if ref is not None else None


def _event(
    promotion: Promotion,
    action: Action,
    *,
    now: datetime,
    actor: str,
    stage: str,
    from_ref: ModelRef | None = None,
    to_ref: ModelRef | None = None,
    weight: float | None = None,
    reason: str = "",
) -> AuditEvent:
    return AuditEvent(
        time=now,
        actor=actor,
        action=action,
        from_version=_version(from_ref),
        to_version=_version(to_ref),
        stage=stage,
        weight=weight,
        reason=reason,
        execution_arn=promotion.execution_arn,
    )


def _require_stage(state: DeploymentState, allowed: frozenset[Stage] | set[Stage], doing: str) -> None:
    if state.stage not in allowed:
        raise InvalidTransitionError(
            f"cannot {doing} for {state.usecase!r}: its deployment is in stage {state.stage!r} "
            f"(allowed: {sorted(s.value for s in allowed)})"
        )


def _running(promotion: Promotion | None, state: DeploymentState, doing: str) -> Promotion:
    if promotion is None or promotion.outcome is not PromotionOutcome.RUNNING:
        raise InvalidTransitionError(f"cannot {doing} for {state.usecase!r}: no promotion is running")
    return promotion


def start(
    state: DeploymentState,
    current: Promotion | None,
    candidate: ModelRef,
    *,
    now: datetime,
    actor: str,
    execution_arn: str = "",
) -> Transition:
    """A new promotion of ``candidate``: stage offline_gate. Refused while another promotion runs or watches."""
    if state.stage != Stage.IDLE:
        running = current.execution_arn if current is not None and current.outcome is PromotionOutcome.RUNNING else ""
        raise PromotionInProgressError(
            f"a promotion of {state.usecase!r} is running (stage {state.stage!r}{', ' + running if running else ''})"
        )
    if state.champion is not None and state.champion.version == candidate.version:
        raise InvalidTransitionError(f"model version {candidate.version} already serves {state.usecase!r}")
    promotion = Promotion(
        usecase=state.usecase,
        candidate=candidate,
        champion_at_start=state.champion,
        execution_arn=execution_arn,
        requested_by=actor,
        started_at=now,
        stage_started_at=now,
    )
    new_state = state.model_copy(
        update={"stage": Stage.OFFLINE_GATE.value, "challenger": None, "challenger_weight": 0.0}
    )
    event = _event(
        promotion,
        Action.PROMOTE_START,
        now=now,
        actor=actor,
        stage=Stage.OFFLINE_GATE,
        from_ref=state.champion,
        to_ref=candidate,
        reason=f"promotion of version {candidate.version} requested",
    )
    return Transition(state=new_state, promotion=promotion, event=event)


def enter_stage(
    state: DeploymentState, promotion: Promotion | None, stage: Stage, *, now: datetime, actor: str
) -> Transition:
    """offline_gate → replay (a stage with no traffic change)."""
    running = _running(promotion, state, f"enter {stage}")
    if stage is not Stage.REPLAY:
        raise InvalidTransitionError(f"enter_stage only moves to replay, not {stage!r}")
    _require_stage(state, {Stage.OFFLINE_GATE, Stage.REPLAY}, "start the replay")
    new_state = state.model_copy(update={"stage": stage.value})
    new_promotion = running.model_copy(update={"stage_started_at": now, "extensions": 0})
    event = _event(
        running, Action.STAGE, now=now, actor=actor, stage=stage, from_ref=state.champion, to_ref=running.candidate
    )
    return Transition(state=new_state, promotion=new_promotion, event=event)


def start_shadow(state: DeploymentState, promotion: Promotion | None, *, now: datetime, actor: str) -> Transition:
    """The candidate becomes the challenger, scoring in shadow with no traffic (weight 0)."""
    running = _running(promotion, state, "start the shadow stage")
    _require_stage(state, {Stage.OFFLINE_GATE, Stage.REPLAY}, "start the shadow stage")
    new_state = state.model_copy(
        update={"stage": Stage.SHADOW.value, "challenger": running.candidate, "challenger_weight": 0.0, "shadow": True}
    )
    new_promotion = running.model_copy(update={"stage_started_at": now, "extensions": 0})
    event = _event(
        running,
        Action.STAGE,
        now=now,
        actor=actor,
        stage=Stage.SHADOW,
        from_ref=state.champion,
        to_ref=running.candidate,
        weight=0.0,
        reason="candidate scores in shadow",
    )
    return Transition(state=new_state, promotion=new_promotion, event=event)


def set_canary_weight(
    state: DeploymentState,
    promotion: Promotion | None,
    step: int,
    canary_steps: tuple[float, ...],
    *,
    now: datetime,
    actor: str,
) -> Transition:
    """Canary step ``step`` (an index of ``canary_steps``): the challenger serves that share; shadow stops."""
    running = _running(promotion, state, "set the canary weight")
    _require_stage(state, {Stage.SHADOW, Stage.CANARY}, "set the canary weight")
    if not 0 <= step < len(canary_steps):
        raise InvalidTransitionError(f"canary step {step} is not one of 0..{len(canary_steps) - 1}")
    weight = canary_steps[step]
    new_state = state.model_copy(
        update={
            "stage": Stage.CANARY.value,
            "challenger": running.candidate,
            "challenger_weight": weight,
            "shadow": False,
        }
    )
    new_promotion = running.model_copy(update={"stage_started_at": now, "extensions": 0, "canary_step": step})
    event = _event(
        running,
        Action.WEIGHT,
        now=now,
        actor=actor,
        stage=Stage.CANARY,
        from_ref=state.champion,
        to_ref=running.candidate,
        weight=weight,
        reason=f"canary step {step + 1} of {len(canary_steps)}",
    )
    return Transition(state=new_state, promotion=new_promotion, event=event)


def promote(
    state: DeploymentState, promotion: Promotion | None, *, now: datetime, actor: str, watch_window_seconds: int
) -> Transition:
    """The candidate becomes the champion; the old champion is kept as ``previous_champion``; stage watch."""
    running = _running(promotion, state, "promote")
    _require_stage(state, PRE_PROMOTION_STAGES, "promote")
    new_state = state.model_copy(
        update={
            "stage": Stage.WATCH.value,
            "champion": running.candidate,
            "previous_champion": state.champion,
            **CHAMPION_ONLY,
        }
    )
    new_promotion = running.model_copy(
        update={
            "stage_started_at": now,
            "extensions": 0,
            "promoted_at": now,
            "watch_until": now + timedelta(seconds=watch_window_seconds),
            "task_token": None,
        }
    )
    event = _event(
        running,
        Action.PROMOTE,
        now=now,
        actor=actor,
        stage=Stage.WATCH,
        from_ref=state.champion,
        to_ref=running.candidate,
        weight=1.0,
        reason=f"version {running.candidate.version} promoted",
    )
    return Transition(state=new_state, promotion=new_promotion, event=event)


def _rolled_back(
    promotion: Promotion,
    new_state: DeploymentState,
    *,
    now: datetime,
    actor: str,
    reason: str,
    from_ref: ModelRef | None,
    to_ref: ModelRef | None,
) -> Transition:
    """A rollback to ``new_state``: the promotion record closed (no human decision pending any more) and its
    audit event (``from_ref`` → ``to_ref``)."""
    closed = promotion.model_copy(
        update={"outcome": PromotionOutcome.ROLLED_BACK, "finished_at": now, "reason": reason, "task_token": None}
    )
    event = _event(
        promotion,
        Action.ROLLBACK,
        now=now,
        actor=actor,
        stage=ROLLED_BACK,
        from_ref=from_ref,
        to_ref=to_ref,
        weight=0.0,
        reason=reason,
    )
    return Transition(state=new_state, promotion=closed, event=event)


def rollback(
    state: DeploymentState, promotion: Promotion | None, *, now: datetime, actor: str, reason: str
) -> Transition:
    """Before promotion: all traffic back to the champion (challenger none, weight 0, shadow off); stage idle."""
    running = _running(promotion, state, "roll back")
    _require_stage(state, PRE_PROMOTION_STAGES, "roll back")
    new_state = state.model_copy(update={"stage": Stage.IDLE.value, **CHAMPION_ONLY})
    return _rolled_back(
        running, new_state, now=now, actor=actor, reason=reason, from_ref=running.candidate, to_ref=state.champion
    )


def in_watch_window(state: DeploymentState, promotion: Promotion | None, now: datetime) -> bool:
    return (
        state.stage == Stage.WATCH
        and promotion is not None
        and promotion.watch_until is not None
        and now <= promotion.watch_until
    )


def rollback_to_previous(
    state: DeploymentState, promotion: Promotion | None, *, now: datetime, actor: str, reason: str
) -> Transition:
    """After promotion, inside the watch window: the previous champion serves again, in one step; stage idle."""
    if not in_watch_window(state, promotion, now) or promotion is None:
        raise NotInWatchWindowError(
            f"cannot roll {state.usecase!r} back to its previous champion: "
            f"not in a watch window (stage {state.stage!r})"
        )
    if state.previous_champion is None:
        raise NoPreviousChampionError(f"{state.usecase!r} has no previous champion to go back to")
    new_state = state.model_copy(
        update={
            "stage": Stage.IDLE.value,
            "champion": state.previous_champion,
            "previous_champion": None,
            **CHAMPION_ONLY,
        }
    )
    return _rolled_back(
        promotion,
        new_state,
        now=now,
        actor=actor,
        reason=reason,
        from_ref=state.champion,
        to_ref=state.previous_champion,
    )


def end_watch(state: DeploymentState, promotion: Promotion | None, *, now: datetime, actor: str) -> Transition:
    """The watch window is over: the promotion is final (the previous champion is still recorded); stage idle."""
    running = _running(promotion, state, "end the watch window")
    _require_stage(state, {Stage.WATCH}, "end the watch window")
    new_state = state.model_copy(update={"stage": Stage.IDLE.value})
    new_promotion = running.model_copy(update={"outcome": PromotionOutcome.PROMOTED, "finished_at": now})
    event = _event(
        running,
        Action.STAGE,
        now=now,
        actor=actor,
        stage=Stage.IDLE,
        from_ref=running.champion_at_start,
        to_ref=state.champion,
        reason="watch window over; promotion final",
    )
    return Transition(state=new_state, promotion=new_promotion, event=event)


def record_inconclusive(
    promotion: Promotion, state: DeploymentState, *, now: datetime, actor: str, reason: str
) -> Transition:
    """One more bake of the current stage after an inconclusive analysis (the traffic does not change)."""
    new_promotion = promotion.model_copy(update={"extensions": promotion.extensions + 1})
    event = _event(
        promotion,
        Action.INCONCLUSIVE,
        now=now,
        actor=actor,
        stage=state.stage,
        from_ref=state.champion,
        to_ref=promotion.candidate,
        weight=state.challenger_weight,
        reason=reason,
    )
    return Transition(state=state, promotion=new_promotion, event=event)


def await_human(
    promotion: Promotion, state: DeploymentState, task_token: str, *, now: datetime, actor: str, reason: str
) -> Transition:
    """The promotion waits for approve / abort with ``task_token`` (the traffic does not change)."""
    new_promotion = promotion.model_copy(update={"task_token": task_token})
    event = _event(
        promotion,
        Action.NOTIFY,
        now=now,
        actor=actor,
        stage=state.stage,
        from_ref=state.champion,
        to_ref=promotion.candidate,
        weight=state.challenger_weight,
        reason=reason,
    )
    return Transition(state=state, promotion=new_promotion, event=event)
