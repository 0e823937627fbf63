"""The backfill function: its environment, and a role that reads raw and manifests and writes only contract folders."""

from __future__ import annotations

import json
from typing import Any

from shared.backfill.environment import BackfillEnvironment
from shared.lake import layout as lake

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
