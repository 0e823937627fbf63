"""The promotion as synthesized: candidate alarms on what the score function emits, the rollback rule and role,
the promotion state machine (stages in order, bakes, the human's task token, every task's way to rollback),
the watch schedule, the dashboard and the outputs.

Resources are found through the stack outputs and by meaning (alarm names, actions), never by logical id.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.promotion import DEPLOYMENT_TABLE_ACTIONS, FAILURE_PATH
from infra.settings import ROOT
from infra.training_pipeline import LAMBDA_SERVICE_ERRORS
from shared.promotion import alarms as alarm_names
from shared.scoring import telemetry
from shared.usecase.settings import load_usecase
from tests.infra.conftest import get_att, ref

USECASE = load_usecase(ROOT / "usecases" / "telco_churn.toml")
PROMOTION = USECASE.promotion
PREFIX = "sluice-telco-churn-candidate-"
ALARM_STATE_CHANGE_PATTERN = {
    "source": ["aws.cloudwatch"],
    "detail-type": ["CloudWatch Alarm State Change"],
    "detail": {"alarmName": [{"prefix": PREFIX}], "state": {"value": ["ALARM"]}},
}
ROLLBACK_PATH_STATES = {"Rollback", "NotifyRollback", "NotifyRollbackFailed"}
HAPPY_PATH = [
    "Prepare",
    "OfflineGate",
    "OfflineVerdict",
    "Replay",
    "ReplayVerdict",
    "StartShadow",
    "BakeShadow",
    "AnalyzeShadow",
    "ShadowVerdict",
    "StartCanary",
]

# What each alarm watches: (metric name or (numerator, denominator) of a rate, variant, statistic, threshold).
EXPECTED_ALARMS: dict[str, tuple[str | tuple[str, str], str, str, float]] = {
    alarm_names.ERROR_RATE: (
        (telemetry.ERRORS, telemetry.PREDICTIONS),
        telemetry.CHALLENGER,
        "Sum",
        PROMOTION.max_error_rate * 100,
    ),
    alarm_names.LATENCY_P99: (telemetry.LATENCY, telemetry.CHALLENGER, "p99", PROMOTION.latency_budget_ms),
    alarm_names.FALLBACK_RATE: (
        (telemetry.FALLBACKS, telemetry.PREDICTIONS),
        telemetry.CHALLENGER,
        "Sum",
        PROMOTION.max_fallback_rate * 100,
    ),
    alarm_names.DIVERGENCE: (telemetry.SCORE_DELTA, telemetry.SHADOW, "Average", PROMOTION.max_divergence),
    alarm_names.SHADOW_ERRORS: (
        (telemetry.SHADOW_ERRORS, telemetry.SHADOW_SCORES),
        telemetry.SHADOW,
        "Sum",
        PROMOTION.max_error_rate * 100,
    ),
    alarm_names.WATCH_ERROR_RATE: (
        (telemetry.ERRORS, telemetry.PREDICTIONS),
        telemetry.CHAMPION,
        "Sum",
        PROMOTION.max_error_rate * 100,
    ),
    alarm_names.WATCH_LATENCY_P99: (telemetry.LATENCY, telemetry.CHAMPION, "p99", PROMOTION.latency_budget_ms),
}


# --- helpers -----------------------------------------------------------------------------------


def _resources(template_json: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: r for key, r in template_json["Resources"].items() if r["Type"] == resource_type}


def _placeholder(token: dict[str, Any]) -> str:
    if "Ref" in token:
        return "${" + token["Ref"] + "}"
    if "Fn::GetAtt" in token:
        return "${" + ".".join(token["Fn::GetAtt"]) + "}"
    return "${" + next(iter(token)) + "}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template_json: dict[str, Any], role_id: str) -> dict[str, dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in _resources(template_json, "AWS::IAM::Policy").values():
        if ref(role_id) in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return {s.get("Sid", json.dumps(s["Action"])): s for s in statements}


def _role_of(template_json: dict[str, Any], function_id: str) -> str:
    role: str = template_json["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def _alarm_metric_stats(properties: dict[str, Any]) -> list[tuple[str, str, frozenset[tuple[str, str]], str]]:
    """(namespace, metric name, dimension set, statistic) of every metric an alarm reads."""
    if "MetricName" in properties:
        statistic = properties.get("Statistic") or properties["ExtendedStatistic"]
        dimensions = frozenset((d["Name"], d["Value"]) for d in properties["Dimensions"])
        return [(properties["Namespace"], properties["MetricName"], dimensions, statistic)]
    found = []
    for query in properties["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dimensions = frozenset((d["Name"], d["Value"]) for d in metric["Dimensions"])
            found.append((metric["Namespace"], metric["MetricName"], dimensions, query["MetricStat"]["Stat"]))
    return found


@pytest.fixture(scope="module")
def alarms(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Alarm name → properties, for the candidate and watch-window alarms."""
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in _resources(template_json, "AWS::CloudWatch::Alarm").values()
        if isinstance(r["Properties"].get("AlarmName"), str) and r["Properties"]["AlarmName"].startswith(PREFIX)
    }


