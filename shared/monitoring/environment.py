"""The monitor function's environment: one pydantic model, validated once at its first invocation."""

from __future__ import annotations

from shared.environment import DeploymentEnvironment, LakeEnvironment, RegistryEnvironment, UseCaseEnvironment


class MonitorEnvironment(UseCaseEnvironment, DeploymentEnvironment, LakeEnvironment, RegistryEnvironment):
    """``SLUICE_USECASE_FILE`` (relative to ``LAMBDA_TASK_ROOT``), ``LAKE_BUCKET`` (predictions and feedback in,
    baselines of the served versions, ``monitoring/`` out), ``DEPLOYMENT_TABLE`` (which versions serve) and
    ``MODEL_PACKAGE_GROUP`` (their packages, which name their baselines)."""
