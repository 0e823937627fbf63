"""The heavy model's endpoint: circuit breaker states, and retries of retryable errors only."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from shared.scoring.breaker import BreakerState, CircuitBreaker
from shared.scoring.endpoint import EndpointScorer, endpoint_client_config, full_jitter_backoff
from shared.scoring.exceptions import CircuitOpenError, EndpointError
from tests.scoring_fakes import FakeClock


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "op")


class ScriptedRuntime:
    """A sagemaker-runtime client answering from a script: an exception to raise, or scores to return."""

    def __init__(self, *script: Exception | list[float]) -> None:
        self.script = list(script)
        self.calls = 0

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        assert json.loads(request["Body"])["records"]
        return {"Body": io.BytesIO(json.dumps({"predictions": [{"score": s} for s in step]}).encode())}


def _scorer(client: Any, *, attempts: int = 3, threshold: int = 5, clock: FakeClock | None = None) -> EndpointScorer:
    breaker = CircuitBreaker(failure_threshold=threshold, reset_seconds=30, clock=clock or FakeClock())
    return EndpointScorer(client, "sluice-telco", max_attempts=attempts, breaker=breaker, sleep=lambda _: None)


def test_the_breaker_opens_after_consecutive_failures_and_closes_after_a_good_trial() -> None:
    # Given a closed breaker with threshold 3 and a 30 s reset
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30, clock=clock)
    # When two calls fail, then one succeeds
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    # Then it is still closed (failures must be consecutive)
    assert breaker.state is BreakerState.CLOSED
    # When three calls fail in a row
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    # Then it is open and refuses calls until the reset time
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.advance(29.9)
    assert not breaker.allow()
    # When the reset time has passed, it is half-open and lets exactly one trial through
    clock.advance(0.2)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()
    # And a successful trial closes it
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_a_failed_trial_opens_the_breaker_again() -> None:
    # Given a breaker that opened and is now half-open
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    # When the trial fails
    breaker.record_failure()
    # Then it is open for another full reset period
    assert breaker.state is BreakerState.OPEN
    clock.advance(9)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ThrottlingException", 400),
        _client_error("InternalFailure", 500),
        _client_error("ServiceUnavailable", 503),
        ReadTimeoutError(endpoint_url="https://runtime.sagemaker"),
    ],
)
def test_retryable_errors_are_retried_up_to_max_attempts(error: Exception) -> None:
    # Given an endpoint failing twice with a retryable error, then answering
    client = ScriptedRuntime(error, error, [0.7])
    # When a record is scored with 3 attempts
    scores = _scorer(client, attempts=3).scores([{"a": 1}])
    # Then the third attempt's answer is returned
    assert scores == [0.7]
    assert client.calls == 3


def test_retries_stop_at_max_attempts() -> None:
    # Given an endpoint that always times out
    client = ScriptedRuntime(ReadTimeoutError(endpoint_url="https://runtime.sagemaker"))
    # When a record is scored with 2 attempts
    with pytest.raises(EndpointError) as raised:
        _scorer(client, attempts=2).scores([{"a": 1}])
    # Then it was called twice and the error says a retry may help
    assert client.calls == 2
    assert raised.value.retryable


@pytest.mark.parametrize(
    "error", [_client_error("ValidationError", 400), _client_error("ModelError", 424), _client_error("Denied", 403)]
)
def test_client_errors_are_not_retried(error: ClientError) -> None:
    # Given an endpoint refusing the request (4xx)
    client = ScriptedRuntime(error)
    # When a record is scored
    with pytest.raises(EndpointError) as raised:
        _scorer(client, attempts=5).scores([{"a": 1}])
    # Then it was called once
    assert client.calls == 1
    assert not raised.value.retryable


def test_a_model_error_with_a_5xx_from_the_container_is_retried() -> None:
    # Given the container answering 500 (SageMaker's ModelError carries its status)
    error = ClientError(
        {"Error": {"Code": "ModelError"}, "ResponseMetadata": {"HTTPStatusCode": 424}, "OriginalStatusCode": 500},
        "InvokeEndpoint",
    )
    client = ScriptedRuntime(error, [0.2])
    # When scored, it is retried
    assert _scorer(client).scores([{"a": 1}]) == [0.2]
    assert client.calls == 2


def test_the_open_breaker_stops_calls() -> None:
    # Given a breaker with threshold 2 and an endpoint that refuses
    client = ScriptedRuntime(_client_error("ValidationError", 400))
    scorer = _scorer(client, attempts=1, threshold=2)
    for _ in range(2):
        with pytest.raises(EndpointError):
            scorer.scores([{"a": 1}])
    # When another call is made
    with pytest.raises(CircuitOpenError):
        scorer.scores([{"a": 1}])
    # Then the endpoint was not called again
    assert client.calls == 2


def test_backoff_is_full_jitter_and_capped() -> None:
    # Given the largest random draw
    # Then the wait doubles per attempt up to the cap, and the smallest draw waits nothing
    waits = [full_jitter_backoff(a, rng=lambda: 1.0) for a in range(1, 10)]
    assert waits[1] == 2 * waits[0]
    assert max(waits) == 0.5
    assert full_jitter_backoff(3, rng=lambda: 0.0) == 0.0


def test_the_client_config_has_our_timeouts_and_no_botocore_retries() -> None:
    config = endpoint_client_config(800)
    assert config.connect_timeout == 0.8
    assert config.read_timeout == 0.8
    assert config.retries["total_max_attempts"] == 1
