"""The score function's runtime: the scoring service built from its environment, and each error's HTTP answer.

:func:`service_from_environment` reads :class:`~shared.scoring.environment.ScoreSettings` and the use-case
file once; :class:`ScoringService` builds the rest on first use, so a cold start imports neither boto3
(imported, and botocore patched for X-Ray, when the first client is made), nor the endpoint and its circuit
breaker (heavy use cases only), nor the lake's storage adapter (feedback), nor powertools' idempotency
(the first request with an ``Idempotency-Key``). :data:`ERROR_ANSWERS` is the one table of typed errors →
HTTP status and message; the handler registers it on its resolver in one place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.deployment.adapters import DeploymentStore
from shared.environment import read_environment
from shared.exceptions import SettingsError
from shared.scoring import telemetry
from shared.scoring.columnar import V2, InferBodyDecoder, v2_response
from shared.scoring.engine import ScoringEngine
from shared.scoring.environment import ScoreSettings
from shared.scoring.exceptions import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyReusedError,
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

if TYPE_CHECKING:
    from shared.lake.adapters import S3ObjectStore
    from shared.scoring.endpoint import EndpointScorer

IDEMPOTENCY_TTL_SECONDS = 3600
API_TITLE = "Sluice scoring API"


# --- errors → HTTP, in one table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorAnswer:
    """The HTTP answer to one typed error: its status, and a fixed message (None: the error's own text)."""

    status: int
    message: str | None = None


ERROR_ANSWERS: dict[type[Exception], ErrorAnswer] = {
    MalformedRequestError: ErrorAnswer(400),
    UnknownUseCaseError: ErrorAnswer(404),
    IdempotencyKeyReusedError: ErrorAnswer(409, "this Idempotency-Key was used with another body"),
    IdempotencyKeyInFlightError: ErrorAnswer(
        409, "a request with this Idempotency-Key is still being scored; retry later"
    ),
    TooManyRecordsError: ErrorAnswer(413),
    InvalidRecordsError: ErrorAnswer(422, "no record could be scored"),
    InvalidFeedbackError: ErrorAnswer(422, "labels the contract does not allow"),
    ServiceUnavailableError: ErrorAnswer(503),
}
"""Every error a request can be refused with (a subclass answers as its nearest listed class)."""


@dataclass(frozen=True)
class Refusal:
    """A refused request's status, message and body (``{"message", "errors"}``, JSON)."""

    status: int
    message: str
    body: str


def refusal(exc: Exception) -> Refusal:
    """The answer :data:`ERROR_ANSWERS` gives ``exc``, with its field-level ``errors`` when it has some."""
    answer = next(ERROR_ANSWERS[kind] for kind in type(exc).__mro__ if kind in ERROR_ANSWERS)
    message = answer.message or str(exc)
    errors = list(getattr(exc, "errors", None) or [])
    return Refusal(answer.status, message, json.dumps({"message": message, "errors": errors}, default=str))


# --- the service -----------------------------------------------------------------------------------------------------


class ScoringService:
    """What the score function's routes call: predict (idempotent on request), feedback, the OpenAPI document."""

    def __init__(
        self,
        settings: ScoreSettings,
        usecase: UseCase,
        *,
        logger: Any,
        on_first_client: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.usecase = usecase
        self._logger = logger
        self._on_first_client = on_first_client
        self._clients: dict[str, Any] = {}
        self._openapi: str | None = None

    # --- the requests ------------------------------------------------------------------------------------------------

    def served(self, usecase_name: str) -> UseCase:
        if usecase_name != self.usecase.name:
            raise UnknownUseCaseError(
                f"use case {usecase_name!r} is not served here (this API serves {self.usecase.name!r})"
            )
        return self.usecase

    def predict(
        self,
        usecase_name: str,
        raw: str | bytes,
        *,
        request_id: str,
        idempotency_key: str | None,
        lambda_context: Any,
        protocol: str = "records",
    ) -> str:
        """The response body (JSON) of a predict request (``protocol="v2"``: a v2 infer request, answered in v2's
        shape); with a key, a retry gets the first answer."""
        self.served(usecase_name)
        decoder = self.infer_decoder if protocol == V2 else self.body_decoder
        records = decoder.decode(raw)
        self._logger.append_keys(request_id=request_id, usecase=usecase_name)
        if not idempotency_key:
            return self.score(records, request_id=request_id)
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        body_sha256 = hashlib.sha256(raw.encode() if isinstance(raw, str) else raw).hexdigest()
        # a retried key with another body (byte for byte) is refused (409), not answered with another request's scores
        request_key = {"usecase": usecase_name, "key": idempotency_key, "body_sha256": body_sha256}
        scorer = self._idempotent_score
        self._idempotency_config.register_lambda_context(lambda_context)
        try:
            body: str = scorer(request=request_key, records=records, request_id=request_id)
        except IdempotencyValidationError as exc:
            raise IdempotencyKeyReusedError(str(exc)) from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise IdempotencyKeyInFlightError(str(exc)) from exc
        return body

    def score(self, records: DecodedBody, *, request_id: str) -> str:
        """The response body (JSON) of decoded records, with the request's metrics and log line."""
        outcome = self.engine.predict(records, request_id=request_id)
        self._logger.append_keys(variant=",".join(outcome.variants))
        telemetry.publish(outcome.telemetry)
        self._logger.info(
            "scored",
            extra={
                "records": len(records),
                "predictions": outcome.predicted,
                "invalid_records": len(outcome.errors),
                "model_versions": list(outcome.model_versions),
                "degraded": outcome.degraded,
                "shadow_scored": outcome.shadow_scored,
                "prediction_log_errors": outcome.log_failures,
            },
        )
        if records.protocol == V2:
            return v2_response(outcome, self.usecase, records.id).decode()
        return outcome.encoded().decode()

    def feedback(self, usecase_name: str, raw: str | bytes, *, request_id: str) -> str:
        """Store the labels of a feedback body in the lake; the response body (how many were accepted, JSON)."""
        from shared.scoring.api import FeedbackAccepted, FeedbackRequest
        from shared.scoring.feedback import record_feedback

        served = self.served(usecase_name)
        try:
            request = FeedbackRequest.model_validate_json(raw or "")
        except ValidationError as exc:
            raise malformed(exc) from exc
        self._logger.append_keys(request_id=request_id, usecase=usecase_name)
        accepted = record_feedback(
            request,
            usecase=served.name,
            contract=served.contract,
            writer=self.object_store,
            bucket=self.settings.lake_bucket,
            received_at=datetime.now(UTC),
        )
        self._logger.info("feedback accepted", extra={"accepted": accepted})
        return FeedbackAccepted(accepted=accepted).model_dump_json()

    def openapi_document(self, usecase_name: str, generated: Callable[..., str]) -> str:
        """The resolver's document (``generated(title=, version=, description=)``) with the bodies' schemas."""
        served = self.served(usecase_name)
        if self._openapi is None:
            from shared.scoring.api import complete_openapi_document

            document = json.loads(
                generated(
                    title=API_TITLE,
                    version=served.contract.version,
                    description=f"Scores {served.name}: {served.description}",
                )
            )
            self._openapi = json.dumps(complete_openapi_document(document, served))
        return self._openapi

    # --- built on first use ------------------------------------------------------------------------------------------

    @cached_property
    def _boto3(self) -> Any:
        """boto3, imported on first use (not at cold start), after ``on_first_client`` (X-Ray's botocore patch)."""
        self._on_first_client()
        import boto3

        return boto3

    def client(self, name: str, config: Any = None) -> Any:
        """A boto3 client, one per service, created on first use."""
        if name not in self._clients:
            self._clients[name] = self._boto3.client(name, config=config)
        return self._clients[name]

    @cached_property
    def body_decoder(self) -> PredictBodyDecoder:
        return PredictBodyDecoder(self.usecase.contract)

    @cached_property
    def infer_decoder(self) -> InferBodyDecoder:
        return InferBodyDecoder(self.usecase.contract)

    @cached_property
    def engine(self) -> ScoringEngine:
        return ScoringEngine(
            usecase=self.usecase,
            models=self.model_cache,
            endpoint=self.endpoint_scorer,
            prediction_log=self.prediction_log,
            logger=self._logger,
        )

    @cached_property
    def model_cache(self) -> ModelCache:
        serving = self.usecase.serving
        return ModelCache(
            usecase=self.usecase.name,
            deployments=DeploymentStore(self.client("dynamodb"), self.settings.deployment_table),
            files=self.object_store,
            bucket=self.settings.lake_bucket,
            refresh_seconds=serving.deployment_cache_seconds,
            feature_names=frozenset(c.name for c in self.usecase.contract.features),
        )

    @cached_property
    def object_store(self) -> S3ObjectStore:
        from shared.lake.adapters import S3ObjectStore

        return S3ObjectStore(self.client("s3"))

    @cached_property
    def endpoint_scorer(self) -> EndpointScorer | None:
        name = self.settings.sagemaker_endpoint_name
        if name is None:
            return None
        from shared.scoring.breaker import CircuitBreaker  # heavy use cases only
        from shared.scoring.endpoint import EndpointScorer, endpoint_client_config

        serving = self.usecase.serving
        client = self.client("sagemaker-runtime", config=endpoint_client_config(serving.endpoint_timeout_ms))
        breaker = CircuitBreaker(
            failure_threshold=serving.breaker_failure_threshold, reset_seconds=serving.breaker_reset_seconds
        )
        return EndpointScorer(client, name, max_attempts=serving.endpoint_max_attempts, breaker=breaker)

    @cached_property
    def prediction_log(self) -> PredictionLog | None:
        settings = self.settings
        if settings.prediction_log_queue_url is None and settings.review_queue_url is None:
            return None
        return PredictionLog(
            SqsMessageSender(self.client("sqs", config=queue_client_config())),
            usecase=self.usecase.name,
            log_queue_url=settings.prediction_log_queue_url,
            review_queue_url=settings.review_queue_url,
            review=self.usecase.review,
            segment_columns=self.usecase.contract.segments,
            alerted_segments=self.alerted_segments,
        )

    @cached_property
    def alerted_segments(self) -> Callable[[], frozenset[str]]:
        """The segments under a monitoring alert (the monitor's latest report), re-read every
        ``deployment_cache_seconds``: they route predictions to review."""
        import time

        from shared.review.adapters import LatestAlertedSegments, RefreshingAlertedSegments

        return RefreshingAlertedSegments(
            LatestAlertedSegments(self.object_store, self.settings.lake_bucket),
            self.usecase.name,
            refresh_seconds=self.usecase.serving.deployment_cache_seconds,
            clock=time.monotonic,
        )

    @cached_property
    def _idempotency_config(self) -> Any:
        """powertools' idempotency (which imports boto3) is loaded by the first request with an Idempotency-Key."""
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(
            event_key_jmespath="[usecase, key]",
            payload_validation_jmespath="body_sha256",
            expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        )

    @cached_property
    def _idempotent_score(self) -> Any:
        """:meth:`score` wrapped once per process in powertools idempotency (DynamoDB, partition key ``id``)."""
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

        table = self.settings.idempotency_table
        if table is None:
            raise SettingsError("IDEMPOTENCY_TABLE is not set: requests with an Idempotency-Key cannot be honoured")
        _ = self._boto3  # patched before the persistence layer makes its client
        persistence = DynamoDBPersistenceLayer(table_name=table, key_attr="id")

        @idempotent_function(
            data_keyword_argument="request", persistence_store=persistence, config=self._idempotency_config
        )
        def score_once(
            *,
            request: dict[str, str],  # noqa: ARG001 - the idempotency key: use case, Idempotency-Key, body sha256
            records: DecodedBody,
            request_id: str,
        ) -> str:
            return self.score(records, request_id=request_id)

        return score_once


def service_from_environment(*, logger: Any, on_first_client: Callable[[], None] = lambda: None) -> ScoringService:
    """The service with this function's environment, validated once (no client is created here)."""
    settings = read_environment(ScoreSettings, "score")
    return ScoringService(settings, load_usecase(settings.usecase_path), logger=logger, on_first_client=on_first_client)
