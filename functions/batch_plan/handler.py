"""Batch plan handler: a job request → its plan and chunk list in the lake (``plan_and_write``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.batch import runtime
from shared.batch.jobs import plan_and_write
from shared.batch.types import JobRequest
from shared.registry.adapters import SageMakerRegistry

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    settings = runtime.plan_environment()
    request = JobRequest.model_validate(event)
    store = runtime.lake_store()
    planned = plan_and_write(
        request,
        usecase=runtime.usecase_at(str(settings.usecase_path)),
        store=store,
        lake_bucket=settings.lake_bucket,
        state_of=runtime.deployments(settings.deployment_table).get,
        versions=runtime.registry_versions(
            SageMakerRegistry(runtime.client("sagemaker")), store, settings.model_package_group
        ),
        now=datetime.now(UTC),
    )
    logger.info("planned", extra={"job_id": planned.job_id, "chunks": planned.chunks})
    return planned.model_dump(mode="json")