@pytest.fixture(scope="module")
def definition(template_json: dict[str, Any], output_refs: dict[str, str]) -> dict[str, Any]:
    machine = template_json["Resources"][output_refs["PromotionStateMachineArn"]]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    document: dict[str, Any] = json.loads("".join(p if isinstance(p, str) else _placeholder(p) for p in parts))
    return document


@pytest.fixture(scope="module")
def step_function_id(definition: dict[str, Any]) -> str:
    function_name = definition["States"]["Prepare"]["Parameters"]["FunctionName"]
    return str(function_name.removeprefix("${").split(".")[0])


@pytest.fixture(scope="module")
def emitted() -> dict[tuple[str, str, frozenset[str]], dict[str, Any]]:
    """What the score function's telemetry prints for one request touching every variant and metric:
    (namespace, metric name, dimension names) → the metric's EMF definition (unit, storage resolution)."""
    import contextlib
    import io

    request = telemetry.RequestTelemetry(usecase=USECASE.name)
    for variant in telemetry.VARIANTS:
        tally = request.tally(3, variant)
        for name in telemetry.COUNT_METRICS:
            tally.counts[name] += 1
        tally.latency_ms = 4.2
        tally.add_score(0.42)
    request.observe(telemetry.SCORE_DELTA, 3, telemetry.SHADOW, [0.05])  # |candidate - champion| of a request
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        telemetry.publish(request)
    found: dict[tuple[str, str, frozenset[str]], dict[str, Any]] = {}
    for line in buffer.getvalue().splitlines():
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    found[(directive["Namespace"], metric["Name"], frozenset(dimension_set))] = metric
    return found


# --- alarms ------------------------------------------------------------------------------------


def test_each_candidate_alarm_exists_with_its_threshold_and_the_settings_windows(
    alarms: dict[str, dict[str, Any]], output_refs: dict[str, str]
) -> None:
    # Given the use case's promotion settings and the alarm names of shared.promotion.alarms
    expected = {alarm_names.candidate_alarm_name(USECASE.name, what) for what in EXPECTED_ALARMS}
    # Then exactly those alarms exist under the rollback prefix
    assert set(alarms) == expected
    for what, (_, _, _, threshold) in EXPECTED_ALARMS.items():
        properties = alarms[alarm_names.candidate_alarm_name(USECASE.name, what)]
        # And each breaches above its threshold, on the settings' evaluation window, quiet without data
        assert properties["Threshold"] == pytest.approx(threshold), what
        assert properties["ComparisonOperator"] == "GreaterThanThreshold"
        assert properties["EvaluationPeriods"] == PROMOTION.alarm_evaluation_periods
        assert properties["DatapointsToAlarm"] == PROMOTION.alarm_datapoints_to_alarm
        assert properties["TreatMissingData"] == "notBreaching"
        # And it also notifies the alarm topic
        assert properties["AlarmActions"] == [ref(output_refs["AlarmTopicArn"])]


