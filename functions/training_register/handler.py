"""Register handler (after the training job completed): gate the model and register it.

Input: ``{"run_id", "job_name", "model_data_url"}`` (the job's ``ModelArtifacts.S3ModelArtifacts``).
Output: ``{"package_arn", "version", "approval_status", "model_prefix"}``. A model that misses the gate
raises :class:`~shared.registry.exceptions.GateFailedError` (the state machine catches it and notifies).

Environment: ``SLUICE_USECASE_FILE``, ``LAKE_BUCKET``, ``MODEL_PACKAGE_GROUP``, ``INFERENCE_IMAGE``,
``SLUICE_WORKDIR`` (default ``/tmp``), ``INFERENCE_PROGRAM`` and ``INFERENCE_CODE_URL`` where an endpoint serves
the models (the package container's ``SAGEMAKER_PROGRAM`` / ``SAGEMAKER_SUBMIT_DIRECTORY``), plus powertools' own.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from shared.environment import read_environment
from shared.lake.adapters import S3ObjectStore
from shared.registry.adapters import SageMakerRegistry
from shared.registry.gate import GateThresholds
from shared.registry.service import RegistrationRequest, register_trained_model
from shared.training.environment import RegisterEnvironment
from shared.usecase.settings import UseCase, load_usecase

logger = Logger()
tracer = Tracer()


class RegisterEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str = Field(min_length=1)
    job_name: str = Field(min_length=1)
    model_data_url: str = Field(pattern=r"^s3://")


@lru_cache(maxsize=1)
def settings() -> RegisterEnvironment:
    return read_environment(RegisterEnvironment, "register")


@lru_cache(maxsize=1)
def usecase() -> UseCase:
    return load_usecase(settings().usecase_path)


@lru_cache(maxsize=1)
def object_store() -> S3ObjectStore:
    import boto3

    return S3ObjectStore(boto3.client("s3"))


@lru_cache(maxsize=1)
def registry() -> SageMakerRegistry:
    import boto3

    return SageMakerRegistry(boto3.client("sagemaker"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    job = RegisterEvent.model_validate(event)
    current, model = settings(), usecase().model
    registered = register_trained_model(
        RegistrationRequest(
            usecase=usecase().name,
            run_id=job.run_id,
            job_name=job.job_name,
            model_data_url=job.model_data_url,
            lake_bucket=current.lake_bucket,
            group_name=current.model_package_group,
            image_uri=current.inference_image,
            approval=model.approval,
            thresholds=GateThresholds(min_auc=model.min_auc, max_ece=model.max_ece),
            inference_program=current.inference_program,
            inference_code_url=current.inference_code_url,
        ),
        store=object_store(),
        registry=registry(),
        workdir=current.workdir,
    )
    logger.info("model registered", extra=asdict(registered))
    return asdict(registered)
