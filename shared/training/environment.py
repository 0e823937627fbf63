"""The environments of the training pipeline's functions (training set, register, trigger, retrain)."""

from __future__ import annotations

from pydantic import Field

from shared.environment import (
    USECASE_VARIABLE,
    AlarmTopicEnvironment,
    DeploymentEnvironment,
    FunctionEnvironment,
    LakeEnvironment,
    RegistryEnvironment,
    UseCaseEnvironment,
    WorkdirEnvironment,
)


class TrainingSetEnvironment(UseCaseEnvironment, LakeEnvironment):
    """``SLUICE_USECASE_FILE``, ``LAKE_BUCKET``."""


class RegisterEnvironment(UseCaseEnvironment, LakeEnvironment, RegistryEnvironment, WorkdirEnvironment):
    """``SLUICE_USECASE_FILE``, ``LAKE_BUCKET``, ``MODEL_PACKAGE_GROUP``, ``INFERENCE_IMAGE``, ``SLUICE_WORKDIR``,
    and, where an endpoint serves the models, ``INFERENCE_PROGRAM`` and ``INFERENCE_CODE_URL``."""

    inference_image: str = Field(min_length=1, alias="INFERENCE_IMAGE")
    """The package's container image: the endpoint's serving image (the training image without an endpoint)."""
    inference_program: str | None = Field(default=None, min_length=1, alias="INFERENCE_PROGRAM")
    """The container's ``SAGEMAKER_PROGRAM`` (unset without an endpoint: the package has no environment)."""
    inference_code_url: str | None = Field(default=None, pattern=r"^s3://", alias="INFERENCE_CODE_URL")
    """The container's ``SAGEMAKER_SUBMIT_DIRECTORY``: the endpoint's inference code archive."""


class TrainingStateMachineEnvironment(FunctionEnvironment):
    """A function that starts runs of the training state machine: ``STATE_MACHINE_ARN``."""

    state_machine_arn: str = Field(pattern=r"^arn:", alias="STATE_MACHINE_ARN")


class TriggerEnvironment(TrainingStateMachineEnvironment):
    """``STATE_MACHINE_ARN``, ``SLUICE_USECASE`` (the use-case name), ``DEBOUNCE_SECONDS`` (the execution-name
    time bucket; the event source's batching window)."""

    usecase: str = Field(min_length=1, alias=USECASE_VARIABLE)
    debounce_seconds: int = Field(default=300, ge=0, alias="DEBOUNCE_SECONDS")


class RetrainEnvironment(
    UseCaseEnvironment, TrainingStateMachineEnvironment, DeploymentEnvironment, LakeEnvironment, AlarmTopicEnvironment
):
    """The retrain function's: ``SLUICE_USECASE_FILE`` (its ``[monitoring]`` cooldown), ``STATE_MACHINE_ARN``,
    ``DEPLOYMENT_TABLE`` (the audit history), ``LAKE_BUCKET`` (the latest monitoring report) and
    ``ALARM_TOPIC_ARN`` (where the report's alert sentences go)."""
