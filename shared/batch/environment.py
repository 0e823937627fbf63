"""The environments of the batch functions (validated once, at their first invocation)."""

from __future__ import annotations

from pydantic import Field

from shared.environment import (
    DeploymentEnvironment,
    LakeEnvironment,
    RegistryEnvironment,
    UseCaseEnvironment,
    WorkdirEnvironment,
)


class BatchPlanEnvironment(UseCaseEnvironment, LakeEnvironment, DeploymentEnvironment, RegistryEnvironment):
    """``batch_plan``: lists the job's objects, pins the model (deployment state or registry), writes the plan."""


class BatchWorkerEnvironment(UseCaseEnvironment, LakeEnvironment, WorkdirEnvironment):
    """``batch_worker``: scores one chunk with the job's pinned model (its file read from the lake)."""


class BatchFinishEnvironment(LakeEnvironment):
    """``batch_finish``: folds the job's chunk results into its manifest."""


class BatchStartEnvironment(UseCaseEnvironment, DeploymentEnvironment, RegistryEnvironment, LakeEnvironment):
    """``batch_start``: an upload under the raw bucket's ``batch/`` prefix → one execution named after the job."""

    state_machine_arn: str = Field(pattern=r"^arn:", alias="BATCH_STATE_MACHINE_ARN")
