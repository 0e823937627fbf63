"""The scoring API's request and response bodies, and the OpenAPI document's schemas of them.

The score function imports this module only when it serves the document or a feedback request: the
predict path decodes and encodes its bodies with :mod:`shared.scoring.wire`, and building these
pydantic models is not worth a cold start. :func:`complete_openapi_document` adds the bodies to the
document powertools generates from the routes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.scoring.checks import scoring_record_model
from shared.scoring.feedback import FeedbackItem, FeedbackRequest
from shared.usecase.settings import UseCase

__all__ = [
    "ErrorResponse",
    "FeedbackAccepted",
    "FeedbackItem",
    "FeedbackRequest",
    "FieldError",
    "InferResponse",
    "PredictRequest",
    "PredictResponse",
    "Prediction",
    "RecordErrors",
    "complete_openapi_document",
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


class InferOutput(BaseModel):
    """One answer column of a v2 infer response."""

    name: Literal["index", "entity_id", "score", "decision", "model_version", "variant"]
    datatype: str
    shape: list[int]
    data: list[Any]


class InferResponse(BaseModel):
    """The Open Inference Protocol's response: the scored rows by column, and the refused rows' errors."""

    model_name: str
    model_version: str = Field(description="the served model versions, comma-separated")
    id: str = Field(description="the request's id, or this request's id when it sent none")
    parameters: dict[str, Any]
    outputs: list[InferOutput]
    errors: list[RecordErrors]


class FeedbackAccepted(BaseModel):
    accepted: int


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: a message, and field-level errors where records or labels were refused."""

    message: str
    errors: list[RecordErrors] | list[dict[str, Any]] = Field(default_factory=list)


PREDICT_PATH = "/v1/{usecase_name}/predict"
INFER_PATH = "/v2/models/{usecase_name}/infer"
FEEDBACK_PATH = "/v1/{usecase_name}/feedback"
_REF = "#/components/schemas/{model}"


def _schema_ref(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> dict[str, Any]:
    schemas.update(schema.pop("$defs", {}))
    schemas[name] = schema
    return {"content": {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}}


def predict_request_schema(usecase: UseCase, schemas: dict[str, Any]) -> dict[str, Any]:
    """``PredictRequest`` with the contract's ``ScoringRecord`` (what the wire decoder accepts), into ``schemas``."""
    record = scoring_record_model(usecase.contract).model_json_schema(ref_template=_REF)
    item = _schema_ref(schemas, "ScoringRecord", record)["content"]["application/json"]["schema"]
    request = {
        "title": "PredictRequest",
        "description": 'One record ("record") or a batch ("records") to score: exactly one of the two.',
        "type": "object",
        "properties": {
            "record": item,
            "records": {"type": "array", "items": item, "minItems": 1, "maxItems": usecase.serving.max_batch_records},
        },
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }
    return _schema_ref(schemas, "PredictRequest", request)


def infer_request_schema(usecase: UseCase, schemas: dict[str, Any]) -> dict[str, Any]:
    """The v2 infer body: one input per contract column, its datatype among those its type allows."""
    from shared.scoring.columnar import V2_DATATYPES

    inputs = []
    for column in usecase.contract.columns:
        inputs.append(
            {
                "type": "object",
                "title": f"Input {column.name}",
                "properties": {
                    "name": {"const": column.name},
                    "shape": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1},
                        "minItems": 1,
                        "maxItems": 2,
                    },
                    "datatype": {"enum": list(V2_DATATYPES[column.type])},
                    "data": {"type": "array", "minItems": 1, "maxItems": usecase.serving.max_batch_records},
                    "parameters": {"type": "object"},
                },
                "required": ["name", "shape", "datatype", "data"],
                "additionalProperties": False,
            }
        )
    request = {
        "title": "InferRequest",
        "description": (
            "Open Inference Protocol (v2) request: one input per contract column, shape [N] or [N, 1], every "
            "input of the same N; a nullable column may hold null or be left out. Rows are checked as records are."
        ),
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"oneOf": inputs}, "minItems": 1},
            "outputs": {"type": "array"},
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }
    return _schema_ref(schemas, "InferRequest", request)


def complete_openapi_document(document: dict[str, Any], usecase: UseCase) -> dict[str, Any]:
    """The routes' document with the request bodies and the responses' schemas filled in."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    error = _schema_ref(schemas, "ErrorResponse", ErrorResponse.model_json_schema(ref_template=_REF))
    bodies = {
        PREDICT_PATH: (
            predict_request_schema(usecase, schemas),
            {200: _schema_ref(schemas, "PredictResponse", PredictResponse.model_json_schema(ref_template=_REF))},
        ),
        INFER_PATH: (
            infer_request_schema(usecase, schemas),
            {200: _schema_ref(schemas, "InferResponse", InferResponse.model_json_schema(ref_template=_REF))},
        ),
        FEEDBACK_PATH: (
            _schema_ref(schemas, "FeedbackRequest", FeedbackRequest.model_json_schema(ref_template=_REF)),
            {202: _schema_ref(schemas, "FeedbackAccepted", FeedbackAccepted.model_json_schema(ref_template=_REF))},
        ),
    }
    for path, (request, successes) in bodies.items():
        operation = document["paths"][path]["post"]
        operation["requestBody"] = {"required": True, **request}
        for code, response in operation.get("responses", {}).items():
            response.update(successes.get(int(code), error))
    return document
