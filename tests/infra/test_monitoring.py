"""Production monitoring as synthesized: the monitor's schedule and least-privilege role, the monitoring alarms on
exactly the EMF the monitor prints, alarm → retraining rule → retrain function and that function's role, the
dashboard's monitoring section and the outputs.

Resources are found through the stack outputs and by meaning (alarm names, targets), never by logical id.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.settings import ROOT
from shared.lake import layout as lake
from shared.monitoring import telemetry
from shared.monitoring.alarms import ALARMED_CHECKS, monitoring_alarm_name, monitoring_alarm_prefix
from shared.monitoring.types import ModelSummary, MonitoringReport
from shared.usecase.settings import load_usecase
from tests.infra.conftest import get_att, ref

USECASE = load_usecase(ROOT / "usecases" / "telco_churn.toml")
NAME = USECASE.name
MONITORING = USECASE.monitoring


def _resources(template_json: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template_json["Resources"].items() if value["Type"] == kind}


def _role_statements(template_json: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to the function's role."""
    role = template_json["Resources"][function_id]["Properties"]["Role"]
    statements: list[dict[str, Any]] = []
    for policy in _resources(template_json, "AWS::IAM::Policy").values():
        if role["Fn::GetAtt"][0] in [r["Ref"] for r in policy["Properties"]["Roles"]]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _object_patterns(statement: dict[str, Any]) -> list[str]:
    """The object patterns of a statement's lake-object resources (``<bucket arn>/<pattern>``)."""
    patterns = []
    for resource in _listify(statement["Resource"]):
        parts = resource["Fn::Join"][1]
        patterns.append(parts[-1].lstrip("/"))
    return patterns


@pytest.fixture(scope="module")
def monitor_id(output_refs: dict[str, str]) -> str:
    return output_refs["MonitorFunctionName"]


@pytest.fixture(scope="module")
def retrain_id(output_refs: dict[str, str]) -> str:
    return output_refs["RetrainFunctionName"]


def test_the_monitor_is_sized_for_a_million_predictions(template_json: dict[str, Any], monitor_id: str) -> None:
    props = template_json["Resources"][monitor_id]["Properties"]
    assert props["MemorySize"] == 3008
    assert props["Timeout"] == 900
    assert props["Architectures"] == ["arm64"]
    assert set(props["Environment"]["Variables"]) >= {
        "SLUICE_USECASE_FILE",
        "LAKE_BUCKET",
        "DEPLOYMENT_TABLE",
        "MODEL_PACKAGE_GROUP",
    }


def test_the_monitor_runs_on_the_use_cases_schedule(template: Template, monitor_id: str) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": f"rate({MONITORING.schedule_minutes} minutes)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": get_att(monitor_id)})],
        },
    )


def test_the_monitor_reads_only_its_prefixes_and_writes_only_monitoring(
    template_json: dict[str, Any], monitor_id: str
) -> None:
    statements = _role_statements(template_json, monitor_id)
    s3_statements = [s for s in statements if any(a.startswith("s3:") for a in _listify(s["Action"]))]
    writes = [s for s in s3_statements if set(_listify(s["Action"])) & {"s3:PutObject", "s3:DeleteObject"}]
    reads = [s for s in s3_statements if "s3:GetObject" in _listify(s["Action"])]
    assert [p for s in writes for p in _object_patterns(s)] == [f"{lake.monitoring_prefix(NAME)}*"]
    assert all(_listify(s["Action"]) == ["s3:PutObject"] for s in writes)
    assert sorted(p for s in reads for p in _object_patterns(s)) == sorted(
        f"{prefix}*"
        for prefix in (
            lake.prediction_log_prefix(NAME),
            lake.feedback_prefix(NAME),
            lake.model_prefix(NAME),
            lake.monitoring_prefix(NAME),
        )
    )
    actions = {a for s in statements for a in _listify(s["Action"])}
    assert not {a for a in actions if a.startswith("cloudwatch:")}  # EMF through the logs
    assert not {a for a in actions if a.startswith("dynamodb:")} - {"dynamodb:GetItem", "dynamodb:Query"}


