"""Promotion step: one function the promotion state machine invokes with an explicit ``{"action": ...}``.

Actions (input → output; every output has ``verdict`` pass|fail|inconclusive, ``reason``, ``figures``):
``prepare`` {model_package_arn, requested_by, execution_arn?}, ``offline_gate``, ``replay``,
``start_shadow``, ``analyze`` {stage: shadow|canary, window_start?}, ``set_weight`` {step},
``promote``, ``rollback`` {reason?, error?}, ``wait_for_human`` {task_token, reason?}, ``finish``
(the timeline), ``end_watch`` (the schedule: a watch window that is over → idle). Extra fields are ignored.
Typed errors (``PromotionInProgressError``, ``EndpointBusyError``, ...) surface as the task's
``Error`` for the state machine to catch or retry.

Environment: see :class:`shared.promotion.runtime.PromotionFunctionSettings`, plus powertools' own.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.promotion.runtime import service_from_environment
from shared.promotion.service import PromotionService, StepResult
from shared.promotion.transitions import Stage

logger = Logger()
tracer = Tracer()


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    execution_arn: str = ""


class Prepare(_Step):
    action: Literal["prepare"]
    model_package_arn: str = Field(pattern=r"^arn:")
    requested_by: str = Field(min_length=1)


class OfflineGate(_Step):
    action: Literal["offline_gate"]


class Replay(_Step):
    action: Literal["replay"]


class StartShadow(_Step):
    action: Literal["start_shadow"]


class Analyze(_Step):
    action: Literal["analyze"]
    stage: Literal["shadow", "canary"]
    window_start: datetime | None = None


class SetWeight(_Step):
    action: Literal["set_weight"]
    step: int = Field(ge=0)


class Promote(_Step):
    action: Literal["promote"]


class Rollback(_Step):
    action: Literal["rollback"]
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
    action: Literal["wait_for_human"]
    task_token: str = Field(min_length=1)
    reason: str = ""


class Finish(_Step):
    action: Literal["finish"]


class EndWatch(_Step):
    action: Literal["end_watch"]


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


@lru_cache(maxsize=1)
def service() -> PromotionService:
    return service_from_environment("promotion step")


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


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    request = _requests.validate_python(event)
    result = run_step(request, service()).to_json()
    logger.info("promotion step", extra={"action": request.action, "verdict": result["verdict"]})
    return result
