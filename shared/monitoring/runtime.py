"""The monitoring service built from the monitor function's environment (:class:`MonitorEnvironment`, read once)."""

from __future__ import annotations

from shared.clients import client_factory
from shared.environment import read_environment
from shared.monitoring.environment import MonitorEnvironment
from shared.monitoring.service import MonitoringService
from shared.usecase.settings import load_usecase


def load_settings(function: str) -> MonitorEnvironment:
    return read_environment(MonitorEnvironment, function)


def service_from_environment(function: str = "monitor") -> MonitoringService:
    """The service on AWS with this function's environment (boto3 clients created here, not at import)."""
    from shared.deployment.adapters import DeploymentStore
    from shared.lake.adapters import S3ObjectStore
    from shared.registry.adapters import SageMakerRegistry

    settings = load_settings(function)
    client = client_factory()

    return MonitoringService(
        load_usecase(settings.usecase_path),
        store=S3ObjectStore(client("s3")),
        bucket=settings.lake_bucket,
        deployments=DeploymentStore(client("dynamodb"), settings.deployment_table),
        registry=SageMakerRegistry(client("sagemaker")),
    )
