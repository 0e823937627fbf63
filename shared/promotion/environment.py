"""The environments of the promotion functions (the promotion step, the rollback): one pydantic model each."""

from __future__ import annotations

from pydantic import Field

from shared.environment import (
    ENDPOINT_NAME_VARIABLE,
    AlarmTopicEnvironment,
    DeploymentEnvironment,
    LakeEnvironment,
    RegistryEnvironment,
    UseCaseEnvironment,
)


class PromotionEnvironment(
    UseCaseEnvironment, DeploymentEnvironment, LakeEnvironment, RegistryEnvironment, AlarmTopicEnvironment
):
    """``SLUICE_USECASE_FILE`` (relative to ``LAMBDA_TASK_ROOT``), ``DEPLOYMENT_TABLE``, ``LAKE_BUCKET``,
    ``MODEL_PACKAGE_GROUP``, ``ALARM_TOPIC_ARN``; heavy use cases add ``SAGEMAKER_ENDPOINT_NAME`` and
    ``SAGEMAKER_EXECUTION_ROLE_ARN`` (the role the endpoint's models run as)."""

    endpoint_name: str | None = Field(default=None, alias=ENDPOINT_NAME_VARIABLE)
    endpoint_role_arn: str | None = Field(default=None, alias="SAGEMAKER_EXECUTION_ROLE_ARN")


class RollbackEnvironment(PromotionEnvironment):
    """The rollback function's: the promotion's, and what the stack also tells it about the promotion state
    machine and the alarm name prefixes (the function does not read these yet: it finds the execution in the
    promotion record and tells alarms by :mod:`shared.promotion.alarms`)."""

    promotion_state_machine_arn: str | None = Field(default=None, alias="PROMOTION_STATE_MACHINE_ARN")
    candidate_alarm_prefix: str | None = Field(default=None, alias="CANDIDATE_ALARM_PREFIX")
    watch_alarm_prefix: str | None = Field(default=None, alias="WATCH_ALARM_PREFIX")
