"""Heavy models: scoring through the SageMaker real-time endpoint, with our own retries and a circuit breaker.

The boto3 client is built with connect/read timeouts from ``endpoint_timeout_ms`` and botocore's retries
off (:func:`endpoint_client_config`); :class:`EndpointScorer` retries only retryable errors (throttling,
5xx, timeouts and connection errors — never a 4xx), at most ``max_attempts`` times, sleeping a full-jitter
exponential backoff between attempts, and counts each failed call on a :class:`CircuitBreaker`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from shared.scoring.breaker import CircuitBreaker
from shared.scoring.exceptions import CircuitOpenError, EndpointError, UnknownVariantError

JSON = "application/json"
BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 0.5
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "ServiceUnavailable"}
)


def endpoint_client_config(timeout_ms: int) -> Any:
    """A botocore config: our timeouts, and no retries of botocore's own (ours are in :class:`EndpointScorer`)."""
    from botocore.config import Config

    seconds = timeout_ms / 1000
    return Config(connect_timeout=seconds, read_timeout=seconds, retries={"total_max_attempts": 1, "mode": "standard"})


def full_jitter_backoff(attempt: int, *, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): uniform in [0, min(cap, base·2^(attempt-1))]."""
    return rng() * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))


def classify(exc: Exception) -> EndpointError:
    """An SDK error as an :class:`EndpointError` that says whether a retry may help."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError | EndpointConnectionError | ConnectionClosedError):
        return EndpointError(f"the endpoint did not answer: {exc}", retryable=True)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        original = int(exc.response.get("OriginalStatusCode") or 0)  # ModelError: the container's own status
        code = str(error.get("Code", ""))
        if code == "ValidationError" and "variant" in str(error.get("Message", "")).lower():
            return UnknownVariantError(f"the endpoint has no such variant ({code}, HTTP {status}): {exc}")
        retryable = code in THROTTLING_CODES or status >= 500 or original >= 500 or status == 429
        return EndpointError(f"the endpoint refused the request ({code}, HTTP {status}): {exc}", retryable=retryable)
    return EndpointError(f"calling the endpoint failed: {exc}", retryable=False)


class EndpointScorer:
    """Positive-class scores of records from the endpoint (``{"records": [...]}`` → ``{"predictions": [...]}``)."""

    def __init__(
        self,
        client: Any,
        endpoint_name: str,
        *,
        max_attempts: int,
        breaker: CircuitBreaker,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._endpoint_name = endpoint_name
        self._max_attempts = max_attempts
        self._breaker = breaker
        self._variant_breakers: dict[str, CircuitBreaker] = {}
        self._sleep = sleep
        self._rng = rng

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker of calls the endpoint routes itself (no target variant)."""
        return self._breaker

    def breaker_for(self, target_variant: str | None) -> CircuitBreaker:
        """One breaker per production variant: a failing candidate variant never opens the champion's."""
        if target_variant is None:
            return self._breaker
        found = self._variant_breakers.get(target_variant)
        if found is None:
            found = self._breaker.like()
            self._variant_breakers[target_variant] = found
        return found

    def _invoke_once(self, body: bytes, target_variant: str | None) -> list[float]:
        from botocore.exceptions import BotoCoreError, ClientError

        target = {"TargetVariant": target_variant} if target_variant else {}
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self._endpoint_name, ContentType=JSON, Accept=JSON, Body=body, **target
            )
            document = json.loads(response["Body"].read())
        except (BotoCoreError, ClientError) as exc:
            raise classify(exc) from exc
        except (ValueError, KeyError) as exc:
            raise EndpointError(f"the endpoint's answer is not JSON predictions: {exc}", retryable=False) from exc
        try:
            return [float(p["score"]) for p in document["predictions"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise EndpointError(f"the endpoint's answer has no scores: {exc}", retryable=False) from exc

    def scores(self, records: Sequence[Any], *, target_variant: str | None = None) -> list[float]:
        """Scores in record order from ``target_variant`` (else the variant the endpoint's weights pick); raises
        :class:`EndpointError` (:class:`CircuitOpenError` when not called)."""
        breaker = self.breaker_for(target_variant)
        if not breaker.allow():
            raise CircuitOpenError()
        body = msgspec.json.encode({"records": list(records)})  # JSON objects or the wire's typed records
        attempt = 1
        while True:
            try:
                scores = self._invoke_once(body, target_variant)
            except UnknownVariantError:
                raise  # the endpoint is fine; the caller chose a variant it does not (yet) have
            except EndpointError as exc:
                if exc.retryable and attempt < self._max_attempts:
                    self._sleep(full_jitter_backoff(attempt, rng=self._rng))
                    attempt += 1
                    continue
                breaker.record_failure()
                raise
            if len(scores) != len(records):
                breaker.record_failure()
                message = f"the endpoint gave {len(scores)} scores for {len(records)} records"
                raise EndpointError(message, retryable=False)
            breaker.record_success()
            return scores
