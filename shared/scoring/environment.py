"""The score function's environment: one pydantic model, validated once at the first request."""

from __future__ import annotations

from pydantic import Field, field_validator

from shared.environment import UseCaseEnvironment


class ScoreSettings(UseCaseEnvironment):
    """The score function's environment."""

    deployment_table: str = Field(min_length=3, alias="DEPLOYMENT_TABLE")
    lake_bucket: str = Field(min_length=3, alias="LAKE_BUCKET")
    prediction_log_queue_url: str | None = Field(default=None, alias="PREDICTION_LOG_QUEUE_URL")
    review_queue_url: str | None = Field(default=None, alias="REVIEW_QUEUE_URL")
    idempotency_table: str | None = Field(default=None, alias="IDEMPOTENCY_TABLE")
    sagemaker_endpoint_name: str | None = Field(default=None, alias="SAGEMAKER_ENDPOINT_NAME")

    @field_validator("prediction_log_queue_url", "review_queue_url", "idempotency_table", "sagemaker_endpoint_name")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None
