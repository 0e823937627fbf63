"""The backfill as synthesized: the object function's role (contract folders only), the state machine (the map's
concurrency from the use case), the plan and finish roles, the alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infra.assembly import Assembly
from shared.backfill.environment import BackfillEnvironment
from shared.lake import layout as lake
from shared.usecase.settings import load_usecase
from tests.infra.test_batch import other_batch_assembly  # noqa: F401 - the fixture, shared with the batch tests

USECASE = "telco_churn"


def _statements(template_json: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for resource in template_json["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def _resources(statement: dict[str, Any]) -> list[str]:
    """Each resource as text (a Fn::Join's parts joined, a bucket's ARN left as its GetAtt)."""
    resources = statement["Resource"]
    out = []
    for resource in resources if isinstance(resources, list) else [resources]:
        if isinstance(resource, dict) and "Fn::Join" in resource:
            out.append("".join(p if isinstance(p, str) else json.dumps(p) for p in resource["Fn::Join"][1]))
        else:
            out.append(json.dumps(resource) if isinstance(resource, dict) else resource)
    return out


def test_the_backfill_function_writes_only_contract_folders(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Given the synthesized stack's backfill function
    function = template_json["Resources"][output_refs["BackfillFunctionName"]]["Properties"]
    role_id = function["Role"]["Fn::GetAtt"][0]
    statements = _statements(template_json, role_id)

    # Then it writes only under the use case's contract=* folders of curated, quarantine and manifests
    writes = [r for s in statements if "s3:PutObject" in _actions(s) for r in _resources(s)]
    expected = {
        f"/{lake.curated_prefix(USECASE)}{lake.CONTRACT_PARTITION}*",
        f"/{lake.quarantine_prefix(USECASE)}{lake.CONTRACT_PARTITION}*",
        f"/{lake.manifest_prefix(USECASE)}{lake.CONTRACT_PARTITION}*",
    }
    assert {w[w.index('"]}') + 3 :] for w in writes} == expected
    assert not any(a in _actions(s) for s in statements for a in ("s3:DeleteObject", "s3:PutObject*", "s3:*"))
    # And it reads retained raw versions and the use case's manifests, nothing else of the lake
    reads = {r for s in statements if "s3:GetObject" in _actions(s) for r in _resources(s)}
    assert any(r.endswith(f"/{lake.manifest_prefix(USECASE)}*") for r in reads)
    assert any("s3:GetObjectVersion" in _actions(s) for s in statements)
    assert not any(r.endswith(f"/{lake.curated_prefix(USECASE)}*") for r in reads)
    # And its environment names the lake and the bundled use-case file (the new contract)
    variables = function["Environment"]["Variables"]
    assert {BackfillEnvironment.variable("lake_bucket"), BackfillEnvironment.variable("usecase_file")} <= set(variables)
    # And a failed invocation is not retried behind the driver's back (it records the failure and resumes)
    configs = [
        r["Properties"]
        for r in template_json["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig"
        and r["Properties"]["FunctionName"] == {"Ref": output_refs["BackfillFunctionName"]}
    ]
    assert [c["MaximumRetryAttempts"] for c in configs] == [0]


# --- the state machine ---------------------------------------------------------------------------

TELCO = Path("usecases/telco_churn.toml")


def _definition(template_json: dict[str, Any], machine_id: str) -> tuple[dict[str, Any], list[Any]]:
    """The machine's definition, each token (a function's ARN) as ``<<i>>``, and the tokens."""
    parts = template_json["Resources"][machine_id]["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else f"<<{i}>>" for i, p in enumerate(parts))
    return json.loads(text), parts


def _function_of(task: dict[str, Any], parts: list[Any]) -> str:
    """The logical id of the function a task invokes."""
    return str(parts[int(str(task["Resource"]).strip("<>"))]["Fn::GetAtt"][0])


def _role_statements(template_json: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    role_id = template_json["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return _statements(template_json, role_id)


def test_the_backfill_machine_maps_objects_with_the_usecases_concurrency(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Given the synthesized backfill machine
    definition, parts = _definition(template_json, output_refs["BackfillStateMachineArn"])
    states = definition["States"]

    # Then it plans, maps the objects, and finishes
    assert list(states) == ["Plan", "BackfillObjects", "Finish"]
    objects = states["BackfillObjects"]
    # And the map is distributed over the JSON array the plan wrote, at the use case's [batch] concurrency
    assert objects["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert objects["ItemReader"]["ReaderConfig"]["InputType"] == "JSON"
    assert objects["ItemReader"]["Parameters"]["Key.$"] == "$.items_key"
    assert objects["MaxConcurrency"] == load_usecase(TELCO).batch.max_concurrency
    # And each item is the object function, retried on StorageError only, every failure caught and recorded
    item = objects["ItemProcessor"]["States"]["BackfillObject"]
    assert _function_of(item, parts) == output_refs["BackfillFunctionName"]
    assert [r["ErrorEquals"] for r in item["Retry"] if r["ErrorEquals"] == ["StorageError"]] == [["StorageError"]]
    storage = next(r for r in item["Retry"] if r["ErrorEquals"] == ["StorageError"])
    assert storage["MaxAttempts"] == load_usecase(TELCO).batch.retry_attempts
    assert item["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert item["Catch"][0]["Next"] == "FailureRecord"
    record = objects["ItemProcessor"]["States"]["RecordFailure"]
    assert record["Resource"].endswith(":s3:putObject")


def test_the_plan_and_finish_roles_are_limited_to_their_prefixes(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    definition, parts = _definition(template_json, output_refs["BackfillStateMachineArn"])
    plan = _role_statements(template_json, _function_of(definition["States"]["Plan"], parts))
    finish = _role_statements(template_json, _function_of(definition["States"]["Finish"], parts))

    def writes(statements: list[dict[str, Any]]) -> set[str]:
        found = {r for s in statements if "s3:PutObject" in _actions(s) for r in _resources(s)}
        return {w[w.index('"]}') + 3 :] for w in found}

    # Then the plan writes only the runs' folder, the finish only the pointer; neither deletes
    assert writes(plan) == {f"/{lake.backfill_run_prefix(USECASE)}*"}
    assert writes(finish) == {f"/{lake.curated_pointer_key(USECASE)}"}
    for statements in (plan, finish):
        assert not any(a in _actions(s) for s in statements for a in ("s3:DeleteObject", "s3:PutObject*", "s3:*"))
    # And the finish records the switch in the deployment table: put and query only
    dynamo = {a for s in finish for a in _actions(s) if a.startswith("dynamodb:")}
    assert dynamo == {"dynamodb:PutItem", "dynamodb:Query"}
    # And the plan reads manifests only
    reads = {r for s in plan if "s3:GetObject" in _actions(s) for r in _resources(s)}
    assert {r[r.index('"]}') + 3 :] for r in reads} == {f"/{lake.manifest_prefix(USECASE)}*"}


def test_the_backfill_machine_alarms_on_failed_and_timed_out_runs(
    template: Template, output_refs: dict[str, str]
) -> None:
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": metric,
                "Namespace": "AWS/States",
                "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": output_refs["BackfillStateMachineArn"]}}],
                "Threshold": 1,
                "AlarmActions": [{"Ref": output_refs["AlarmTopicArn"]}],
            },
        )


def test_other_batch_settings_change_the_backfill_map(other_batch_assembly: Assembly) -> None:  # noqa: F811
    # Given a use case whose [batch] asks for 7 at once and 4 retries (synthesized apart)
    template_json: dict[str, Any] = other_batch_assembly.template("Sluice-telco-churn")
    machine_id = template_json["Outputs"]["BackfillStateMachineArn"]["Value"]["Ref"]
    objects = _definition(template_json, machine_id)[0]["States"]["BackfillObjects"]

    # Then the backfill map takes them too
    assert objects["MaxConcurrency"] == 7
    item = objects["ItemProcessor"]["States"]["BackfillObject"]
    assert next(r for r in item["Retry"] if r["ErrorEquals"] == ["StorageError"])["MaxAttempts"] == 4
