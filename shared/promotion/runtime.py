"""The promotion service built from a promotion function's environment (:class:`PromotionEnvironment`, read once)."""

from __future__ import annotations

from shared.clients import client_factory
from shared.environment import read_environment
from shared.promotion.environment import PromotionEnvironment
from shared.promotion.service import PromotionService, build_service
from shared.usecase.settings import load_usecase


def load_settings(function: str) -> PromotionEnvironment:
    return read_environment(PromotionEnvironment, function)


def service_from_environment(function: str) -> PromotionService:
    """The service on AWS with this function's environment (boto3 clients created here, not at import)."""
    settings = load_settings(function)
    client = client_factory()

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
