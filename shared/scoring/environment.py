"""The environments of the scoring functions (score, prediction log): one pydantic model each, validated once."""

from __future__ import annotations

from pydantic import Field, field_validator

from shared.environment import (
    ENDPOINT_NAME_VARIABLE,
    IDEMPOTENCY_TABLE_VARIABLE,
    DeploymentEnvironment,
    LakeEnvironment,
    UseCaseEnvironment,
)


class ScoreSettings(UseCaseEnvironment, LakeEnvironment, DeploymentEnvironment):
    """The score function's environment."""

    prediction_log_queue_url: str | None = Field(default=None, alias="PREDICTION_LOG_QUEUE_URL")
    review_queue_url: str | None = Field(default=None, alias="REVIEW_QUEUE_URL")
    idempotency_table: str | None = Field(default=None, alias=IDEMPOTENCY_TABLE_VARIABLE)
    sagemaker_endpoint_name: str | None = Field(default=None, alias=ENDPOINT_NAME_VARIABLE)

    @field_validator("prediction_log_queue_url", "review_queue_url", "idempotency_table", "sagemaker_endpoint_name")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None


class PredictionLogEnvironment(UseCaseEnvironment, LakeEnvironment):
    """The prediction-log function's environment (it reads only ``LAKE_BUCKET``; the stack bundles the use case
    with every scoring function)."""
