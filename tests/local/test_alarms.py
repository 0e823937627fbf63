"""Alarm evaluation in the embedded cloud: metric data → alarm state → SNS action, EventBridge rule → Lambda.

The alarm evaluator and the event router as the embedded cloud wires them (:mod:`local.services.alarms`,
:mod:`local.services.events`); the evaluator runs with an explicit ``now`` (no evaluation thread).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.cloud import EmbeddedCloud
from local.services.alarms import AlarmEvaluator
from local.services.events import EventRouter

STACK = "Sluice-alarm-test"
NAMESPACE = "Sluice/Test"
DIMENSIONS = [{"Name": "Variant", "Value": "canary"}]

RECORDER = """
import json
import os

import boto3


def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["RECORD_QUEUE_URL"], MessageBody=json.dumps(event))
    return {"ok": True}
"""

ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
            ],
        }
    },
}


def _metric_stat(name: str) -> dict[str, Any]:
    metric = {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": DIMENSIONS}
    return {"Metric": metric, "Period": 60, "Stat": "Sum"}


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "FunctionRole": ROLE,
        "AlarmTopic": {"Type": "AWS::SNS::Topic"},
        "NotificationQueue": {"Type": "AWS::SQS::Queue"},
        "RecordQueue": {"Type": "AWS::SQS::Queue"},
        "NotificationSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": {"Ref": "AlarmTopic"},
                "Protocol": "sqs",
                "Endpoint": {"Fn::GetAtt": ["NotificationQueue", "Arn"]},
            },
        },
        "Recorder": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": {"ZipFile": RECORDER},
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                "Runtime": "python3.12",
                "Timeout": 10,
                "Environment": {"Variables": {"RECORD_QUEUE_URL": {"Ref": "RecordQueue"}}},
            },
        },
        "LatencyAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": "canary-latency",
                "AlarmDescription": "canary p99 latency too high",
                "Namespace": NAMESPACE,
                "MetricName": "Latency",
                "Dimensions": DIMENSIONS,
                "ExtendedStatistic": "p99",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": 250,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [{"Ref": "AlarmTopic"}],
                "OKActions": [{"Ref": "AlarmTopic"}],
            },
        },
        "ErrorRateAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": "canary-error-rate",
                "EvaluationPeriods": 1,
                "Threshold": 5,
                "ComparisonOperator": "GreaterThanThreshold",
                "ActionsEnabled": False,
                "AlarmActions": [{"Ref": "AlarmTopic"}],
                "Metrics": [
                    {"Id": "errors", "MetricStat": _metric_stat("Errors"), "ReturnData": False},
                    {"Id": "requests", "MetricStat": _metric_stat("Requests"), "ReturnData": False},
                    {"Id": "rate", "Expression": "FILL(errors, 0) / requests * 100", "ReturnData": True},
                ],
            },
        },
        "AlarmRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]},
                "Targets": [{"Id": "recorder", "Arn": {"Fn::GetAtt": ["Recorder", "Arn"]}}],
            },
        },
        "DisabledRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "State": "DISABLED",
                "EventPattern": {"source": ["sluice.test"]},
                "Targets": [{"Id": "recorder", "Arn": {"Fn::GetAtt": ["Recorder", "Arn"]}}],
            },
        },
        "UserRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {"source": ["sluice.test"], "detail": {"score": [{"numeric": [">=", 0.5]}]}},
                "Targets": [
                    {"Id": "recorder", "Arn": {"Fn::GetAtt": ["Recorder", "Arn"]}, "InputPath": "$.detail"},
                    {"Id": "queue", "Arn": {"Fn::GetAtt": ["NotificationQueue", "Arn"]}},
                ],
            },
        },
    },
}


class Wired:
    def __init__(self, cloud: EmbeddedCloud, router: EventRouter, evaluator: AlarmEvaluator) -> None:
        self.cloud = cloud
        self.router = router
        self.evaluator = evaluator

    def drain(self, queue_logical_id: str) -> list[Any]:
        url = _queue_url(self.cloud, queue_logical_id)
        sqs = self.cloud.client("sqs")
        bodies: list[Any] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies


def _queue_url(cloud: EmbeddedCloud, logical_id: str) -> str:
    urls = cloud.client("sqs").list_queues()["QueueUrls"]
    return next(url for url in urls if logical_id in url)


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    assembly = tmp_path_factory.mktemp("cdk.out")
    # alarm_tick_s=None: no evaluation thread; the test evaluates with an explicit `now`
    with EmbeddedCloud(
        template=TEMPLATE, stack_name=STACK, asset_root=assembly, state_dir=assembly / ".local", alarm_tick_s=None
    ) as cloud:
        yield Wired(cloud, cloud.events, cloud.alarms)


def _put(cloud: EmbeddedCloud, name: str, at: float, values: list[float]) -> None:
    cloud.client("cloudwatch").put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": DIMENSIONS,
                "Timestamp": datetime.fromtimestamp(at, UTC),
                "Values": values,
            }
        ],
    )


def _state(cloud: EmbeddedCloud, name: str) -> dict[str, Any]:
    alarms = cloud.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return dict(alarms[0])


def test_breaching_data_raises_the_alarm_notifies_sns_and_runs_the_rule_target(wired: Wired) -> None:
    cloud = wired.cloud
    minute = math.floor(time.time() / 60) * 60 - 600  # a whole minute, safely in the past
    # Given one complete minute whose p99 latency is 400 ms, error rate 10%
    _put(cloud, "Latency", minute + 10, [100.0] * 50 + [400.0] * 5)
    _put(cloud, "Requests", minute + 10, [100.0])
    _put(cloud, "Errors", minute + 20, [10.0])
    # When the alarms are evaluated just after that minute
    transitions = {t.alarm_name: t for t in wired.evaluator.evaluate_once(now=minute + 61)}
    cloud.wait_until_idle(timeout=10)
    # Then both alarms are in ALARM in DescribeAlarms
    latency = _state(cloud, "canary-latency")
    assert latency["StateValue"] == "ALARM"
    assert latency["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [400.0]")
    assert json.loads(latency["StateReasonData"])["extendedStatistic"] == "p99"
    assert _state(cloud, "canary-error-rate")["StateValue"] == "ALARM"
    assert transitions["canary-latency"].previous == "INSUFFICIENT_DATA"
    assert transitions["canary-error-rate"].actions == ()  # ActionsEnabled false
    # And the SNS subscriber got exactly one notification, for the alarm with actions enabled
    notifications = [json.loads(m["Message"]) for m in wired.drain("NotificationQueue")]
    assert [n["AlarmName"] for n in notifications] == ["canary-latency"]
    assert notifications[0]["NewStateValue"] == "ALARM"
    assert notifications[0]["OldStateValue"] == "INSUFFICIENT_DATA"
    assert notifications[0]["Trigger"]["ExtendedStatistic"] == "p99"
    # And the rule's Lambda target ran with both state-change events (actions or not)
    events = {e["detail"]["alarmName"]: e for e in wired.drain("RecordQueue")}
    assert set(events) == {"canary-latency", "canary-error-rate"}
    event = events["canary-latency"]
    assert event["source"] == "aws.cloudwatch"
    assert event["detail-type"] == "CloudWatch Alarm State Change"
    assert event["resources"] == [latency["AlarmArn"]]
    assert event["detail"]["state"]["value"] == "ALARM"
    assert event["detail"]["previousState"]["value"] == "INSUFFICIENT_DATA"
    assert event["detail"]["configuration"]["metrics"][0]["metricStat"]["stat"] == "p99"
    assert event["detail"]["configuration"]["description"] == "canary p99 latency too high"
    rate_metrics = events["canary-error-rate"]["detail"]["configuration"]["metrics"]
    assert {m["id"]: m["returnData"] for m in rate_metrics} == {"rate": True, "errors": False, "requests": False}

    # When the next minute is healthy
    _put(cloud, "Latency", minute + 70, [100.0] * 20)
    _put(cloud, "Requests", minute + 70, [100.0])
    wired.evaluator.evaluate_once(now=minute + 121)
    cloud.wait_until_idle(timeout=10)
    # Then both alarms are OK again (no errors published: FILL makes the rate 0), OK action and events sent
    assert _state(cloud, "canary-latency")["StateValue"] == "OK"
    assert _state(cloud, "canary-error-rate")["StateValue"] == "OK"
    notifications = [json.loads(m["Message"]) for m in wired.drain("NotificationQueue")]
    assert [(n["AlarmName"], n["NewStateValue"]) for n in notifications] == [("canary-latency", "OK")]
    events = wired.drain("RecordQueue")
    assert sorted((e["detail"]["alarmName"], e["detail"]["previousState"]["value"]) for e in events) == [
        ("canary-error-rate", "ALARM"),
        ("canary-latency", "ALARM"),
    ]
    # And evaluating again changes nothing
    assert wired.evaluator.evaluate_once(now=minute + 122) == []


def test_user_put_events_reach_lambda_and_sqs_targets_of_matching_enabled_rules(wired: Wired) -> None:
    cloud = wired.cloud
    events = cloud.client("events")
    # Given events from sluice.test, one matching the numeric filter, one not
    for score in (0.9, 0.1):
        result = events.put_events(
            Entries=[{"Source": "sluice.test", "DetailType": "Scored", "Detail": json.dumps({"score": score})}]
        )
        assert result["FailedEntryCount"] == 0
    cloud.wait_until_idle(timeout=10)
    # Then the Lambda target (InputPath $.detail) ran once, not also for the disabled rule
    assert wired.drain("RecordQueue") == [{"score": 0.9}]
    # And moto still delivered to the rule's SQS target
    queued = wired.drain("NotificationQueue")
    assert [q["detail"] for q in queued] == [{"score": 0.9}]
