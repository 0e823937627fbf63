"""Human review as synthesized: the review routes behind the Cognito authorizer, the table and its least-privilege
grants, intake on the review queue, the SLA alarm from the use case, the sweep's schedule.

Resources are found through the stack outputs and by meaning (paths, metric names), never by logical id.
"""

from __future__ import annotations

from typing import Any

from infra.settings import ROOT
from shared.review import adapters, telemetry
from shared.review.environment import ReviewApiEnvironment, ReviewTableEnvironment
from shared.usecase.settings import load_usecase

USECASE = load_usecase(ROOT / "usecases" / "telco_churn.toml")


def _resources(template_json: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template_json["Resources"].items() if value["Type"] == kind}


def _paths(template_json: dict[str, Any]) -> dict[str, str]:
    """Resource logical id → its path below the API root (``v1/{usecase}/review/...``)."""
    resources = _resources(template_json, "AWS::ApiGateway::Resource")

    def path(logical: str) -> str:
        props = resources[logical]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) + "/" if isinstance(parent, dict) and "Ref" in parent else ""
        return prefix + props["PathPart"]

    return {logical: path(logical) for logical in resources}


def _review_methods(template_json: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _paths(template_json)
    return {
        (paths[m["Properties"]["ResourceId"]["Ref"]], m["Properties"]["HttpMethod"]): m["Properties"]
        for m in _resources(template_json, "AWS::ApiGateway::Method").values()
        if paths.get(m["Properties"]["ResourceId"].get("Ref", ""), "").startswith("v1/{usecase}/review")
    }


def _function_with(template_json: dict[str, Any], variable: str) -> list[str]:
    return [
        key
        for key, fn in _resources(template_json, "AWS::Lambda::Function").items()
        if variable in fn["Properties"].get("Environment", {}).get("Variables", {})
    ]


def _role_statements(template_json: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    role = template_json["Resources"][function_id]["Properties"]["Role"]
    statements: list[dict[str, Any]] = []
    for policy in _resources(template_json, "AWS::IAM::Policy").values():
        if role["Fn::GetAtt"][0] in [r["Ref"] for r in policy["Properties"]["Roles"]]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_every_review_route_but_the_sign_in_form_needs_a_reviewers_token(template_json: dict[str, Any]) -> None:
    # Given the synthesized review routes
    methods = _review_methods(template_json)
    # Then they are the page, the queue, an item, claim, decision, stats and the sign-in form
    assert set(methods) == {
        ("v1/{usecase}/review", "GET"),
        ("v1/{usecase}/review/items", "GET"),
        ("v1/{usecase}/review/items/{item_id}", "GET"),
        ("v1/{usecase}/review/items/{item_id}/claim", "POST"),
        ("v1/{usecase}/review/items/{item_id}/decision", "POST"),
        ("v1/{usecase}/review/stats", "GET"),
        ("v1/{usecase}/review/login", "GET"),
    }
    # And every one but the sign-in form has the Cognito authorizer of the reviewers' pool
    authorizers = _resources(template_json, "AWS::ApiGateway::Authorizer")
    (authorizer_id, authorizer), *_ = authorizers.items()
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    pools = _resources(template_json, "AWS::Cognito::UserPool")
    assert [arn["Fn::GetAtt"][0] for arn in authorizer["Properties"]["ProviderARNs"]] == list(pools)
    for (path, _), method in methods.items():
        if path.endswith("/login"):
            assert method["AuthorizationType"] == "NONE"
        else:
            assert method["AuthorizationType"] == "COGNITO_USER_POOLS", path
            assert method["AuthorizerId"] == {"Ref": authorizer_id}
    # And reviewers cannot sign themselves up
    (pool,) = pools.values()
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True


def test_the_review_table_is_the_stores_schema_on_demand_recoverable_and_encrypted(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    table = template_json["Resources"][output_refs["ReviewTableName"]]["Properties"]
    assert table["KeySchema"] == adapters.TABLE_SCHEMA["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        adapters.TABLE_SCHEMA["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    (index,) = table["GlobalSecondaryIndexes"]
    (expected,) = adapters.TABLE_SCHEMA["GlobalSecondaryIndexes"]
    assert index["IndexName"] == expected["IndexName"]
    assert index["KeySchema"] == expected["KeySchema"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_the_review_functions_get_the_table_and_nothing_wider(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Given the three functions that read REVIEW_TABLE
    table_id = output_refs["ReviewTableName"]
    functions = _function_with(template_json, ReviewTableEnvironment.variable("review_table"))
    assert len(functions) == 3
    for function_id in functions:
        statements = _role_statements(template_json, function_id)
        dynamo = [s for s in statements if any(str(a).startswith("dynamodb:") for a in _list(s["Action"]))]
        # Then each may touch only the review table and its queue index, with no scan, delete or wildcard
        (statement,) = dynamo
        actions = set(_list(statement["Action"]))
        assert actions <= {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
        resources = [str(r) for r in statement["Resource"]]
        assert all(table_id in r for r in resources)
        assert any(r.endswith(f"/index/{adapters.QUEUE_INDEX}']]}}") or adapters.QUEUE_INDEX in r for r in resources)
        # And S3 only under the use case's feedback or reports prefixes
        for s in statements:
            for action in _list(s["Action"]):
                assert action != "*"
                assert not str(action).endswith(":*")
                if str(action).startswith("s3:Put"):
                    assert "feedback/telco_churn/" in str(s["Resource"])
    # And the API function knows the page's app client
    api_function = _function_with(template_json, ReviewApiEnvironment.variable("user_pool_client_id"))
    assert len(api_function) == 1


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_intake_drains_the_review_queue_with_partial_batch_responses(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    queue_id = output_refs["ReviewQueueUrl"]
    mappings = [
        m["Properties"]
        for m in _resources(template_json, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    (mapping,) = mappings
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = template_json["Resources"][queue_id]["Properties"]
    assert "RedrivePolicy" in queue


def test_the_sla_alarm_watches_the_oldest_items_age_past_the_use_cases_sla(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    alarms = [
        a["Properties"]
        for a in _resources(template_json, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == telemetry.OLDEST_ITEM_AGE
    ]
    (alarm,) = alarms
    assert alarm["Threshold"] == USECASE.review.sla_seconds
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Dimensions"] == [{"Name": telemetry.DIMENSION_USECASE, "Value": USECASE.name}]
    assert alarm["AlarmActions"] == [{"Ref": output_refs["AlarmTopicArn"]}]


def test_the_sweep_runs_on_a_schedule(template_json: dict[str, Any], output_refs: dict[str, str]) -> None:
    sweep_id = output_refs["ReviewSweepFunctionName"]
    rules = [
        r["Properties"]
        for r in _resources(template_json, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [sweep_id, "Arn"]} for t in r["Properties"].get("Targets", []))
    ]
    (rule,) = rules
    assert rule["ScheduleExpression"].startswith("rate(")
