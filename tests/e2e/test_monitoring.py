"""Monitoring on the embedded cloud: traffic with a planted drift in one segment and labels showing that segment
degrading → the monitor's report flags exactly the planted features and segment; its alarm reaches EventBridge and
starts a training run (never a promotion); the same run twice writes one report and joins nothing twice.

Driven only as an operator would: boto3 with the endpoint URL, HTTP to the API (scores and the feedback API's
labels) and the platform CLI. The use case is the Telco one with a ``[monitoring]`` tuned for a test (one 1-hour
window, small minimum samples; the hourly schedule never fires during the test: runs are started with the CLI).
The drift is planted by :mod:`local.demo.segment_shift` (seeded): for ``contract=Month-to-month`` customers,
``tenure`` and ``monthly_charges`` move up by one standard deviation and the labels are drawn at random.

Figures (printed; run with ``-s``): seconds from the monitor run to the training execution.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.demo.sample_data import load_sample_rows
from local.demo.segment_shift import PlannedShift, Sent, plan_shift, score_and_label, served_lines, shifted_traffic
from local.launcher import ROOT, RunningCloud, launch
from shared.deployment.adapters import DeploymentStore
from shared.lake import layout as lake
from shared.monitoring.types import DATA_DRIFT, SEGMENT_DEGRADATION
from shared.usecase.settings import UseCase, load_usecase
from tests.e2e.conftest import ingest_sample, run_cli, train, wait_for_execution
from tests.e2e.test_scoring import api_key

pytestmark = pytest.mark.e2e

MONITORING_SETTINGS = """
[monitoring]
schedule_minutes = 60           # never fires during the test: the runs are started with the CLI
windows_hours = [1.0]
min_samples = 100
min_labels = 50
retrain_cooldown_hours = 1
# A segment's holdout holds a few hundred rows: a smaller AUC drop cannot be told apart from its own noise.
auc_drop_alert = 0.15
"""
SEED = 20261120
TRAFFIC = 2400
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def usecase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("usecases") / "telco_churn.toml"
    head, _, _ = (ROOT / "usecases" / "telco_churn.toml").read_text().partition("\n[monitoring]")
    path.write_text(head + MONITORING_SETTINGS)
    return path


@pytest.fixture(scope="module")
def mon_usecase(usecase_file: Path) -> UseCase:
    return load_usecase(usecase_file)


@pytest.fixture(scope="module")
def mon_cloud(usecase_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    workdir = tmp_path_factory.mktemp("monitoring-cloud")
    running = launch(usecase=usecase_file, outputs_file=workdir / "outputs.json", log_file=workdir / "cloud.log")
    try:
        yield running
    finally:
        code = running.stop()
        if FIGURES:
            print("\nmonitoring figures:", json.dumps(FIGURES, indent=2, default=str))
        assert code == 0, f"the embedded cloud did not stop cleanly ({code}):\n{running.log_file.read_text()[-3000:]}"


@pytest.fixture(scope="module")
def champion(mon_cloud: RunningCloud, mon_usecase: UseCase, usecase_file: Path) -> int:
    ingest_sample(mon_cloud, mon_usecase, "e2e/monitoring.csv")
    execution = train(mon_cloud, f"e2e-monitoring-{int(time.time())}")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    deployed = run_cli(mon_cloud, "deploy", "1", usecase=usecase_file)
    assert deployed.returncode == 0, deployed.stderr
    time.sleep(mon_usecase.serving.deployment_cache_seconds + 1)
    return 1


@dataclass(frozen=True)
class Scenario:
    plan: PlannedShift
    sent: Sent


@pytest.fixture(scope="module")
def scenario(mon_cloud: RunningCloud, mon_usecase: UseCase, champion: int) -> Scenario:
    """Scored traffic with the planted shift, every label sent back, every prediction in the log."""
    rows = load_sample_rows(mon_usecase)
    plan = plan_shift(mon_usecase, rows)
    assert plan.segment == "contract=Month-to-month"
    assert plan.features == ("tenure", "monthly_charges")
    traffic = shifted_traffic(mon_usecase, rows, plan, n=TRAFFIC, seed=SEED)
    sent = score_and_label(mon_cloud.stack_outputs["ApiUrl"], mon_usecase, api_key(mon_cloud), traffic)
    assert not sent.failures, sent.failures
    assert sent.predictions == sent.labels == TRAFFIC
    s3, bucket = mon_cloud.client("s3"), mon_cloud.stack_outputs["LakeBucketName"]
    deadline = time.monotonic() + 120
    while served_lines(s3, bucket, lake.prediction_log_prefix(mon_usecase.name), sent.request_ids) < TRAFFIC:
        assert time.monotonic() < deadline, "the predictions did not all reach the prediction log"
        time.sleep(1.0)
    return Scenario(plan=plan, sent=sent)


@dataclass(frozen=True)
class FirstRun:
    stdout: str
    started: float
    latest: dict[str, Any]
    report: dict[str, Any]


def read_json(cloud: RunningCloud, key: str) -> Any:
    body = cloud.client("s3").get_object(Bucket=cloud.stack_outputs["LakeBucketName"], Key=key)["Body"].read()
    return json.loads(body)


def keys_under(cloud: RunningCloud, prefix: str) -> dict[str, str]:
    """Key → ETag of every object under ``prefix``."""
    s3 = cloud.client("s3")
    found: dict[str, str] = {}
    bucket = cloud.stack_outputs["LakeBucketName"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})
    return found


def joined_lines(cloud: RunningCloud, usecase: UseCase) -> int:
    s3, bucket = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    return sum(
        len(s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines())
        for key in keys_under(cloud, lake.joined_prefix(usecase.name))
        if key.endswith(".jsonl")
    )


@pytest.fixture(scope="module")
def first_run(mon_cloud: RunningCloud, mon_usecase: UseCase, usecase_file: Path, scenario: Scenario) -> FirstRun:
    started = time.monotonic()
    result = run_cli(mon_cloud, "monitor", "--run", "--fail-on-violation", usecase=usecase_file)
    assert result.returncode == 2, f"exit {result.returncode}: {result.stdout}\n{result.stderr}"
    print(f"\n$ python -m cli monitor --run\n{result.stdout}")
    latest = read_json(mon_cloud, lake.latest_report_key(mon_usecase.name))
    return FirstRun(
        stdout=result.stdout, started=started, latest=latest, report=read_json(mon_cloud, latest["report_json_key"])
    )


def test_the_report_flags_exactly_the_planted_features_and_segment(first_run: FirstRun, scenario: Scenario) -> None:
    # Given traffic in which Month-to-month customers' tenure and monthly charges shifted and their labels degraded
    violations = first_run.report["violations"]

    # When the monitor ran (first_run)
    drifted = {v["feature_name"] for v in violations if v["constraint_check_type"] == DATA_DRIFT}
    degraded = {v["segment"] for v in violations if v["constraint_check_type"] == SEGMENT_DEGRADATION}

    # Then exactly the planted features drifted, and of the contract values only the planted one degraded
    assert drifted == set(scenario.plan.features), violations
    assert scenario.plan.segment in degraded, first_run.stdout
    assert {s for s in degraded if s.startswith(f"{scenario.plan.segment_column}=")} == {scenario.plan.segment}
    # and the CLI says so, with each alert's sentence and the HTML report's path
    assert "alerts       " in first_run.stdout
    for v in violations:
        if v["constraint_check_type"] in (DATA_DRIFT, SEGMENT_DEGRADATION):
            assert v["description"] in first_run.stdout
    assert f"{first_run.latest['report_html_key']}" in first_run.stdout
    auc = next(v for v in violations if v["segment"] == scenario.plan.segment and v["metric"] == "auc")
    assert auc["q_value"] is not None
    assert auc["q_value"] < 0.05
    assert auc["n"] >= 500


def test_the_alarm_starts_a_training_run_and_nothing_is_promoted(
    mon_cloud: RunningCloud, mon_usecase: UseCase, usecase_file: Path, first_run: FirstRun, champion: int
) -> None:
    # Given the run's alerts (first_run), counted in the EMF metrics its alarms watch
    sfn = mon_cloud.client("stepfunctions")
    machine = mon_cloud.stack_outputs["TrainingStateMachineArn"]

    def retraining() -> list[dict[str, Any]]:
        return [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if "-retrain-" in e["name"]]

    # When the alarm evaluates (every minute) and EventBridge delivers its state change to the retrain function
    deadline = time.monotonic() + 150
    while not (started := retraining()):
        assert time.monotonic() < deadline, "no training execution started after the monitoring alarm"
        time.sleep(2.0)
    FIGURES["run_to_training_seconds"] = round(time.monotonic() - first_run.started, 1)

    # Then one training execution started, the audit history says why, and the new version is never promoted
    assert len(started) == 1, started
    alarms = mon_cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix="sluice-telco-churn-monitoring-")
    in_alarm = {a["AlarmName"] for a in alarms["MetricAlarms"] if a["StateValue"] == "ALARM"}
    assert "sluice-telco-churn-monitoring-segment-degradation" in in_alarm, in_alarm
    history = run_cli(mon_cloud, "history", "--limit", "50", usecase=usecase_file)
    assert history.returncode == 0, history.stderr
    assert "retrain_started" in history.stdout, history.stdout
    finished = wait_for_execution(mon_cloud, started[0]["executionArn"], timeout=300)
    assert finished["status"] == "SUCCEEDED", finished.get("cause")
    state = DeploymentStore(mon_cloud.client("dynamodb"), mon_cloud.stack_outputs["DeploymentTableName"]).get(
        mon_usecase.name
    )
    assert state.champion is not None
    assert state.champion.version == champion
    assert state.challenger is None
    # and the other alarms that entered ALARM with it started nothing more (one run at a time, then the cooldown)
    assert [e["name"] for e in retraining()] == [started[0]["name"]]
    print(f"\n$ python -m cli history\n{history.stdout}")


def test_the_same_run_twice_writes_one_report_and_joins_nothing_twice(
    mon_cloud: RunningCloud, mon_usecase: UseCase, first_run: FirstRun, scenario: Scenario
) -> None:
    # Given the first run's report and joined labels
    reports_before = keys_under(mon_cloud, lake.report_prefix(mon_usecase.name))
    joined_before = joined_lines(mon_cloud, mon_usecase)
    assert joined_before == scenario.sent.labels

    # When the monitor function is invoked again for the same time (a retried invocation)
    answer = mon_cloud.client("lambda").invoke(
        FunctionName=mon_cloud.stack_outputs["MonitorFunctionName"],
        Payload=json.dumps({"now": first_run.report["generated_at"]}).encode(),
    )
    summary = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, summary

    # Then the same run id and keys: one report, and every label joined once
    assert summary["run_id"] == first_run.latest["run_id"]
    assert summary["report_json_key"] == first_run.latest["report_json_key"]
    assert set(keys_under(mon_cloud, lake.report_prefix(mon_usecase.name))) == set(reports_before)
    assert joined_lines(mon_cloud, mon_usecase) == joined_before
    again = read_json(mon_cloud, summary["report_json_key"])
    assert [v["description"] for v in again["violations"]] == [v["description"] for v in first_run.report["violations"]]
