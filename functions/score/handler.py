"""Score handler: the scoring API (API Gateway REST, proxy events) → :class:`shared.scoring.runtime.ScoringService`.

Routes: ``POST /v1/{usecase}/predict``, ``POST /v1/{usecase}/feedback``, ``GET /v1/{usecase}/openapi.json``, and
``POST /v2/models/{usecase}/infer`` (bulk scoring in the Open Inference Protocol's shape).
The service, its clients and its environment (:class:`shared.scoring.environment.ScoreSettings`) are built on
first use by :mod:`shared.scoring.runtime`; errors become HTTP answers through its one table (:func:`_refused`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.scoring.runtime import ERROR_ANSWERS, ScoringService, refusal, service_from_environment

logger = Logger()
tracer = Tracer(auto_patch=False)
"""botocore is patched when the first AWS client is built, so a cold start imports neither boto3 nor the X-Ray
patches of libraries this function never uses (``patch_all`` would import them all). Metrics are EMF documents
written by :func:`shared.scoring.telemetry.publish` (two dimension sets a document)."""
app = APIGatewayRestResolver()
"""Bodies are validated by the service (one msgspec pass for predict), not by the resolver's ``enable_validation``:
its pydantic round-trip of a 1,000-record body costs more than the model, and its import ~45 ms of every cold
start. The OpenAPI document still describes both bodies (:meth:`ScoringService.openapi_document`)."""


@lru_cache(maxsize=1)
def service() -> ScoringService:
    return service_from_environment(logger=logger, on_first_client=lambda: tracer.patch(["botocore"]))


def _request_id() -> str:
    return app.current_event.request_context.request_id or app.lambda_context.aws_request_id


def _json(status: int, body: str) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _scored(usecase_name: str, protocol: str) -> Response[Any]:
    body = service().predict(
        usecase_name,
        app.current_event.decoded_body or "",
        request_id=_request_id(),
        idempotency_key=app.current_event.get_header_value("Idempotency-Key", case_sensitive=False),
        lambda_context=app.lambda_context,
        protocol=protocol,
    )
    return _json(200, body)


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
INFER_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {"description": "the scores by column, and field-level errors of the rows not scored"},
    **ERROR_RESPONSES,
}
FEEDBACK_RESPONSES: dict[int, OpenAPIResponse] = {202: {"description": "the labels were stored"}, **ERROR_RESPONSES}


@app.post("/v1/<usecase_name>/predict", summary="Score one record or a batch", responses=PREDICT_RESPONSES)
def predict(usecase_name: str) -> Response[Any]:
    """``PredictRequest`` → ``PredictResponse`` (the OpenAPI document's names), decoded and encoded by the service."""
    return _scored(usecase_name, "records")


@app.post(
    "/v2/models/<usecase_name>/infer", summary="Score columns (Open Inference Protocol)", responses=INFER_RESPONSES
)
def infer(usecase_name: str) -> Response[Any]:
    """``InferRequest`` → ``InferResponse``: one input per contract column, one output per answer column."""
    return _scored(usecase_name, "v2")


@app.post("/v1/<usecase_name>/feedback", summary="Send observed labels", responses=FEEDBACK_RESPONSES)
def feedback(usecase_name: str) -> Response[Any]:
    return _json(202, service().feedback(usecase_name, app.current_event.decoded_body or "", request_id=_request_id()))


@app.get("/v1/<usecase_name>/openapi.json", include_in_schema=False)
def openapi(usecase_name: str) -> Response[Any]:
    return _json(200, service().openapi_document(usecase_name, app.get_openapi_json_schema))


@app.exception_handler(list(ERROR_ANSWERS))
def _refused(exc: Exception) -> Response[Any]:
    answer = refusal(exc)
    logger.info("request refused", extra={"status": answer.status, "reason": answer.message})
    return _json(answer.status, answer.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
