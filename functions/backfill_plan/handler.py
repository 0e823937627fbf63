"""Backfill plan handler: a run request → the run's items in the lake (``plan_run``).

Input: ``{"contract_version", "run", "switch", "requested_by"}`` (the execution's input). Output: the
:class:`~shared.backfill.runs.PlannedRun` (its ``items_key`` is the Distributed Map's JSON array). Refuses
(``ContractVersionMismatchError``) a version the use-case file packed with this function does not carry.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.backfill.environment import BackfillPlanEnvironment
from shared.backfill.runs import RunRequest, plan_run
from shared.environment import read_environment
from shared.lake.adapters import S3ObjectStore
from shared.usecase.settings import UseCase, load_usecase

logger = Logger()
tracer = Tracer()


@lru_cache(maxsize=1)
def settings() -> BackfillPlanEnvironment:
    return read_environment(BackfillPlanEnvironment, "backfill_plan")


@lru_cache(maxsize=1)
def usecase() -> UseCase:
    return load_usecase(settings().usecase_path)


@lru_cache(maxsize=1)
def object_store() -> S3ObjectStore:
    import boto3

    return S3ObjectStore(boto3.client("s3"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    planned = plan_run(
        RunRequest.model_validate(event), usecase=usecase(), store=object_store(), lake_bucket=settings().lake_bucket
    )
    logger.info("planned", extra=planned.model_dump(mode="json"))
    return planned.model_dump(mode="json")
