"""Batch start handler: an object created under the raw bucket's ``batch/`` prefix (EventBridge) → one execution
of the batch state machine, named after the job (a second upload of the same job finds the first)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.batch import runtime
from shared.batch.jobs import job_execution_name, request_from_upload
from shared.registry.adapters import SageMakerRegistry

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    settings = runtime.start_environment()
    usecase = runtime.usecase_at(str(settings.usecase_path))
    store = runtime.lake_store()
    detail = event["detail"]
    request = request_from_upload(usecase.name, detail["bucket"]["name"], detail["object"]["key"], read=store.get_bytes)
    name = job_execution_name(
        request,
        store=store,
        state_of=runtime.deployments(settings.deployment_table).get,
        versions=runtime.registry_versions(
            SageMakerRegistry(runtime.client("sagemaker")), store, settings.model_package_group
        ),
    )
    document = request.model_copy(update={"job_id": request.job_id or name}).model_dump(mode="json", exclude_none=True)
    arn, started = runtime.start_execution(settings.state_machine_arn, name, document)
    logger.info("batch job", extra={"execution_arn": arn, "started": started})
    return {"execution_arn": arn, "started": started}
