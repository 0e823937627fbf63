"""The backfill functions' environments: pydantic models, validated once at each function's first invocation."""

from __future__ import annotations

from shared.environment import DeploymentEnvironment, LakeEnvironment, UseCaseEnvironment, WorkdirEnvironment


class BackfillEnvironment(UseCaseEnvironment, LakeEnvironment, WorkdirEnvironment):
    """``SLUICE_USECASE_FILE`` (the use case with the new contract version), ``LAKE_BUCKET``, ``SLUICE_WORKDIR``."""


class BackfillPlanEnvironment(UseCaseEnvironment, LakeEnvironment):
    """``backfill_plan``: the use-case file (the version it carries), the lake (manifests in, the run's items out)."""


class BackfillFinishEnvironment(LakeEnvironment, DeploymentEnvironment):
    """``backfill_finish``: the lake (manifests, the run's failures, the pointer) and the audit history's table."""
