"""The retrain handler under moto: a monitoring alarm starts one training run, every decision is audited, and
the alarm topic receives the latest report's alert sentence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.deployment.adapters import DeploymentStore
from shared.lake import layout as lake
from shared.monitoring.alarms import monitoring_alarm_name
from shared.monitoring.types import SEGMENT_DEGRADATION
from shared.training.retrain import RETRAIN_SKIPPED, RETRAIN_STARTED
from tests.fakes import FakeLambdaContext

REPO = Path(__file__).resolve().parents[2]
USECASE, LAKE, TABLE = "telco_churn", "sluice-lake", "sluice-deployments"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
SENTENCE = "AUC on contract=Month-to-month fell from 0.755 (n=612) to 0.61 (n=812) over the last 6 h; q = 0.0004"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_TASK_ROOT": str(REPO),
        "SLUICE_USECASE_FILE": "usecases/telco_churn.toml",
        "LAKE_BUCKET": LAKE,
        "DEPLOYMENT_TABLE": TABLE,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "usecase", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "usecase", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=LAKE)
        report = {"violations": [{"constraint_check_type": SEGMENT_DEGRADATION, "description": SENTENCE}]}
        s3.put_object(Bucket=LAKE, Key=lake.report_json_key(USECASE, "run-1"), Body=json.dumps(report).encode())
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="training", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        topic = boto3.client("sns").create_topic(Name="alarms")["TopicArn"]
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("STATE_MACHINE_ARN", machine)
        monkeypatch.setenv("ALARM_TOPIC_ARN", topic)
        yield {"machine": machine, "queue_url": queue_url}


def _handler() -> Any:
    from functions.retrain import handler

    handler.service.cache_clear()
    return handler


def _alarm_event(at: datetime, name: str = monitoring_alarm_name(USECASE, SEGMENT_DEGRADATION)) -> dict[str, Any]:
    return {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": name,
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": at.isoformat()},
        },
    }


def test_an_alarm_starts_one_run_and_a_second_within_the_cooldown_is_skipped(aws: dict[str, str]) -> None:
    handler = _handler()
    now = datetime.now(UTC)
    # When a segment-degradation alarm fires, and again ten minutes later
    first = handler.lambda_handler(_alarm_event(now), FakeLambdaContext())
    second = handler.lambda_handler(_alarm_event(now + timedelta(minutes=10)), FakeLambdaContext())
    # Then one training execution exists, the first's
    executions = boto3.client("stepfunctions").list_executions(stateMachineArn=aws["machine"])["executions"]
    assert [e["name"] for e in executions] == [first["execution_name"]]
    assert first["action"] == RETRAIN_STARTED
    assert second["action"] == RETRAIN_SKIPPED
    assert "cooldown" in second["reason"]
    # And both decisions are in the audit history
    events = DeploymentStore(boto3.client("dynamodb"), TABLE).latest_events(USECASE, limit=10)
    assert [e["action"] for e in events] == [RETRAIN_SKIPPED, RETRAIN_STARTED]  # newest first
    # And the alarm topic received the report's sentence with each decision
    messages = boto3.client("sqs").receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"])["Message"] for m in messages]
    assert len(bodies) == 2
    assert all(SENTENCE in body for body in bodies)


def test_an_alarm_that_is_not_a_monitoring_alarm_is_ignored(aws: dict[str, str]) -> None:
    handler = _handler()
    result = handler.lambda_handler(
        _alarm_event(datetime.now(UTC), name="sluice-telco-churn-candidate-error-rate"), FakeLambdaContext()
    )
    assert result["action"] == "ignored"
    assert boto3.client("stepfunctions").list_executions(stateMachineArn=aws["machine"])["executions"] == []
