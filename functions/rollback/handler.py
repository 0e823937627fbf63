"""Rollback function: the target of the EventBridge rule on candidate alarms ("CloudWatch Alarm State Change").

An ALARM of a candidate alarm during shadow or canary rolls back at once (traffic to the champion,
package Rejected, SNS, audit, the promotion execution stopped); during the watch window it brings the
previous champion back in one step; otherwise it is logged and ignored. Idempotent: writes are
conditional on the deployment state's revision, and a state that needs no rollback is left alone.

Environment: see :class:`shared.promotion.environment.PromotionEnvironment`, plus powertools' own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.promotion.alarms import parse_alarm_event
from shared.promotion.runtime import service_from_environment
from shared.promotion.service import PromotionService

logger = Logger()
tracer = Tracer()


@lru_cache(maxsize=1)
def service() -> PromotionService:
    return service_from_environment("rollback")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:  # noqa: ARG001 - Lambda calls it so
    alarm = parse_alarm_event(event)
    response = service().handle_alarm(alarm)
    logger.info(
        "candidate alarm", extra={"alarm": alarm.alarm_name, "key": alarm.idempotency_key, **response.to_json()}
    )
    return response.to_json()
