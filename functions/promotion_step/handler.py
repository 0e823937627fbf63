"""Promotion step: one function the promotion state machine invokes with an explicit ``{"action": ...}``.

Actions (input → output; every output has ``verdict`` pass|fail|inconclusive, ``reason``, ``figures``):
``prepare`` {model_package_arn, requested_by, execution_arn?}, ``offline_gate``, ``replay``,
``start_shadow``, ``analyze`` {stage: shadow|canary, window_start?}, ``set_weight`` {step},
``promote``, ``rollback`` {reason?, error?}, ``wait_for_human`` {task_token, reason?}, ``finish``
(the timeline), ``end_watch`` (the schedule: a watch window that is over → idle).
Extra fields are ignored; the requests are
:mod:`shared.promotion.steps`.
Typed errors (``PromotionInProgressError``, ``EndpointBusyError``, ...) surface as the task's
``Error`` for the state machine to catch or retry.

Environment: see :class:`shared.promotion.environment.PromotionEnvironment`, plus powertools' own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.promotion.runtime import service_from_environment
from shared.promotion.service import PromotionService, StepResult
from shared.promotion.steps import (
    Analyze,
    EndWatch,
    Finish,
    OfflineGate,
    Prepare,
    Promote,
    Replay,
    Rollback,
    SetWeight,
    StartShadow,
    StepRequest,
    WaitForHuman,
    parse_step,
)
from shared.promotion.transitions import Stage

logger = Logger()
tracer = Tracer()


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
    request = parse_step(event)
    result = run_step(request, service()).to_json()
    logger.info("promotion step", extra={"action": request.action, "verdict": result["verdict"]})
    return result
