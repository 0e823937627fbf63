"""The batch state machine as synthesized: the map's settings from the use case, least-privilege roles, alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.assembly import Assembly, synthesize
from shared.lake import layout as lake
from shared.usecase.settings import load_usecase
from tests.infra.conftest import get_att, object_arn, ref

TELCO = Path("usecases/telco_churn.toml")
USECASE = load_usecase(TELCO)
OTHER_BATCH = """
[batch]
max_concurrency = 7
tolerated_failure_percentage = 12.5
retry_attempts = 4
"""


def _definition(template_json: dict[str, Any], machine_id: str) -> dict[str, Any]:
    parts = template_json["Resources"][machine_id]["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "ARN" for p in parts))


def _machine(template_json: dict[str, Any], output_refs: dict[str, str]) -> dict[str, Any]:
    return _definition(template_json, output_refs["BatchStateMachineArn"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _worker_statements(template_json: dict[str, Any], output_refs: dict[str, str]) -> list[dict[str, Any]]:
    """The statements of the role of the function the map's ScoreChunk task invokes."""
    resources = template_json["Resources"]
    machine = resources[output_refs["BatchStateMachineArn"]]["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else f"<<{i}>>" for i, p in enumerate(machine))
    states = json.loads(text)["States"]["ScoreChunks"]["ItemProcessor"]["States"]
    worker_id = machine[int(states["ScoreChunk"]["Resource"].strip("<>"))]["Fn::GetAtt"][0]
    role_id = resources[worker_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy" and ref(role_id) in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


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


def test_the_worker_role_is_limited_to_its_prefixes(
    template: Template, template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Then the worker reads the raw bucket (the job's input) and writes only batch-predictions/<usecase>/ and the
    # prediction log of its use case
    batch, predictions = lake.batch_prefix(USECASE.name), lake.prediction_log_prefix(USECASE.name)
    raw = output_refs["RawBucketName"]
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Sid": "ReadSources", "Action": "s3:GetObject", "Resource": object_arn(raw, "*")}
                        ),
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
    # And the worker's own policy (found through the machine's ScoreChunk task) writes only under those two
    # prefixes, lists only batch-predictions/, and grants no wildcard action
    statements = _worker_statements(template_json, output_refs)
    lake_id = output_refs["LakeBucketName"]
    written = 0
    for statement in statements:
        actions = _as_list(statement["Action"])
        resources = _as_list(statement["Resource"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement
        if any(a.startswith("s3:") for a in actions):
            assert "*" not in resources, statement
        writes = [a for a in actions if a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List"))]
        if writes:
            assert writes == ["s3:PutObject"], statement
            written += 1
            assert resources == [object_arn(lake_id, f"{batch}*"), object_arn(lake_id, f"{predictions}*")]
        if "s3:ListBucket" in actions and resources == [get_att(lake_id)]:
            assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"{batch}*"]}}
    assert written == 1
    # And the lake is read only where models and the job's own objects are
    (reads,) = [s for s in statements if s.get("Sid") == "ReadModelsAndResults"]
    assert sorted(map(json.dumps, _as_list(reads["Resource"]))) == sorted(
        json.dumps(object_arn(lake_id, f"{prefix}*")) for prefix in (batch, lake.model_prefix(USECASE.name))
    )


def test_the_parent_alarms_on_failed_and_timed_out_executions(template: Template, output_refs: dict[str, str]) -> None:
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": metric,
                "Namespace": "AWS/States",
                "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": output_refs["BatchStateMachineArn"]}}],
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "Threshold": 1,
                "AlarmActions": [{"Ref": output_refs["AlarmTopicArn"]}],
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


@pytest.fixture(scope="module")
def other_batch_assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """The same use case with other [batch] settings, synthesized apart."""
    directory = tmp_path_factory.mktemp("other-batch")
    usecase_file = directory / "telco_churn.toml"
    usecase_file.write_text(TELCO.read_text() + OTHER_BATCH)
    return synthesize(usecase=usecase_file, outdir=directory / "cdk.out")


def test_other_batch_settings_change_the_map(other_batch_assembly: Assembly) -> None:
    # Given a use case whose [batch] asks for 7 chunks at once, 12.5% tolerated failures and 4 retries
    template_json: dict[str, Any] = other_batch_assembly.template("Sluice-telco-churn")
    machine_id = template_json["Outputs"]["BatchStateMachineArn"]["Value"]["Ref"]
    score = _definition(template_json, machine_id)["States"]["ScoreChunks"]
    # Then the map and the worker's retry take them
    assert score["MaxConcurrency"] == 7
    assert score["ToleratedFailurePercentage"] == 12.5
    (storage,) = [
        r for r in score["ItemProcessor"]["States"]["ScoreChunk"]["Retry"] if r["ErrorEquals"] == ["StorageError"]
    ]
    assert storage["MaxAttempts"] == 4
    # And they differ from the default use case's (the test would see a constant)
    assert (USECASE.batch.max_concurrency, USECASE.batch.tolerated_failure_percentage) != (7, 12.5)
