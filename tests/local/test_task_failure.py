"""``SendTaskFailure`` on the embedded cloud: the waiting task's ``Catch`` sees the error and the cause, as on AWS."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from local.services.stepfunctions import StepFunctionsPatches


def test_the_cause_of_a_task_failure_reaches_the_catch(monkeypatch: pytest.MonkeyPatch) -> None:
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
            # Given an execution waiting on a task token, its failure caught into $.failure
            sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
            queue = sqs.create_queue(QueueName="asks")["QueueUrl"]
            ask = {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Caught"}],
                "End": True,
            }
            definition = {"StartAt": "Ask", "States": {"Ask": ask, "Caught": {"Type": "Pass", "End": True}}}
            machine = sfn.create_state_machine(
                name="asks", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
            )["stateMachineArn"]
            execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
            deadline = time.monotonic() + 20
            while not (messages := sqs.receive_message(QueueUrl=queue).get("Messages")):
                assert time.monotonic() < deadline
                time.sleep(0.05)

            # When the task is failed with an error and a cause
            token = json.loads(messages[0]["Body"])["token"]
            sfn.send_task_failure(taskToken=token, error="PromotionAborted", cause="not tonight")
            while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.05)

            # Then the Catch got both
            assert json.loads(described["output"])["failure"] == {"Error": "PromotionAborted", "Cause": "not tonight"}
        finally:
            patches.uninstall()
