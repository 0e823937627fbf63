"""Review intake: batches of the review queue (SQS) → review items in DynamoDB.

Each message is a block of one request's predictions routed for review (with their ``routing``); it is taken
whole or left in SQS: past the queue's capacity, or unreadable, it is a batch item failure (back-pressure:
nothing is lost; an unreadable one is retried, then dead-lettered). Taking a message twice makes no new item.

Environment: see :class:`shared.review.environment.ReviewEnvironment`, plus powertools' own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.review.runtime import service_from_environment
from shared.review.service import InboundMessage, ReviewService
from shared.review.telemetry import INTAKE_REFUSED
from shared.scoring.telemetry import DIMENSION_USECASE, NAMESPACE

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=NAMESPACE)


@lru_cache(maxsize=1)
def service() -> ReviewService:
    return service_from_environment("review-intake")


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    messages = [InboundMessage(message_id=r.message_id, body=r.body) for r in SQSEvent(event).records]
    result = service().intake(messages)
    metrics.add_dimension(name=DIMENSION_USECASE, value=service().name)
    metrics.add_metric(name=INTAKE_REFUSED, unit="Count", value=len(result.refused))
    logger.info(
        "review items taken in",
        extra={
            "messages": len(messages),
            "items_created": result.created,
            "items_duplicated": result.duplicates,
            "not_routed": result.not_routed,
            "refused": len(result.refused),
            "back_pressure": str(result.back_pressure) if result.back_pressure else None,
        },
    )
    return result.batch_item_failures()
