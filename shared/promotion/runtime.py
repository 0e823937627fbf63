"""The environment of the promotion functions (one pydantic model, validated once) and the service built from it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.environment import UseCaseEnvironment, read_environment
from shared.promotion.service import PromotionService, build_service
from shared.usecase.settings import load_usecase


class PromotionFunctionSettings(UseCaseEnvironment):
    """``SLUICE_USECASE_FILE`` (relative to ``LAMBDA_TASK_ROOT``), ``DEPLOYMENT_TABLE``, ``LAKE_BUCKET``,
    ``MODEL_PACKAGE_GROUP``, ``ALARM_TOPIC_ARN``; heavy use cases add ``SAGEMAKER_ENDPOINT_NAME`` and
    ``SAGEMAKER_EXECUTION_ROLE_ARN`` (the role the endpoint's models run as)."""

    deployment_table: str = Field(min_length=3, alias="DEPLOYMENT_TABLE")
    lake_bucket: str = Field(min_length=3, alias="LAKE_BUCKET")
    model_package_group: str = Field(min_length=1, alias="MODEL_PACKAGE_GROUP")
    alarm_topic_arn: str = Field(pattern=r"^arn:", alias="ALARM_TOPIC_ARN")
    endpoint_name: str | None = Field(default=None, alias="SAGEMAKER_ENDPOINT_NAME")
    endpoint_role_arn: str | None = Field(default=None, alias="SAGEMAKER_EXECUTION_ROLE_ARN")


def load_settings(function: str) -> PromotionFunctionSettings:
    return read_environment(PromotionFunctionSettings, function)


def service_from_environment(function: str) -> PromotionService:
    """The service on AWS with this function's environment (boto3 clients created here, not at import)."""
    import boto3

    settings = load_settings(function)
    clients: dict[str, Any] = {}

    def client(name: str) -> Any:
        if name not in clients:
            clients[name] = boto3.client(name)
        return clients[name]

    return build_service(
        load_usecase(settings.usecase_path),
        deployment_table=settings.deployment_table,
        lake_bucket=settings.lake_bucket,
        model_package_group=settings.model_package_group,
        alarm_topic_arn=settings.alarm_topic_arn,
        clients=client,
        endpoint_name=settings.endpoint_name,
        endpoint_role_arn=settings.endpoint_role_arn,
    )
