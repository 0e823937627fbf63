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
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from shared.deployment.adapters import DeploymentStore
from shared.environment import read_environment
from shared.exceptions import SettingsError
from shared.scoring import telemetry
from shared.scoring.engine import ScoringEngine
from shared.scoring.environment import ScoreSettings
from shared.scoring.exceptions import (
    InvalidFeedbackError,
    InvalidRecordsError,
    MalformedRequestError,
    ServiceUnavailableError,
    TooManyRecordsError,
    UnknownUseCaseError,
)
from shared.scoring.models import ModelCache
from shared.scoring.prediction_log import PredictionLog, SqsMessageSender, queue_client_config
from shared.scoring.wire import DecodedBody, PredictBodyDecoder, malformed
from shared.usecase.settings import UseCase, load_usecase

IDEMPOTENCY_TTL_SECONDS = 3600
API_TITLE = "Sluice scoring API"
Body = TypeVar("Body", bound=BaseModel)

if TYPE_CHECKING:
    from shared.lake.adapters import S3ObjectStore
    from shared.scoring.endpoint import EndpointScorer

logger = Logger()
tracer = Tracer(auto_patch=False)
"""botocore is patched when the first AWS client is built (:func:`_boto3`), so a cold start imports neither
boto3 nor the X-Ray patches of libraries this function never uses (``patch_all`` would import them all).
Metrics are EMF documents written by :func:`shared.scoring.telemetry.publish` (two dimension sets a document)."""
app = APIGatewayRestResolver()
"""Bodies are validated by the routes (:class:`PredictBodyDecoder`, :func:`_parse`), not by the resolver's
``enable_validation``: its pydantic round-trip of a 1,000-record body costs more than the model, and its
import ~45 ms of every cold start. The OpenAPI document still describes both bodies (:func:`_openapi_document`)."""


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
    from shared.lake.adapters import S3ObjectStore

    boto3 = _boto3()
    return S3ObjectStore(boto3.client("s3"))


@lru_cache(maxsize=1)
def endpoint_scorer() -> EndpointScorer | None:
    name = settings().sagemaker_endpoint_name
    if name is None:
        return None
    from shared.scoring.breaker import CircuitBreaker  # heavy use cases only
    from shared.scoring.endpoint import EndpointScorer, endpoint_client_config

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
def body_decoder() -> PredictBodyDecoder:
    return PredictBodyDecoder(usecase().contract)


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
        request: dict[str, str],  # noqa: ARG001 - the idempotency key: use case, Idempotency-Key, body sha256
        records: DecodedBody,
        request_id: str,
    ) -> str:
        return score(records, request_id=request_id)

    return score_once


# --- the domain call ------------------------------------------------------------------------------------------------


def score(records: DecodedBody, *, request_id: str) -> str:
    """The response body (JSON) of a predict request."""
    outcome = engine().predict(records, request_id=request_id)
    logger.append_keys(variant=",".join(outcome.variants))
    telemetry.publish(outcome.telemetry)
    logger.info(
        "scored",
        extra={
            "records": len(records.records),
            "predictions": len(outcome.predictions),
            "invalid_records": len(outcome.errors),
            "model_versions": list(outcome.model_versions),
            "degraded": outcome.degraded,
            "shadow_scored": outcome.shadow_scored,
            "prediction_log_errors": outcome.log_failures,
        },
    )
    return outcome.encoded().decode()


def _served_usecase(name: str) -> UseCase:
    served = usecase()
    if name != served.name:
        raise UnknownUseCaseError(f"use case {name!r} is not served here (this API serves {served.name!r})")
    return served


def _request_id() -> str:
    return app.current_event.request_context.request_id or app.lambda_context.aws_request_id


# --- routes ---------------------------------------------------------------------------------------------------------

# The bodies' schemas are added to the document by shared.scoring.api.complete_openapi_document (its pydantic
# models are built when the document or a feedback request first needs them, not at every cold start).
ERROR_RESPONSES: dict[int, OpenAPIResponse] = {
    400: {"description": "malformed body"},
    404: {"description": "unknown use case"},
    413: {"description": "too many records"},
    422: {"description": "records or labels the contract refuses, with field-level reasons"},
    503: {"description": "no model deployed, or the model endpoint is down without fallback"},
}
PREDICT_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {"description": "the scores, and field-level errors of the records not scored"},
    **ERROR_RESPONSES,
}
FEEDBACK_RESPONSES: dict[int, OpenAPIResponse] = {202: {"description": "the labels were stored"}, **ERROR_RESPONSES}


@app.post("/v1/<usecase_name>/predict", summary="Score one record or a batch", responses=PREDICT_RESPONSES)
def predict(usecase_name: str) -> Response[Any]:
    """The body (``PredictRequest`` in the OpenAPI document, :func:`_openapi_document`) is decoded and validated
    by :class:`PredictBodyDecoder` in one pass, not by the resolver's pydantic validation (which would parse the
    JSON with the stdlib and copy every record). The response is :class:`PredictResponse`, encoded once by the
    engine: a shape the unit tests pin, so the resolver's response validation is not run on it either."""
    _served_usecase(usecase_name)
    raw = app.current_event.decoded_body or ""
    records = body_decoder().decode(raw)
    request_id = _request_id()
    logger.append_keys(request_id=request_id, usecase=usecase_name)
    key = app.current_event.get_header_value("Idempotency-Key", case_sensitive=False)
    if not key:
        body = score(records, request_id=request_id)
    else:
        body_sha256 = hashlib.sha256(raw.encode() if isinstance(raw, str) else raw).hexdigest()
        # a retried key with another body (byte for byte) is refused (409), not answered with another request's scores
        request_key = {"usecase": usecase_name, "key": key, "body_sha256": body_sha256}
        scorer = idempotent_score()
        idempotency_config().register_lambda_context(app.lambda_context)
        body = scorer(request=request_key, records=records, request_id=request_id)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


def _parse(model: type[Body]) -> Body:
    """The body as ``model``, or :class:`MalformedRequestError` (400) with the reasons by field."""
    try:
        return model.model_validate_json(app.current_event.decoded_body or "")
    except ValidationError as exc:
        raise malformed(exc) from exc


@app.post("/v1/<usecase_name>/feedback", summary="Send observed labels", responses=FEEDBACK_RESPONSES)
def feedback(usecase_name: str) -> Response[Any]:
    from shared.scoring.api import FeedbackAccepted, FeedbackRequest
    from shared.scoring.feedback import record_feedback

    served = _served_usecase(usecase_name)
    request = _parse(FeedbackRequest)
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
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=FeedbackAccepted(accepted=accepted).model_dump_json(),
    )


@app.get("/v1/<usecase_name>/openapi.json", include_in_schema=False)
def openapi(usecase_name: str) -> Response[Any]:
    _served_usecase(usecase_name)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=_openapi_document())


@lru_cache(maxsize=1)
def _openapi_document() -> str:
    served = usecase()
    document = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE, version=served.contract.version, description=f"Scores {served.name}: {served.description}"
        )
    )
    from shared.scoring.api import complete_openapi_document

    return json.dumps(complete_openapi_document(document, served))


# --- errors → HTTP, in one place -------------------------------------------------------------------------------------


def _error_response(status: int, message: str, errors: list[Any] | None = None) -> Response[Any]:
    logger.info("request refused", extra={"status": status, "reason": message})
    body = json.dumps({"message": message, "errors": errors or []}, default=str)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(MalformedRequestError)
def _malformed_body(exc: MalformedRequestError) -> Response[Any]:
    return _error_response(400, str(exc), exc.errors)


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
