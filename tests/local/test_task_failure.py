"""A task that fails on the embedded cloud's Step Functions, as on AWS: ``SendTaskFailure``'s cause reaches the
``Catch``; a task failing after ``StopExecution`` leaves the execution ``ABORTED``."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.services.stepfunctions import StepFunctionsPatches

DEADLINE_SECONDS = 20


@pytest.fixture
def interpreter(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """SQS and Step Functions clients of moto's interpreter with the embedded cloud's patches installed."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(name, value)
    patches = StepFunctionsPatches()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        patches.install()
        try:
            yield boto3.client("sqs"), boto3.client("stepfunctions")
        finally:
            patches.uninstall()


def waiting_execution(sqs: Any, sfn: Any, *, caught: dict[str, Any]) -> tuple[str, str]:
    """Start an execution whose task waits on its token, its failure caught into the state ``caught``;
    (execution ARN, task token) once the task is in flight."""
    queue = sqs.create_queue(QueueName="steps")["QueueUrl"]
    step = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Caught"}],
        "End": True,
    }
    definition = {"StartAt": "Step", "States": {"Step": step, "Caught": caught}}
    machine = sfn.create_state_machine(
        name="steps", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (messages := sqs.receive_message(QueueUrl=queue).get("Messages")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return execution, json.loads(messages[0]["Body"])["token"]


def ended(sfn: Any, execution: str) -> dict[str, Any]:
    """``DescribeExecution`` once the execution is no longer running."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return dict(described)


def test_the_cause_of_a_task_failure_reaches_the_catch(interpreter: tuple[Any, Any]) -> None:
    sqs, sfn = interpreter
    # Given an execution waiting on a task token, its failure caught into $.failure
    execution, token = waiting_execution(sqs, sfn, caught={"Type": "Pass", "End": True})
    # When the task is failed with an error and a cause
    sfn.send_task_failure(taskToken=token, error="PromotionAborted", cause="not tonight")
    # Then the Catch got both
    output = json.loads(ended(sfn, execution)["output"])
    assert output["failure"] == {"Error": "PromotionAborted", "Cause": "not tonight"}


def test_a_task_failing_after_the_stop_leaves_the_execution_aborted(interpreter: tuple[Any, Any]) -> None:
    sqs, sfn = interpreter
    # Given an execution whose task is in flight, its failure caught into a Fail state
    rejected = {"Type": "Fail", "Error": "CandidateRejected", "Cause": "the step failed"}
    execution, token = waiting_execution(sqs, sfn, caught=rejected)
    # When an alarm stops it, and then the task in flight fails
    sfn.stop_execution(executionArn=execution, error="RolledBackByAlarm", cause="alarm x in ALARM")
    # (AWS refuses the token of a stopped execution; moto takes it and runs the Catch path: without the patch the
    # execution ends FAILED)
    with contextlib.suppress(sfn.exceptions.ClientError):
        sfn.send_task_failure(taskToken=token, error="PromotionEndedError", cause="ended meanwhile")
    time.sleep(0.5)
    # Then it is ABORTED, as on AWS
    described = ended(sfn, execution)
    assert described["status"] == "ABORTED", described
