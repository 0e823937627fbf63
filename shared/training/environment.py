"""The environments of the training pipeline's functions (training set, register, trigger)."""

from __future__ import annotations

from pydantic import Field

from shared.environment import (
    USECASE_VARIABLE,
    FunctionEnvironment,
    LakeEnvironment,
    RegistryEnvironment,
    UseCaseEnvironment,
    WorkdirEnvironment,
)


class TrainingSetEnvironment(UseCaseEnvironment, LakeEnvironment):
    """``SLUICE_USECASE_FILE``, ``LAKE_BUCKET``."""


class RegisterEnvironment(UseCaseEnvironment, LakeEnvironment, RegistryEnvironment, WorkdirEnvironment):
    """``SLUICE_USECASE_FILE``, ``LAKE_BUCKET``, ``MODEL_PACKAGE_GROUP``, ``INFERENCE_IMAGE``, ``SLUICE_WORKDIR``."""

    inference_image: str = Field(min_length=1, alias="INFERENCE_IMAGE")


class TriggerEnvironment(FunctionEnvironment):
    """``STATE_MACHINE_ARN``, ``SLUICE_USECASE`` (the use-case name), ``DEBOUNCE_SECONDS`` (the execution-name
    time bucket; the event source's batching window)."""

    state_machine_arn: str = Field(pattern=r"^arn:", alias="STATE_MACHINE_ARN")
    usecase: str = Field(min_length=1, alias=USECASE_VARIABLE)
    debounce_seconds: int = Field(default=300, ge=0, alias="DEBOUNCE_SECONDS")
