"""Score handler: the scoring API (API Gateway REST, proxy events) → :class:`shared.scoring.engine.ScoringEngine`.

Routes: ``POST /v1/{usecase}/predict``, ``POST /v1/{usecase}/feedback``, ``GET /v1/{usecase}/openapi.json``.
Errors become HTTP answers in one place (:func:`_error_response` and the exception handlers below).

Environment (validated once): ``SLUICE_USECASE_FILE`` (relative to ``LAMBDA_TASK_ROOT``; default
``usecase.toml``), ``DEPLOYMENT_TABLE``, ``LAKE_BUCKET``, ``PREDICTION_LOG_QUEUE_URL``, ``REVIEW_QUEUE_URL``,
``IDEMPOTENCY_TABLE``, ``SAGEMAKER_ENDPOINT_NAME`` (heavy use cases only), plus powertools' own.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, field_validator

from shared import telemetry
from shared.deployment import DeploymentStore
from shared.exceptions import SettingsError
from shared.runtime import UseCaseEnvironment, read_environment
from shared.scoring.api import ErrorResponse, FeedbackAccepted, FeedbackRequest, PredictRequest, PredictResponse
from shared.scoring.breaker import CircuitBreaker
from shared.scoring.endpoint import EndpointScorer, endpoint_client_config
from shared.scoring.engine import ScoringEngine
from shared.scoring.exceptions import (
    InvalidFeedbackError,
    InvalidRecordsError,
    ServiceUnavailableError,
    TooManyRecordsError,
    UnknownUseCaseError,
)
from shared.scoring.feedback import record_feedback
from shared.scoring.models import ModelCache
from shared.scoring.prediction_log import PredictionLog, SqsMessageSender, queue_client_config
from shared.storage import S3ObjectStore
from shared.usecase import UseCase, load_usecase

IDEMPOTENCY_TTL_SECONDS = 3600
API_TITLE = "Sluice scoring API"

logger = Logger()
tracer = Tracer(auto_patch=False)
"""botocore is patched when the first AWS client is built (:func:`_boto3`), so a cold start imports neither
boto3 nor the X-Ray patches of libraries this function never uses (``patch_all`` would import them all)."""
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)


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


# --- built once per process, on first use ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _boto3() -> Any:
    """boto3, imported on first use (not at cold start), with X-Ray tracing of its calls."""
    tracer.patch(["botocore"])
    import boto3

    return boto3


@lru_cache(maxsize=1)
def settings() -> ScoreSettings:
    return read_environment(ScoreSettings, "score")


@lru_cache(maxsize=1)
def usecase() -> UseCase:
    return load_usecase(settings().usecase_path)


@lru_cache(maxsize=1)
def model_cache() -> ModelCache:
    boto3 = _boto3()
    current, serving = settings(), usecase()
    return ModelCache(
        usecase=serving.name,
        deployments=DeploymentStore(boto3.client("dynamodb"), current.deployment_table),
        files=object_store(),
        bucket=current.lake_bucket,
        refresh_seconds=serving.serving.deployment_cache_seconds,
        feature_names=frozenset(c.name for c in serving.contract.features),
    )


@lru_cache(maxsize=1)
def object_store() -> S3ObjectStore:
    boto3 = _boto3()
    return S3ObjectStore(boto3.client("s3"))


@lru_cache(maxsize=1)
def endpoint_scorer() -> EndpointScorer | None:
    name = settings().sagemaker_endpoint_name
    if name is None:
        return None
    boto3 = _boto3()
    serving = usecase().serving
    client = boto3.client("sagemaker-runtime", config=endpoint_client_config(serving.endpoint_timeout_ms))
    breaker = CircuitBreaker(
        failure_threshold=serving.breaker_failure_threshold, reset_seconds=serving.breaker_reset_seconds
    )
    return EndpointScorer(client, name, max_attempts=serving.endpoint_max_attempts, breaker=breaker)


@lru_cache(maxsize=1)
def prediction_log() -> PredictionLog | None:
    current = settings()
    if current.prediction_log_queue_url is None and current.review_queue_url is None:
        return None
    boto3 = _boto3()
    return PredictionLog(
        SqsMessageSender(boto3.client("sqs", config=queue_client_config())),
        usecase=usecase().name,
        log_queue_url=current.prediction_log_queue_url,
        review_queue_url=current.review_queue_url,
        review_band=usecase().serving.review_band,
    )


@lru_cache(maxsize=1)
def engine() -> ScoringEngine:
    return ScoringEngine(
        usecase=usecase(),
        models=model_cache(),
        endpoint=endpoint_scorer(),
        prediction_log=prediction_log(),
        logger=logger,
    )


@lru_cache(maxsize=1)
def idempotency_config() -> Any:
    """powertools' idempotency (which imports boto3) is loaded by the first request with an Idempotency-Key."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath="[usecase, key]",
        payload_validation_jmespath="body_sha256",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    )


