"""The batch steps wired to AWS from a function's environment (boto3 clients on first use, never at import)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from shared.batch.adapters import BatchStore
from shared.batch.environment import (
    BatchFinishEnvironment,
    BatchPlanEnvironment,
    BatchStartEnvironment,
    BatchWorkerEnvironment,
)
from shared.batch.exceptions import UnknownModelVersionError
from shared.batch.planning import ModelLookup
from shared.batch.worker import BatchModels
from shared.deployment.adapters import DeploymentStore
from shared.deployment.state import ModelRef, model_ref_from_package
from shared.environment import read_environment
from shared.lake.layout import parse_s3_uri
from shared.registry.adapters import SageMakerRegistry
from shared.registry.package import metrics_uri
from shared.usecase.settings import UseCase, load_usecase

EXECUTION_EXISTS = "ExecutionAlreadyExists"
EXECUTION_MISSING = "ExecutionDoesNotExist"


@lru_cache(maxsize=8)
def client(service: str) -> Any:
    import boto3

    return boto3.client(service)


def lake_store() -> BatchStore:
    from shared.lake.adapters import S3ObjectStore

    return S3ObjectStore(client("s3"))


@lru_cache(maxsize=1)
def plan_environment() -> BatchPlanEnvironment:
    return read_environment(BatchPlanEnvironment, "batch_plan")


@lru_cache(maxsize=1)
def worker_environment() -> BatchWorkerEnvironment:
    return read_environment(BatchWorkerEnvironment, "batch_worker")


@lru_cache(maxsize=1)
def finish_environment() -> BatchFinishEnvironment:
    return read_environment(BatchFinishEnvironment, "batch_finish")


@lru_cache(maxsize=1)
def start_environment() -> BatchStartEnvironment:
    return read_environment(BatchStartEnvironment, "batch_start")


@lru_cache(maxsize=2)
def usecase_at(path: str) -> UseCase:
    from pathlib import Path

    return load_usecase(Path(path))


def registry_versions(registry: SageMakerRegistry, store: BatchStore, group: str) -> ModelLookup:
    """A version's :class:`ModelRef` from the registry (its package and metrics.json)."""

    def lookup(version: int) -> ModelRef:
        for summary in registry.packages(group):
            if int(summary.get("ModelPackageVersion", 0)) == version:
                package = registry.describe(summary["ModelPackageArn"])
                bucket, key = parse_s3_uri(metrics_uri(package))
                return model_ref_from_package(package, json.loads(store.get_bytes(bucket, key)))
        raise UnknownModelVersionError(f"no model version {version} in {group}")

    return lookup


def deployments(table: str) -> DeploymentStore:
    return DeploymentStore(client("dynamodb"), table)


@lru_cache(maxsize=1)
def worker_models() -> BatchModels:
    settings = worker_environment()
    usecase = usecase_at(str(settings.usecase_path))
    return BatchModels(
        store=lake_store(),
        bucket=settings.lake_bucket,
        feature_names=frozenset(c.name for c in usecase.contract.features),
    )


def start_execution(state_machine_arn: str, name: str, document: dict[str, Any]) -> tuple[str, bool]:
    """Start the execution ``name``; when it exists already, its ARN and ``False`` (a job started twice)."""
    from botocore.exceptions import ClientError

    sfn = client("stepfunctions")
    arn = execution_arn(state_machine_arn, name)
    try:  # StartExecution with a running execution's name and input answers that execution, not an error
        sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != EXECUTION_MISSING:
            raise
    else:
        return arn, False
    try:
        return sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(document))[
            "executionArn"
        ], True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != EXECUTION_EXISTS:
            raise
    return arn, False


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:…:stateMachine:<machine>`` + name → ``arn:…:execution:<machine>:<name>``."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"