def test_each_alarm_reads_the_metric_and_dimensions_of_shared_telemetry(alarms: dict[str, dict[str, Any]]) -> None:
    for what, (metric, variant, statistic, _) in EXPECTED_ALARMS.items():
        properties = alarms[alarm_names.candidate_alarm_name(USECASE.name, what)]
        stats = _alarm_metric_stats(properties)
        names = list(metric) if isinstance(metric, tuple) else [metric]
        dimensions = frozenset({(telemetry.DIMENSION_USECASE, USECASE.name), (telemetry.DIMENSION_VARIANT, variant)})
        # Then every metric it reads is the score function's, on [usecase, variant] for the stage's variant
        assert sorted(s[1] for s in stats) == sorted(names), what
        for namespace, _, dimension_set, stat in stats:
            assert namespace == telemetry.NAMESPACE
            assert {name for name, _ in dimension_set} == set(telemetry.ALARM_DIMENSIONS)
            assert dimension_set == dimensions, what
            assert stat == statistic, what
        # And its period is the settings' (10 s in the demo: high-resolution metrics)
        periods = (
            [properties["Period"]]
            if "Period" in properties
            else [q["MetricStat"]["Period"] for q in properties["Metrics"] if "MetricStat" in q]
        )
        assert periods, what
        assert set(periods) == {PROMOTION.alarm_period_seconds}, what


def test_rate_alarms_fill_gaps_so_a_candidate_failing_every_request_still_breaches(
    alarms: dict[str, dict[str, Any]],
) -> None:
    for what, (metric, _, _, _) in EXPECTED_ALARMS.items():
        if not isinstance(metric, tuple):
            continue
        properties = alarms[alarm_names.candidate_alarm_name(USECASE.name, what)]
        (expression,) = [q for q in properties["Metrics"] if "Expression" in q]
        # Then the expression is a percentage with the numerator filled with 0 and the denominator with 1
        assert expression["ReturnData"] is True
        ids = {q["MetricStat"]["Metric"]["MetricName"]: q["Id"] for q in properties["Metrics"] if "MetricStat" in q}
        assert expression["Expression"] == f"100 * FILL({ids[metric[0]]}, 0) / FILL({ids[metric[1]]}, 1)"


def test_every_alarm_metric_is_one_the_score_function_emits(
    alarms: dict[str, dict[str, Any]], emitted: dict[tuple[str, str, frozenset[str]], dict[str, Any]]
) -> None:
    # Given the EMF documents shared.scoring.telemetry prints for a request touching every variant and metric
    # When each alarm's (namespace, metric name, dimension names) is looked up among them
    for name, properties in alarms.items():
        for namespace, metric_name, dimensions, _ in _alarm_metric_stats(properties):
            key = (namespace, metric_name, frozenset(dimension for dimension, _ in dimensions))
            # Then the score function emits exactly that metric on exactly that dimension set
            # (a mismatch would leave the alarm without data, i.e. never breaching: no rollback)
            assert key in emitted, f"{name} reads {key}, which the score function does not emit"
            # And with a period under a minute, the metric is stored at high resolution
            if PROMOTION.alarm_period_seconds < 60:
                assert emitted[key].get("StorageResolution") == 1, f"{metric_name} is not high resolution"


def test_the_score_function_emits_in_the_namespace_the_alarms_read(
    template: Template, output_refs: dict[str, str], template_json: dict[str, Any]
) -> None:
    score = template_json["Resources"][output_refs["ScoreFunctionName"]]["Properties"]
    assert score["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == telemetry.NAMESPACE == "Sluice"


# --- rollback: the rule and the function --------------------------------------------------------


def test_alarm_state_changes_into_alarm_reach_the_rollback_function_with_retries_and_a_dead_letter_queue(
    template: Template, output_refs: dict[str, str], alarms: dict[str, dict[str, Any]]
) -> None:
    rollback = output_refs["RollbackFunctionName"]
    # Then one rule on the default bus matches the candidate alarms' prefix entering ALARM
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": ALARM_STATE_CHANGE_PATTERN,
            "State": "ENABLED",
            "EventBusName": Match.absent(),
            "Targets": [
                Match.object_like(
                    {
                        "Arn": get_att(rollback),
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                        "RetryPolicy": Match.object_like({"MaximumRetryAttempts": Match.any_value()}),
                    }
                )
            ],
        },
    )
    # And EventBridge may invoke the function
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Action": "lambda:InvokeFunction", "FunctionName": get_att(rollback), "Principal": "events.amazonaws.com"},
    )
    # And the prefix covers every candidate and watch-window alarm (five candidate, two watch-window)
    assert len(alarms) == 7
    assert all(name.startswith(PREFIX) for name in alarms)
    # And a failed rollback invocation lands in a queue too (asynchronous on-failure destination)
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": ref(rollback),
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )


