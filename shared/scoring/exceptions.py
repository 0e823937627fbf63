"""Typed errors of the scoring domain; :data:`shared.scoring.runtime.ERROR_ANSWERS` maps each to one HTTP status."""

from __future__ import annotations

from typing import Any

from shared.exceptions import SluiceError
from shared.registry.exceptions import ModelIntegrityError


class ScoringError(SluiceError):
    """Scoring failed in a way that is not the request's fault."""


class UnknownUseCaseError(SluiceError):
    """The request names a use case this function does not serve (404)."""


class MalformedRequestError(SluiceError):
    """The body is not JSON or not the shape the route takes (400); ``errors`` holds the reasons by field."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class TooManyRecordsError(SluiceError):
    """A predict request carries more records than ``max_batch_records`` (413)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} records in one request; at most {limit} are accepted")
        self.count = count
        self.limit = limit


class InvalidRecordsError(SluiceError):
    """No record of the request can be scored (422); ``errors`` holds the field-level reasons per record."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} record(s) failed the contract")
        self.errors = errors


class InvalidFeedbackError(SluiceError):
    """Feedback labels that the contract does not accept (422), with reasons per item."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} feedback item(s) are invalid")
        self.errors = errors


class ServiceUnavailableError(ScoringError):
    """Nothing can answer now (503): ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NoChampionError(ServiceUnavailableError):
    """No model is deployed for the use case yet."""


class EndpointUnavailableError(ServiceUnavailableError):
    """The heavy model's endpoint failed or its circuit breaker is open, and fallback is off."""


class EndpointError(ScoringError):
    """One call to the SageMaker endpoint failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class UnknownVariantError(EndpointError):
    """The endpoint has no production variant of that name (yet: an ``UpdateEndpoint`` still in progress keeps
    the previous config serving). Says nothing about the endpoint's health: no breaker counts it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class CircuitOpenError(EndpointError):
    """The circuit breaker is open: the endpoint is not called."""

    def __init__(self) -> None:
        super().__init__("the endpoint's circuit breaker is open", retryable=False)


class ModelFileMismatchError(ModelIntegrityError):
    """The ONNX file in the lake is not the one the registry recorded (its sha256 differs): it is never served."""


class PredictionLogError(SluiceError):
    """Sending prediction-log or review messages failed (never fails a response)."""


class IdempotencyKeyReusedError(SluiceError):
    """An Idempotency-Key sent again with another body (409): powertools' ``IdempotencyValidationError``."""


class IdempotencyKeyInFlightError(SluiceError):
    """A request with this Idempotency-Key is still being scored (409): ``IdempotencyAlreadyInProgressError``."""
