"""Training trigger: a debounced batch of lake manifest notifications (SQS) → at most one training run.

Environment: ``STATE_MACHINE_ARN``, ``SLUICE_USECASE`` (the use-case name), ``DEBOUNCE_SECONDS``
(the execution-name time bucket; the event source's batching window), plus powertools' own.
The whole batch succeeds or fails together: on failure every message is reported failed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.environment import read_environment
from shared.training.environment import TriggerEnvironment
from shared.training.exceptions import TriggerError
from shared.training.trigger import StepFunctionsRuns, start_for_new_data

logger = Logger()
tracer = Tracer()


@lru_cache(maxsize=1)
def settings() -> TriggerEnvironment:
    return read_environment(TriggerEnvironment, "training-trigger")


@lru_cache(maxsize=1)
def training_runs() -> StepFunctionsRuns:
    import boto3

    return StepFunctionsRuns(boto3.client("stepfunctions"), state_machine_arn=settings().state_machine_arn)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    records = list(SQSEvent(event).records)
    current = settings()
    try:
        outcome = start_for_new_data(
            training_runs(),
            usecase=current.usecase,
            now=datetime.now(UTC),
            bucket_seconds=current.debounce_seconds,
            manifest_keys=[record.message_id for record in records],
        )
    except TriggerError:
        logger.exception("training trigger failed; the batch will be retried")
        return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record in records]}
    logger.info("training trigger", extra={"action": outcome.action, "execution": outcome.execution_name})
    return {"batchItemFailures": []}
