"""The score function's runtime: one table turns each typed error into its HTTP answer."""

from __future__ import annotations

import json

import pytest

from shared.scoring.exceptions import (
    EndpointUnavailableError,
    IdempotencyKeyInFlightError,
    IdempotencyKeyReusedError,
    InvalidFeedbackError,
    InvalidRecordsError,
    MalformedRequestError,
    NoChampionError,
    TooManyRecordsError,
    UnknownUseCaseError,
)
from shared.scoring.runtime import refusal

FIELD_ERRORS = [{"index": 0, "errors": [{"field": "tenure", "reason": "too large"}]}]


@pytest.mark.parametrize(
    ("error", "status", "message", "errors"),
    [
        (MalformedRequestError("the request body is malformed", FIELD_ERRORS), 400, "the request body is malformed", 1),
        (UnknownUseCaseError("use case 'fraud' is not served here"), 404, "use case 'fraud' is not served here", 0),
        (IdempotencyKeyReusedError("hash"), 409, "this Idempotency-Key was used with another body", 0),
        (
            IdempotencyKeyInFlightError("in flight"),
            409,
            "a request with this Idempotency-Key is still being scored; retry later",
            0,
        ),
        (TooManyRecordsError(1001, 1000), 413, "1001 records in one request; at most 1000 are accepted", 0),
        (InvalidRecordsError(FIELD_ERRORS), 422, "no record could be scored", 1),
        (InvalidFeedbackError(FIELD_ERRORS), 422, "labels the contract does not allow", 1),
        (
            NoChampionError("no model is deployed for 'telco_churn' yet"),
            503,
            "no model is deployed for 'telco_churn' yet",
            0,
        ),
        (EndpointUnavailableError("the model endpoint is unavailable"), 503, "the model endpoint is unavailable", 0),
    ],
)
def test_each_typed_error_has_one_answer(error: Exception, status: int, message: str, errors: int) -> None:
    # Given a typed error a request was refused with
    # When it is turned into an answer
    answer = refusal(error)
    # Then the table gives its status and message, and the body carries its field-level errors
    assert (answer.status, answer.message) == (status, message)
    assert json.loads(answer.body) == {"message": message, "errors": FIELD_ERRORS[:errors]}
