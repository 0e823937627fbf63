"""Backfill finish handler: re-plan, and switch training's curated set when every object reconciles.

Input: the plan step's :class:`~shared.backfill.runs.PlannedRun`. Output: the run's
:class:`~shared.backfill.runs.RunSummary`. Raises ``BackfillIncompleteError`` with the reason (the objects not
reconciled, the run's recorded failures) when the set does not reconcile: the execution fails with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.backfill.environment import BackfillFinishEnvironment
from shared.backfill.runs import PlannedRun, finish_run
from shared.deployment.adapters import DeploymentStore
from shared.environment import read_environment
from shared.lake.adapters import S3ObjectStore

logger = Logger()
tracer = Tracer()


@lru_cache(maxsize=1)
def settings() -> BackfillFinishEnvironment:
    return read_environment(BackfillFinishEnvironment, "backfill_finish")


@lru_cache(maxsize=4)
def client(service: str) -> Any:
    import boto3

    return boto3.client(service)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    current = settings()
    summary = finish_run(
        PlannedRun.model_validate(event),
        store=S3ObjectStore(client("s3")),
        lake_bucket=current.lake_bucket,
        audit=DeploymentStore(client("dynamodb"), current.deployment_table),
        now=datetime.now(UTC),
    )
    logger.info("finished", extra=summary.model_dump(mode="json"))
    return summary.model_dump(mode="json")