def test_the_rollback_role_is_least_privilege(
    template_json: dict[str, Any], output_refs: dict[str, str], definition: dict[str, Any]
) -> None:
    # Given the rollback function's role
    function_id = output_refs["RollbackFunctionName"]
    environment = template_json["Resources"][function_id]["Properties"]["Environment"]["Variables"]
    statements = _statements(template_json, _role_of(template_json, function_id))
    machine = output_refs["PromotionStateMachineArn"]
    # Then it reads and writes the deployment table (state, promotion record, audit events) and nothing else there
    table = statements["ReadWriteDeploymentState"]
    assert sorted(_as_list(table["Action"])) == sorted(DEPLOYMENT_TABLE_ACTIONS)
    assert table["Resource"] == get_att(output_refs["DeploymentTableName"])
    # And it rejects packages of this use case's group only
    packages = statements["RejectModelPackages"]
    assert sorted(packages["Action"]) == ["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"]
    assert "model-package/sluice-telco-churn/*" in json.dumps(packages["Resource"])
    # And it stops executions of the promotion state machine only
    stop = statements["StopPromotionExecutions"]
    assert sorted(stop["Action"]) == ["states:DescribeExecution", "states:StopExecution"]
    assert get_att(machine, "Name") in stop["Resource"]["Fn::Join"][1]
    assert ":execution:" in json.dumps(stop["Resource"])
    # And it reads the candidate alarms only, publishes to the alarm topic only
    assert statements["ReadCandidateAlarms"]["Action"] == "cloudwatch:DescribeAlarms"
    assert f"alarm:{PREFIX}*" in json.dumps(statements["ReadCandidateAlarms"]["Resource"])
    assert statements["NotifyAlarmTopic"] == {
        "Sid": "NotifyAlarmTopic",
        "Action": "sns:Publish",
        "Effect": "Allow",
        "Resource": ref(output_refs["AlarmTopicArn"]),
    }
    # And in the lake it only writes the promotion's timeline (after rolling back on an alarm)
    assert statements["WriteTimelines"]["Action"] == "s3:PutObject"
    assert statements["WriteTimelines"]["Resource"] == {
        "Fn::Join": ["", [get_att(output_refs["LakeBucketName"]), "/promotions/telco_churn/*"]]
    }
    # And nothing else: no other lake access, no wildcard action
    actions = {action for s in statements.values() for action in _as_list(s["Action"])}
    assert {action for action in actions if action.startswith("s3:")} == {"s3:PutObject"}
    assert all("*" not in action for action in actions)
    assert actions <= {
        *DEPLOYMENT_TABLE_ACTIONS,
        "sagemaker:DescribeModelPackage",
        "sagemaker:UpdateModelPackage",
        "states:DescribeExecution",
        "states:StopExecution",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetMetricData",
        "s3:PutObject",
        "sns:Publish",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }
    # And its environment names the alarm prefixes and the promotion state machine
    assert environment["CANDIDATE_ALARM_PREFIX"] == PREFIX
    assert environment["WATCH_ALARM_PREFIX"] == f"{PREFIX}watch-"
    assert environment["PROMOTION_STATE_MACHINE_ARN"] == ref(machine)


def test_the_promotion_step_function_reads_its_prefixes_and_writes_timelines_only(
    template_json: dict[str, Any], output_refs: dict[str, str], step_function_id: str
) -> None:
    properties = template_json["Resources"][step_function_id]["Properties"]
    assert properties["MemorySize"] == 1024
    assert properties["Timeout"] == 300
    statements = _statements(template_json, _role_of(template_json, step_function_id))
    lake = output_refs["LakeBucketName"]
    reads = statements["ReadModelsAndPredictions"]
    assert reads["Action"] == "s3:GetObject"
    assert reads["Resource"] == [
        {"Fn::Join": ["", [get_att(lake), f"/{prefix}/telco_churn/*"]]} for prefix in ("models", "predictions")
    ]
    assert statements["WriteTimelines"]["Action"] == "s3:PutObject"
    assert statements["WriteTimelines"]["Resource"] == {"Fn::Join": ["", [get_att(lake), "/promotions/telco_churn/*"]]}
    assert statements["ReadCandidateMetrics"]["Action"] == "cloudwatch:GetMetricData"
    actions = {action for s in statements.values() for action in _as_list(s["Action"])}
    assert not any(action.startswith("states:") for action in actions)
    # A light use case has no endpoint to shift
    assert not any("Endpoint" in action for action in actions)


