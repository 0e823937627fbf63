"""EventBridge pattern matching and target input as the embedded cloud emulates them (:mod:`local.services.events`)."""

from __future__ import annotations

from typing import Any

import pytest

from local.services.events import EventPatternError, eventbridge_event, matches, target_input

EVENT: dict[str, Any] = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:canary-errors"],
    "detail": {"alarmName": "canary-errors", "state": {"value": "ALARM"}, "count": 7, "tags": ["a", "b"]},
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}, True),
        ({"source": ["aws.s3"]}, False),
        ({"detail": {"state": {"value": ["ALARM", "OK"]}}}, True),
        ({"detail": {"alarmName": [{"prefix": "canary-"}]}}, True),
        ({"detail": {"alarmName": [{"suffix": "-errors"}]}}, True),
        ({"detail": {"alarmName": [{"equals-ignore-case": "CANARY-ERRORS"}]}}, True),
        ({"detail": {"state": {"value": [{"anything-but": "OK"}]}}}, True),
        ({"detail": {"state": {"value": [{"anything-but": ["ALARM", "OK"]}]}}}, False),
        ({"detail": {"alarmName": [{"anything-but": {"prefix": "canary"}}]}}, False),
        ({"detail": {"count": [{"numeric": [">", 5, "<=", 7]}]}}, True),
        ({"detail": {"count": [{"numeric": [">", 7]}]}}, False),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"count": [{"exists": True}]}}, True),
        ({"detail": {"tags": ["b"]}}, True),
        ({"resources": [{"prefix": "arn:aws:cloudwatch:"}]}, True),
        ({"$or": [{"source": ["x"]}, {"detail": {"count": [7]}}]}, True),
        ({"detail": {"state": ["ALARM"]}}, False),  # a value pattern never matches an object
        ({}, False),  # a rule without a pattern (a schedule) matches no event
    ],
)
def test_event_patterns(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, EVENT) is expected


def test_unknown_filters_are_refused() -> None:
    with pytest.raises(EventPatternError):
        matches({"source": [{"wildcard": "aws.*"}]}, EVENT)


def test_target_input_input_path_and_transformer() -> None:
    assert target_input({"Input": '{"fixed": 1}'}, EVENT) == {"fixed": 1}
    assert target_input({"InputPath": "$.detail.state"}, EVENT) == {"value": "ALARM"}
    assert target_input({"InputPath": "$.resources[0]"}, EVENT) == EVENT["resources"][0]
    transformer = {
        "InputPathsMap": {"name": "$.detail.alarmName", "count": "$.detail.count"},
        "InputTemplate": '{"alarm": "<name>", "n": <count>, "rule": "<aws.events.rule-name>"}',
    }
    assert target_input({"InputTransformer": transformer}, EVENT, rule_name="r") == {
        "alarm": "canary-errors",
        "n": 7,
        "rule": "r",
    }
    assert target_input({}, EVENT) == EVENT


def test_moto_event_message_becomes_eventbridge_shape() -> None:
    event = eventbridge_event({"source": "s", "time": 0.0, "ingestion-time": 1.0})
    assert event["time"] == "1970-01-01T00:00:00Z"
    assert "ingestion-time" not in event
    assert event["version"] == "0"
