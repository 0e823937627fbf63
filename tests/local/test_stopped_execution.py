"""``StopExecution`` on the embedded cloud: a stopped execution stays ``ABORTED``, whatever a task in flight does."""

from __future__ import annotations

import contextlib
import json
import time

import boto3
import pytest
from moto import mock_aws

from local.services.stepfunctions import StepFunctionsPatches


def test_a_task_failing_after_the_stop_leaves_the_execution_aborted(monkeypatch: pytest.MonkeyPatch) -> None:
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
            # Given an execution whose task is in flight (waiting on its token), its failure caught into a Fail state
            sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
            queue = sqs.create_queue(QueueName="steps")["QueueUrl"]
            step = {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Rejected"}],
                "End": True,
            }
            rejected = {"Type": "Fail", "Error": "CandidateRejected", "Cause": "the step failed"}
            definition = {"StartAt": "Step", "States": {"Step": step, "Rejected": rejected}}
            machine = sfn.create_state_machine(
                name="steps", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
            )["stateMachineArn"]
            execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
            deadline = time.monotonic() + 20
            while not (messages := sqs.receive_message(QueueUrl=queue).get("Messages")):
                assert time.monotonic() < deadline
                time.sleep(0.05)

            # When an alarm stops it, and then the task in flight fails
            sfn.stop_execution(executionArn=execution, error="RolledBackByAlarm", cause="alarm x in ALARM")
            token = json.loads(messages[0]["Body"])["token"]
            # (AWS refuses the token of a stopped execution; moto takes it and runs the Catch path: without the
            # patch the execution ends FAILED)
            with contextlib.suppress(sfn.exceptions.ClientError):
                sfn.send_task_failure(taskToken=token, error="PromotionEndedError", cause="ended meanwhile")
            time.sleep(0.5)
            while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.05)

            # Then it is ABORTED, as on AWS
            assert described["status"] == "ABORTED", described
        finally:
            patches.uninstall()