def _emitted_alert_dimensions() -> dict[str, set[str]]:
    """Metric name → dimension names, of the documents the monitor prints for a run (one served version)."""
    report = MonitoringReport(
        usecase=NAME,
        generated_at="2026-11-23T12:00:00+00:00",
        fdr=MONITORING.fdr,
        models=[ModelSummary(model_version="3", variant="champion", has_baseline=True, baseline_rows=612)],
        windows=[],
        violations=[],
        cells=[],
        data_quality=[],
        estimates=[],
        reliability=[],
    )
    emitted: dict[str, set[str]] = {}
    for line in telemetry.documents(report):
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == telemetry.NAMESPACE
            for metric in directive["Metrics"]:
                for dimensions in directive["Dimensions"]:
                    if all(name in document for name in dimensions):
                        emitted.setdefault(metric["Name"], set()).update(
                            [tuple(sorted((d, document[d]) for d in dimensions))]
                        )
    return emitted


def test_each_check_has_an_alarm_on_the_alert_count_the_monitor_prints(template_json: dict[str, Any]) -> None:
    emitted = _emitted_alert_dimensions()
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in _resources(template_json, "AWS::CloudWatch::Alarm").values()
        if "AlarmName" in a["Properties"]
    }
    topic = next(iter(_resources(template_json, "AWS::SNS::Topic")))
    for check in ALARMED_CHECKS:
        alarm = alarms[monitoring_alarm_name(NAME, check)]
        dimensions = tuple(sorted((d["Name"], d["Value"]) for d in alarm["Dimensions"]))
        assert alarm["Namespace"] == telemetry.NAMESPACE
        assert alarm["MetricName"] == telemetry.ALERT_METRICS[check]
        assert dimensions in emitted[alarm["MetricName"]], (check, dimensions, emitted.get(alarm["MetricName"]))
        assert alarm["Statistic"] == "Sum"
        assert alarm["Period"] == MONITORING.schedule_minutes * 60
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [ref(topic)]
        assert alarm["AlarmDescription"]


def test_a_monitoring_alarm_reaches_the_retrain_function(template: Template, retrain_id: str) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "detail": {"alarmName": [{"prefix": monitoring_alarm_prefix(NAME)}], "state": {"value": ["ALARM"]}},
            },
            "Targets": [Match.object_like({"Arn": get_att(retrain_id), "DeadLetterConfig": Match.any_value()})],
        },
    )


def test_the_retrain_function_may_only_start_training_and_audit(
    template_json: dict[str, Any], output_refs: dict[str, str], retrain_id: str
) -> None:
    statements = _role_statements(template_json, retrain_id)
    machine, table = output_refs["TrainingStateMachineArn"], output_refs["DeploymentTableName"]
    by_service: dict[str, list[dict[str, Any]]] = {}
    for statement in statements:
        for action in _listify(statement["Action"]):
            by_service.setdefault(action.split(":")[0], []).append(statement)
    assert {a for s in by_service["states"] for a in _listify(s["Action"])} == {
        "states:StartExecution",
        "states:ListExecutions",
    }
    assert all(s["Resource"] == ref(machine) for s in by_service["states"])
    assert {a for s in by_service["dynamodb"] for a in _listify(s["Action"])} == {"dynamodb:PutItem", "dynamodb:Query"}
    assert all(s["Resource"] == get_att(table) for s in by_service["dynamodb"])
    assert all(
        s["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [NAME]}}
        for s in by_service["dynamodb"]
    )
    s3_actions = {a for s in by_service["s3"] for a in _listify(s["Action"])}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket"}  # the latest report's sentences; no writes
    assert set(by_service) <= {"states", "dynamodb", "s3", "sns", "kms", "logs", "xray", "sqs"}  # sqs: failures


def test_the_dashboard_gains_a_monitoring_section(template_json: dict[str, Any]) -> None:
    (dashboard,) = _resources(template_json, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for check in ALARMED_CHECKS:
        assert telemetry.ALERT_METRICS[check] in body
    assert telemetry.FEATURE_DRIFT in body
    assert telemetry.PREDICTION_DRIFT_PSI in body
    assert "Monitoring" in body


def test_the_cli_finds_the_monitor_by_its_output(template_json: dict[str, Any]) -> None:
    assert "MonitorFunctionName" in template_json["Outputs"]
