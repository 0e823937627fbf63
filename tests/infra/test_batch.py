"""The batch state machine as synthesized: the map's settings from the use case, least-privilege roles, alarms."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from shared.lake import layout as lake
from shared.usecase.settings import load_usecase

USECASE = load_usecase(__import__("pathlib").Path("usecases/telco_churn.toml"))


def _definition(template_json: dict[str, Any], machine_id: str) -> dict[str, Any]:
    parts = template_json["Resources"][machine_id]["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "ARN" for p in parts))


def _machine(template_json: dict[str, Any], output_refs: dict[str, str]) -> dict[str, Any]:
    return _definition(template_json, output_refs["BatchStateMachineArn"])


def test_the_map_takes_concurrency_and_tolerance_from_the_usecase(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Given the batch machine's definition
    states = _machine(template_json, output_refs)["States"]
    score = states["ScoreChunks"]
    # Then the map is distributed, reads a JSON array, and takes [batch]'s concurrency and tolerance
    assert score["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert score["ItemReader"]["ReaderConfig"]["InputType"] == "JSON"
    assert score["MaxConcurrency"] == USECASE.batch.max_concurrency
    # (CDK leaves a zero tolerance out: AWS's default is 0)
    assert score.get("ToleratedFailurePercentage", 0) == USECASE.batch.tolerated_failure_percentage
    assert "ItemBatcher" not in score
    assert "ResultWriter" not in score
    # And the worker retries the storage error only, and every failure is recorded
    worker = score["ItemProcessor"]["States"]["ScoreChunk"]
    retried = [r["ErrorEquals"] for r in worker["Retry"]]
    assert ["StorageError"] in retried
    assert all("ChunkFailedError" not in e for e in retried)
    assert worker["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert list(states) == ["Plan", "ScoreChunks", "Finish"]


def test_the_worker_role_is_limited_to_its_prefixes(template: Template) -> None:
    # Then the worker writes only batch-predictions/<usecase>/ and the prediction log of its use case
    batch, predictions = lake.batch_prefix(USECASE.name), lake.prediction_log_prefix(USECASE.name)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like({"Sid": "ReadModelsAndResults", "Action": "s3:GetObject"}),
                        Match.object_like(
                            {
                                "Sid": "WriteBatchOutputsAndPredictionLog",
                                "Action": "s3:PutObject",
                                "Resource": [
                                    {"Fn::Join": ["", [Match.any_value(), f"/{batch}*"]]},
                                    {"Fn::Join": ["", [Match.any_value(), f"/{predictions}*"]]},
                                ],
                            }
                        ),
                    ]
                )
            }
        },
    )
    # And no statement of any batch function writes elsewhere in the lake
    policies = template.find_resources("AWS::IAM::Policy")
    for logical_id, policy in policies.items():
        if not logical_id.startswith("BatchWorker"):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "s3:DeleteObject" not in actions
            assert "s3:*" not in actions


def test_the_parent_alarms_on_failed_and_timed_out_executions(template: Template, output_refs: dict[str, str]) -> None:
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": metric,
                "Namespace": "AWS/States",
                "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": output_refs["BatchStateMachineArn"]}}],
                "AlarmActions": [{"Ref": Match.string_like_regexp("AlertingAlarmTopic")}],
            },
        )


def test_an_upload_under_batch_starts_a_job(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": Match.object_like({"object": {"key": [{"prefix": lake.BATCH_UPLOAD_PREFIX}]}}),
            }
        },
    )
