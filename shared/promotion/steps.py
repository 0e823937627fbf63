"""The promotion step function's contract: the actions the state machine invokes it with, their inputs, and
which service call each one is (:func:`run_step`).

The state machine (``infra/promotion.py``) sends ``{"action": ..., ...}``; the function
(``functions/promotion_step``) parses it into one of the requests below. Both import the names from here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.promotion.transitions import Stage

if TYPE_CHECKING:
    from shared.promotion.service import PromotionService, StepResult


class StepAction(StrEnum):
    """The promotion step function's event ``action``."""

    PREPARE = "prepare"
    OFFLINE_GATE = Stage.OFFLINE_GATE.value
    REPLAY = Stage.REPLAY.value
    START_SHADOW = "start_shadow"
    ANALYZE = "analyze"
    SET_WEIGHT = "set_weight"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    WAIT_FOR_HUMAN = "wait_for_human"
    FINISH = "finish"
    END_WATCH = "end_watch"


DECISION_APPROVE = "approve"
"""A human's ``decision`` in the task output that lets a waiting promotion go on (``SendTaskSuccess``)."""


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    execution_arn: str = ""


class Prepare(_Step):
    action: Literal[StepAction.PREPARE]
    model_package_arn: str = Field(pattern=r"^arn:")
    requested_by: str = Field(min_length=1)


class OfflineGate(_Step):
    action: Literal[StepAction.OFFLINE_GATE]


class Replay(_Step):
    action: Literal[StepAction.REPLAY]


class StartShadow(_Step):
    action: Literal[StepAction.START_SHADOW]


class Analyze(_Step):
    action: Literal[StepAction.ANALYZE]
    stage: Literal[Stage.SHADOW, Stage.CANARY]
    window_start: datetime | None = None


class SetWeight(_Step):
    action: Literal[StepAction.SET_WEIGHT]
    step: int = Field(ge=0)


class Promote(_Step):
    action: Literal[StepAction.PROMOTE]


class Rollback(_Step):
    action: Literal[StepAction.ROLLBACK]
    reason: str | None = None
    """``$.failure.Cause``: null when a failure came without a cause (a rollback must never fail on that)."""
    error: dict[str, Any] | None = None
    """A Catch's ``$.error`` ({"Error", "Cause"}), when the rollback follows a failed step."""

    @property
    def why(self) -> str:
        if self.reason:
            return self.reason
        if self.error:
            return f"{self.error.get('Error', 'error')}: {self.error.get('Cause', '')}".strip()
        return "rolled back by the promotion"


class WaitForHuman(_Step):
    action: Literal[StepAction.WAIT_FOR_HUMAN]
    task_token: str = Field(min_length=1)
    reason: str = ""


class Finish(_Step):
    action: Literal[StepAction.FINISH]


class EndWatch(_Step):
    action: Literal[StepAction.END_WATCH]


StepRequest = Annotated[
    Prepare
    | OfflineGate
    | Replay
    | StartShadow
    | Analyze
    | SetWeight
    | Promote
    | Rollback
    | WaitForHuman
    | Finish
    | EndWatch,
    Field(discriminator="action"),
]
_requests: TypeAdapter[StepRequest] = TypeAdapter(StepRequest)


def parse_step(event: Any) -> StepRequest:
    """The request in a step function event (pydantic's ``ValidationError`` when it is none)."""
    return _requests.validate_python(event)


def run_step(request: StepRequest, promotion: PromotionService) -> StepResult:  # noqa: PLR0911 - one branch per action
    match request:
        case Prepare():
            return promotion.prepare(
                model_package_arn=request.model_package_arn,
                requested_by=request.requested_by,
                execution_arn=request.execution_arn,
            )
        case OfflineGate():
            return promotion.offline_gate()
        case Replay():
            return promotion.replay()
        case StartShadow():
            return promotion.start_shadow()
        case Analyze():
            return promotion.analyze(Stage(request.stage), request.window_start)
        case SetWeight():
            return promotion.set_weight(request.step)
        case Promote():
            return promotion.promote()
        case Rollback():
            return promotion.rollback(request.why, execution_arn=request.execution_arn)
        case WaitForHuman():
            return promotion.wait_for_human(request.task_token, request.reason)
        case Finish():
            return promotion.finish()
        case EndWatch():
            return promotion.end_watch()