# --- the state machine -------------------------------------------------------------------------


def _next(definition: dict[str, Any], name: str, data: dict[str, Any]) -> str | None:
    """The state after ``name`` on the happy path (every verdict passes), updating ``data`` like the interpreter."""
    state = definition["States"][name]
    kind = state["Type"]
    if kind in {"Succeed", "Fail"}:
        return None
    if kind == "Choice":
        for choice in state["Choices"]:
            value: Any = data
            for part in choice["Variable"].removeprefix("$.").split("."):
                value = value[part]
            if (
                ("StringEquals" in choice and value == choice["StringEquals"])
                or ("NumericLessThan" in choice and value < choice["NumericLessThan"])
                or ("NumericGreaterThanEquals" in choice and value >= choice["NumericGreaterThanEquals"])
            ):
                return str(choice["Next"])
        return str(state["Default"])
    if kind == "Pass" and "Result" in state:
        data["canary"] = dict(state["Result"])
    elif kind == "Pass" and "index.$" in state.get("Parameters", {}):
        data["canary"]["index"] += 1
    if kind == "Task":
        payload = state["Parameters"].get("Payload", {})
        action = payload.get("action")
        canary = data["canary"]
        data["actions"].append(
            (action, canary["steps"][canary["index"]]) if "weight.$" in payload and canary else action
        )
    return str(state["Next"]) if "Next" in state else None


def test_the_happy_path_runs_the_stages_in_order_through_every_canary_step(definition: dict[str, Any]) -> None:
    # Given a promotion whose every analysis passes
    data: dict[str, Any] = {"verdict": {"verdict": "pass"}, "bake": {"extensions": 0}, "canary": {}, "actions": []}
    visited: list[str] = []
    name: str | None = definition["StartAt"]
    # When the definition is walked from its start
    while name is not None:
        visited.append(name)
        name = _next(definition, name, data)
    # Then the stages come in order, the canary weights follow the use case's steps, and it ends promoted
    assert visited[: len(HAPPY_PATH)] == HAPPY_PATH
    assert data["actions"] == [
        "prepare",
        "offline_gate",
        "replay",
        "start_shadow",
        "analyze",
        *[item for weight in PROMOTION.canary_steps for item in (("set_weight", weight), ("analyze", weight))],
        "promote",
        "finish",
    ]
    assert visited[-3:] == ["Promote", "Finish", "Promoted"]
    assert definition["States"]["Promoted"]["Type"] == "Succeed"
    # And it costs the transitions the module documents: 6N + 12
    assert len(visited) == 6 * len(PROMOTION.canary_steps) + 12


