"""A Distributed Map as Sluice's batch machine shapes it, on the embedded cloud's interpreter.

AWS documents ``ToleratedFailurePercentage`` as a number from 0 to 100 (an integer is valid), an ``ItemReader``
``s3:getObject`` with ``InputType: JSON`` reading a JSON array into items, and ``ItemSelector`` with
``$$.Map.Item.Value``; ``MaxConcurrency`` bounds the items in flight.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from local.services.stepfunctions import StepFunctionsPatches, decimal_tolerated_percentages


def test_a_whole_number_tolerance_is_written_as_a_float_and_nothing_else_changes() -> None:
    # Given a definition with an integer tolerance nested in a map, and a boolean elsewhere
    definition = json.dumps({"States": {"M": {"ToleratedFailurePercentage": 5, "X": True, "N": 3}}})
    # When it is normalised
    out = json.loads(decimal_tolerated_percentages(definition))
    # Then only the tolerance became a float
    assert out == {"States": {"M": {"ToleratedFailurePercentage": 5.0, "X": True, "N": 3}}}
    assert isinstance(out["States"]["M"]["ToleratedFailurePercentage"], float)
    assert decimal_tolerated_percentages("not json") == "not json"


def test_a_distributed_map_reads_a_json_array_with_an_integer_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
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
            # Given a JSON array of 25 items in S3 and a machine mapping over it, tolerance 5 (an integer)
            s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
            s3.create_bucket(Bucket="lake")
            s3.put_object(Bucket="lake", Key="items.json", Body=json.dumps([{"n": n} for n in range(25)]))
            definition = {
                "StartAt": "Map",
                "States": {
                    "Map": {
                        "Type": "Map",
                        "ItemReader": {
                            "Resource": "arn:aws:states:::s3:getObject",
                            "ReaderConfig": {"InputType": "JSON"},
                            "Parameters": {"Bucket": "lake", "Key.$": "$.key"},
                        },
                        "ItemSelector": {"item.$": "$$.Map.Item.Value", "job.$": "$.job"},
                        "ItemProcessor": {
                            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                            "StartAt": "Echo",
                            "States": {"Echo": {"Type": "Pass", "End": True}},
                        },
                        "MaxConcurrency": 4,
                        "ToleratedFailurePercentage": 5,
                        "End": True,
                    }
                },
            }
            # When it is created and run
            machine = sfn.create_state_machine(
                name="map", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
            )["stateMachineArn"]
            execution = sfn.start_execution(
                stateMachineArn=machine, input=json.dumps({"key": "items.json", "job": "j"})
            )
            deadline = time.monotonic() + 30
            while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            # Then every item was processed, each with the selector's shape
            assert described["status"] == "SUCCEEDED", described
            output = json.loads(described["output"])
            assert sorted(o["item"]["n"] for o in output) == list(range(25))
            assert {o["job"] for o in output} == {"j"}
        finally:
            patches.uninstall()
