"""Backfill handler: one ingested object re-ingested under the use case's (new) contract version.

Input: ``{"manifest_key": str, "contract_version": str}`` (the live ingest manifest of the object; the
version the caller means, checked against the use-case file). Output: the object's
:class:`~shared.backfill.service.ObjectBackfill` (state, rows, whether it was already done). The CLI's
driver (``python -m cli backfill``) invokes it once per object with bounded concurrency; a Step Functions
Map can call it the same way.

Environment (validated once, at the first invocation): ``SLUICE_USECASE_FILE`` (relative to
``LAMBDA_TASK_ROOT``; default ``usecase.toml``), ``LAKE_BUCKET``, ``SLUICE_WORKDIR`` (default ``/tmp``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from shared.backfill.environment import BackfillEnvironment
from shared.backfill.service import backfill_object, require_version
from shared.environment import read_environment
from shared.lake.adapters import S3ObjectStore
from shared.usecase.settings import UseCase, load_usecase

logger = Logger()
tracer = Tracer()


class BackfillRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    manifest_key: str = Field(min_length=1)
    contract_version: str = Field(min_length=1)


@lru_cache(maxsize=1)
def settings() -> BackfillEnvironment:
    return read_environment(BackfillEnvironment, "backfill")


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
    request = BackfillRequest.model_validate(event)
    require_version(usecase(), request.contract_version)
    current = settings()
    outcome = backfill_object(
        request.manifest_key,
        usecase=usecase(),
        store=object_store(),
        lake_bucket=current.lake_bucket,
        workdir=current.workdir,
    )
    logger.info("backfilled", extra=outcome.model_dump(mode="json"))
    return outcome.model_dump(mode="json")