def test_bakes_wait_the_settings_times_and_inconclusive_bakes_extend_then_ask_a_human(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    assert states["BakeShadow"] == {"Type": "Wait", "Seconds": PROMOTION.shadow_bake_seconds, "Next": "AnalyzeShadow"}
    assert states["BakeCanary"] == {"Type": "Wait", "Seconds": PROMOTION.canary_bake_seconds, "Next": "AnalyzeCanary"}
    for stage, bake in (("Shadow", "BakeShadow"), ("Canary", "BakeCanary")):
        verdict = states[f"{stage}Verdict"]
        inconclusive = next(c for c in verdict["Choices"] if c.get("StringEquals") == "inconclusive")
        extend = states[inconclusive["Next"]]
        (limit,) = extend["Choices"]
        assert limit["NumericLessThan"] == PROMOTION.max_bake_extensions
        assert states[limit["Next"]]["Next"] == bake
        assert extend["Default"] == f"AskHumanAbout{stage}"
        assert verdict["Default"] == "CandidateRejected"


def test_asking_a_human_waits_for_a_task_token_and_an_abort_rolls_back(definition: dict[str, Any]) -> None:
    states = definition["States"]
    for stage in ("Shadow", "Canary"):
        ask = states[f"AskHumanAbout{stage}"]
        # Then the task waits for SendTaskSuccess / SendTaskFailure with the token it hands the function
        assert ask["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
        payload = ask["Parameters"]["Payload"]
        assert payload["action"] == "wait_for_human"
        assert payload["task_token.$"] == "$$.Task.Token"
        assert ask["TimeoutSeconds"] == 24 * 3600
        # And an approval continues as a pass, anything else rolls back
        decision = states[ask["Next"]]
        (approve,) = decision["Choices"]
        assert approve == {"Variable": "$.human.decision", "StringEquals": "approve", "Next": approve["Next"]}
        assert decision["Default"] == "HumanRejected"
        assert states["HumanRejected"]["Next"] == "Rollback"
        # And SendTaskFailure (abort) or the timeout is caught into the rollback path
        assert ask["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": FAILURE_PATH, "Next": "Rollback"}]


def test_every_task_retries_service_errors_only_and_catches_everything_into_rollback(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    tasks = {name: state for name, state in states.items() if state["Type"] == "Task"}
    assert len(tasks) == 14
    for name, state in tasks.items():
        if name in ROLLBACK_PATH_STATES or name == "Finish":
            continue
        # Then a broken step rolls back: States.ALL → Rollback with the error at $.failure
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": FAILURE_PATH, "Next": "Rollback"}], name
        # And only Lambda's own service errors are retried
        assert [retry["ErrorEquals"] for retry in state["Retry"]] == [LAMBDA_SERVICE_ERRORS], name
    # And the rollback path ends in a Fail that carries the reason, and never loops back into itself
    rollback = states["Rollback"]
    assert rollback["Parameters"]["Payload"]["action"] == "rollback"
    assert rollback["Parameters"]["Payload"]["reason.$"] == f"{FAILURE_PATH}.Cause"
    assert rollback["Next"] == "NotifyRollback"
    assert rollback["Catch"][0]["Next"] == "NotifyRollbackFailed"
    assert states["NotifyRollback"]["Resource"].endswith(":states:::sns:publish")
    assert states["NotifyRollback"]["Next"] == "RolledBack"
    assert states["RolledBack"] == {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"}
    # And a failed verdict of any stage goes the same way
    assert states["CandidateRejected"]["Next"] == "Rollback"
    for choice in ("OfflineVerdict", "ReplayVerdict", "ShadowVerdict", "CanaryVerdict"):
        assert states[choice]["Default"] == "CandidateRejected", choice
    # And a missing timeline after the promotion does not undo it
    assert states["Finish"]["Catch"][0]["Next"] == "Promoted"


def test_the_state_machine_is_standard_logged_and_traced(template: Template, output_refs: dict[str, str]) -> None:
    template.has_resource(
        "AWS::StepFunctions::StateMachine",
        {
            "Properties": Match.object_like(
                {
                    "StateMachineType": "STANDARD",
                    "TracingConfiguration": {"Enabled": True},
                    "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
                }
            )
        },
    )
    assert output_refs["PromotionStateMachineArn"]


# --- watch window, dashboard, outputs ------------------------------------------------------------


def test_a_schedule_ends_the_watch_window_through_the_promotion_step_function(
    template: Template, step_function_id: str
) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(5 minutes)",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": get_att(step_function_id),
                        "Input": Match.serialized_json({"action": "end_watch", "usecase": USECASE.name}),
                    }
                )
            ],
        },
    )


def test_the_dashboard_shows_every_variant_metric_and_the_alarms(template_json: dict[str, Any]) -> None:
    (dashboard,) = _resources(template_json, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "sluice-telco-churn"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        telemetry.PREDICTIONS,
        telemetry.ERRORS,
        telemetry.LATENCY,
        telemetry.FALLBACKS,
        telemetry.SCORE_DELTA,
        telemetry.SCORE_BUCKET,
        telemetry.SHADOW_SCORES,
        "ExecutionsStarted",
    ):
        assert f'\\"{metric}\\"' in body, metric
    alarm_ids = [
        key
        for key, alarm in _resources(template_json, "AWS::CloudWatch::Alarm").items()
        if str(alarm["Properties"].get("AlarmName", "")).startswith(PREFIX)
    ]
    assert len(alarm_ids) == len(EXPECTED_ALARMS)
    for alarm_id in alarm_ids:
        assert json.dumps(get_att(alarm_id)) in body, alarm_id


def test_the_promotion_outputs(template_json: dict[str, Any]) -> None:
    outputs = template_json["Outputs"]
    assert outputs["DashboardName"]["Value"] == "sluice-telco-churn"
    assert "Ref" in outputs["PromotionStateMachineArn"]["Value"]
    assert "Ref" in outputs["RollbackFunctionName"]["Value"]
