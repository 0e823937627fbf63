"""The one way Sluice builds a Lambda function: Python 3.12 on arm64, tracing on, its own log group,
the handler ``handler.lambda_handler`` with the use-case file bundled beside it, its own role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra.bundling import ARCHITECTURE, RUNTIME, function_code
from infra.nag import acknowledge

HANDLER = "handler.lambda_handler"
RUNTIME_PIN_REASON = (
    "Pinned to Python 3.12: the dependency layer's wheels are built for CPython 3.12 (cp312, arm64); "
    "moving the runtime means rebuilding and re-testing that layer."
)


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    source_dir: Path,
    usecase_file: Path,
    description: str,
    memory_size_mb: int,
    timeout: Duration,
    layers: list[lambda_.ILayerVersion],
    environment: dict[str, str],
    log_retention: logs.RetentionDays,
    role: iam.IRole | None = None,
    log_group_id: str | None = None,
    **options: Any,
) -> lambda_.Function:
    """A function with its own least-privilege role (created empty unless given) and log group."""
    if role is None:
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )
    log_group = logs.LogGroup(scope, log_group_id or f"{construct_id}LogGroup", retention=log_retention)
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        code=function_code(source_dir, usecase_file=usecase_file),
        handler=HANDLER,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        memory_size=memory_size_mb,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        role=role,
        log_group=log_group,
        layers=layers,
        environment=environment,
        **options,
    )
    acknowledge(function, "AwsSolutions-L1", RUNTIME_PIN_REASON)
    return function


def add_role_statements(function: lambda_.Function, statements: list[iam.PolicyStatement]) -> IConstruct:
    """Add ``statements`` to the role of a function :func:`python_function` built; return the role's default
    policy (the construct cdk-nag findings on those statements are acknowledged on)."""
    role = function.role
    assert role is not None
    for statement in statements:
        role.add_to_principal_policy(statement)
    return role.node.find_child("DefaultPolicy")
