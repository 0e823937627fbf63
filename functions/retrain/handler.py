"""Retrain: a monitoring alarm entered ALARM (EventBridge) → start a training run, or skip it and say why.

Environment: :class:`~shared.training.environment.RetrainEnvironment`. The decision is written to the audit
history; the alarm topic receives the latest report's alert sentences with it
(:class:`~shared.training.retrain_runtime.RetrainService`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.promotion.alarms import parse_alarm_event
from shared.training.retrain_runtime import RetrainService, service_from_environment

logger = Logger()
tracer = Tracer()


@lru_cache(maxsize=1)
def service() -> RetrainService:
    return service_from_environment("retrain")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    outcome = service().handle(parse_alarm_event(event), now=datetime.now(UTC))
    logger.info("retrain decision", extra=outcome)
    return outcome