class IdempotentPredict(BaseModel):
    """What makes two predict requests the same: the use case and the client's Idempotency-Key."""

    usecase: str
    key: str
    body_sha256: str
    """A retried key with a different body is refused (409), not answered with another request's scores."""


@lru_cache(maxsize=1)
def idempotent_score() -> Any:
    """:func:`score` wrapped once per process in powertools idempotency (DynamoDB, partition key ``id``)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    app.exception_handler(IdempotencyValidationError)(_key_reused)
    app.exception_handler(IdempotencyAlreadyInProgressError)(_key_in_flight)
    _boto3()
    table = settings().idempotency_table
    if table is None:
        raise SettingsError("IDEMPOTENCY_TABLE is not set: requests with an Idempotency-Key cannot be honoured")
    persistence = DynamoDBPersistenceLayer(table_name=table, key_attr="id")

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=idempotency_config())
    def score_once(
        *,
        request: IdempotentPredict,  # noqa: ARG001 - the idempotency key
        records: list[dict[str, Any]],
        request_id: str,
    ) -> dict[str, Any]:
        return score(records, request_id=request_id)

    return score_once


# --- the domain call ------------------------------------------------------------------------------------------------


def score(records: list[dict[str, Any]], *, request_id: str) -> dict[str, Any]:
    outcome = engine().predict(records, request_id=request_id)
    logger.append_keys(variant=",".join(outcome.variants))
    telemetry.publish(outcome.telemetry, metrics)
    logger.info(
        "scored",
        extra={
            "records": len(records),
            "predictions": len(outcome.body["predictions"]),
            "invalid_records": len(outcome.body["errors"]),
            "model_versions": sorted({p["model_version"] for p in outcome.body["predictions"]}),
            "degraded": any(p["degraded"] for p in outcome.body["predictions"]),
            "shadow_scored": outcome.shadow_scored,
            "prediction_log_errors": outcome.log_failures,
        },
    )
    return outcome.body


def _served_usecase(name: str) -> UseCase:
    served = usecase()
    if name != served.name:
        raise UnknownUseCaseError(f"use case {name!r} is not served here (this API serves {served.name!r})")
    return served


def _request_id() -> str:
    return app.current_event.request_context.request_id or app.lambda_context.aws_request_id


# --- routes ---------------------------------------------------------------------------------------------------------

ERROR_RESPONSES: dict[int, OpenAPIResponse] = {
    code: {"description": description, "content": {"application/json": {"model": ErrorResponse}}}
    for code, description in {
        400: "malformed body",
        404: "unknown use case",
        413: "too many records",
        422: "records or labels the contract refuses, with field-level reasons",
        503: "no model deployed, or the model endpoint is down without fallback",
    }.items()
}


PREDICT_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "the scores, and field-level errors of the records not scored",
        "content": {"application/json": {"model": PredictResponse}},
    },
    **ERROR_RESPONSES,
}


@app.post("/v1/<usecase_name>/predict", summary="Score one record or a batch", responses=PREDICT_RESPONSES)
def predict(usecase_name: str, request: Annotated[PredictRequest, Body()]) -> Response[Any]:
    """The body is :class:`PredictResponse`, serialized once here: the engine builds it from the contract's
    validated records and its own scores (a shape the unit tests pin), so powertools' response validation of
    a 1,000-prediction body (a pydantic round-trip costing more than the model) is not run on it."""
    _served_usecase(usecase_name)
    records = request.all_records()
    request_id = _request_id()
    logger.append_keys(request_id=request_id, usecase=usecase_name)
    key = app.current_event.get_header_value("Idempotency-Key", case_sensitive=False)
    body: dict[str, Any]
    if not key:
        body = score(records, request_id=request_id)
    else:
        body_sha256 = hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()
        request_key = IdempotentPredict(usecase=usecase_name, key=key, body_sha256=body_sha256)
        scorer = idempotent_score()
        idempotency_config().register_lambda_context(app.lambda_context)
        body = scorer(request=request_key, records=records, request_id=request_id)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=_json(body))


def _json(body: Any) -> str:
    """JSON as powertools writes it (compact separators)."""
    return json.dumps(body, separators=(",", ":"), default=str)


@app.post("/v1/<usecase_name>/feedback", summary="Send observed labels", responses=ERROR_RESPONSES)
def feedback(usecase_name: str, request: Annotated[FeedbackRequest, Body()]) -> Response[FeedbackAccepted]:
    served = _served_usecase(usecase_name)
    logger.append_keys(request_id=_request_id(), usecase=usecase_name)
    accepted = record_feedback(
        request,
        usecase=served.name,
        contract=served.contract,
        writer=object_store(),
        bucket=settings().lake_bucket,
        received_at=datetime.now(UTC),
    )
    logger.info("feedback accepted", extra={"accepted": accepted})
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=FeedbackAccepted(accepted=accepted)
    )


@app.get("/v1/<usecase_name>/openapi.json", include_in_schema=False)
def openapi(usecase_name: str) -> Response[Any]:
    _served_usecase(usecase_name)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=_openapi_document())


@lru_cache(maxsize=1)
def _openapi_document() -> str:
    served = usecase()
    return app.get_openapi_json_schema(
        title=API_TITLE, version=served.contract.version, description=f"Scores {served.name}: {served.description}"
    )


# --- errors → HTTP, in one place -------------------------------------------------------------------------------------


def _error_response(status: int, message: str, errors: list[Any] | None = None) -> Response[Any]:
    logger.info("request refused", extra={"status": status, "reason": message})
    body = json.dumps({"message": message, "errors": errors or []}, default=str)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(RequestValidationError)
def _malformed(exc: RequestValidationError) -> Response[Any]:
    reasons = [
        {"field": ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "<body>", "reason": error.get("msg")}
        for error in exc.errors()
    ]
    return _error_response(400, "the request body is malformed", reasons)


@app.exception_handler(UnknownUseCaseError)
def _unknown_usecase(exc: UnknownUseCaseError) -> Response[Any]:
    return _error_response(404, str(exc))


@app.exception_handler(TooManyRecordsError)
def _too_many(exc: TooManyRecordsError) -> Response[Any]:
    return _error_response(413, str(exc))


@app.exception_handler(InvalidRecordsError)
def _invalid_records(exc: InvalidRecordsError) -> Response[Any]:
    return _error_response(422, "no record could be scored", exc.errors)


@app.exception_handler(InvalidFeedbackError)
def _invalid_feedback(exc: InvalidFeedbackError) -> Response[Any]:
    return _error_response(422, "labels the contract does not allow", exc.errors)


@app.exception_handler(ServiceUnavailableError)
def _unavailable(exc: ServiceUnavailableError) -> Response[Any]:
    return _error_response(503, exc.reason)


def _key_reused(exc: Exception) -> Response[Any]:  # noqa: ARG001 - the handler's signature
    """Registered for ``IdempotencyValidationError`` by :func:`idempotent_score` (idempotency is imported lazily)."""
    return _error_response(409, "this Idempotency-Key was used with another body")


def _key_in_flight(exc: Exception) -> Response[Any]:  # noqa: ARG001 - the handler's signature
    """Registered for ``IdempotencyAlreadyInProgressError`` by :func:`idempotent_score`."""
    return _error_response(409, "a request with this Idempotency-Key is still being scored; retry later")


# --- the entry point ------------------------------------------------------------------------------------------------


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
