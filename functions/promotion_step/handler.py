"""Promotion step: one function the promotion state machine invokes with an explicit ``{"action": ...}``.

Actions (input → output; every output has ``verdict`` pass|fail|inconclusive, ``reason``, ``figures``):
``prepare`` {model_package_arn, requested_by, execution_arn?}, ``offline_gate``, ``replay``,
``start_shadow``, ``analyze`` {stage: shadow|canary, window_start?}, ``set_weight`` {step},
``promote``, ``rollback`` {reason?, error?}, ``wait_for_human`` {task_token, reason?}, ``finish``
(the timeline), ``end_watch`` (the schedule: a watch window that is over → idle). Extra fields are
ignored; the requests, and the service call of each, are :mod:`shared.promotion.steps`.
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
from shared.promotion.service import PromotionService
from shared.promotion.steps import parse_step, run_step

logger = Logger()
tracer = Tracer()


@lru_cache(maxsize=1)
def service() -> PromotionService:
    return service_from_environment("promotion step")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    request = parse_step(event)
    result = run_step(request, service()).to_json()
    logger.info("promotion step", extra={"action": request.action, "verdict": result["verdict"]})
    return result
