"""The scoring API's request and response bodies (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.scoring.feedback import FeedbackItem, FeedbackRequest

__all__ = [
    "ErrorResponse",
    "FeedbackAccepted",
    "FeedbackItem",
    "FeedbackRequest",
    "FieldError",
    "PredictRequest",
    "PredictResponse",
    "Prediction",
    "RecordErrors",
]


class PredictRequest(BaseModel):
    """One record, or a batch of records, to score."""

    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any] | None = Field(default=None, description="one record (a JSON object of the contract)")
    records: list[dict[str, Any]] | None = Field(default=None, min_length=1, description="a batch of records")

    @model_validator(mode="after")
    def _one_or_many(self) -> PredictRequest:
        if (self.record is None) == (self.records is None):
            raise ValueError('send either "record" or "records"')
        return self

    def __repr__(self) -> str:
        """Short: powertools logs the route's arguments (at debug level, but formats them on every request)."""
        if self.records is not None:
            return f"PredictRequest(records=<{len(self.records)} records>)"
        return "PredictRequest(record=<1 record>)"

    def all_records(self) -> list[dict[str, Any]]:
        return self.records if self.records is not None else [self.record or {}]


class FieldError(BaseModel):
    field: str
    reason: str


class RecordErrors(BaseModel):
    index: int
    errors: list[FieldError]


class Prediction(BaseModel):
    index: int
    entity_id: str | int | None
    score: float
    label: str | int | bool | None
    threshold: float
    model_version: int
    variant: Literal["champion", "challenger"]
    degraded: bool


class PredictResponse(BaseModel):
    request_id: str
    predictions: list[Prediction]
    errors: list[RecordErrors]


class FeedbackAccepted(BaseModel):
    accepted: int


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: a message, and field-level errors where records or labels were refused."""

    message: str
    errors: list[RecordErrors] | list[dict[str, Any]] = Field(default_factory=list)
