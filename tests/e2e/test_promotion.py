"""Promotion on the embedded cloud: the synthesized state machine on moto's interpreter, live traffic over
HTTP, CloudWatch alarms evaluated with CloudWatch's semantics, and EventBridge → the rollback function.

Driven only as an operator would: boto3 with the endpoint URL, HTTP to the API, and the platform CLI.
The use case is the Telco one with shorter bakes (a file written here, like the heavy use case's). The
tests share one cloud and two trained versions (the first deployed as champion); each brings the
deployment to what its Given needs through fixtures, so any one of them runs alone or in any order:

1. a good candidate (a second training run) goes through every stage to champion while traffic flows;
2. an alarm in its watch window rolls back to the previous champion, without the state machine
   (Given: the good promotion's outcome, or a new one if the deployment has moved on since);
3. a very slow candidate (registered as a user could) is rolled back by its shadow alarm;
4. without traffic a stage stays inconclusive and waits for a human: approve goes on, abort rolls back
   (Given, for 3 and 4: the first version serving alone; a watch window left open is rolled back first).

The timelines the promotions wrote to the lake (a promoted one, one rolled back by its alarm) are fetched with
boto3 and opened in chromium (the ``page`` fixture, tests/browser/harness.py; screenshots in
test-artifacts/screenshots/).

Figures (printed; run with ``-s``): state transitions per promotion, rollback delay from breach to
traffic back on the champion.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.demo.candidates import register_copy, slowed
from local.demo.observe import first_breach, latest_execution, logged_predictions
from local.demo.observe import state_transitions as transitions
from local.demo.sample_data import load_sample_rows
from local.demo.traffic import Traffic
from local.launcher import ROOT, RunningCloud, launch
from shared.deployment.adapters import DeploymentStore
from shared.deployment.state import DeploymentState
from shared.lake import layout as lake
from shared.promotion.adapters import PromotionStore
from shared.promotion.alarms import SHADOW_ERRORS, WATCH_ERROR_RATE, candidate_alarm_name
from shared.promotion.transitions import Promotion
from shared.scoring import telemetry
from shared.usecase.settings import UseCase, load_usecase
from tests.browser.pictures import boxes, overlapping
from tests.e2e.conftest import ingest_sample, run_cli, train
from tests.e2e.test_scoring import api_key, features

pytestmark = pytest.mark.e2e

PROMOTION_SETTINGS = """[promotion]
shadow_bake_seconds = 5
canary_steps = [0.05, 0.25, 1.0]
canary_bake_seconds = 4
min_samples = 20
max_bake_extensions = 2
replay_max_records = 400
# Every function of the embedded cloud shares two cores with the test run: a p99 over a few seconds of requests
# swings by tens of milliseconds (an identical candidate measured 27 ms slower than its champion once). These
# tests are about stages, alarms and rollbacks (the slow candidate trips the shadow-error alarm, not latency);
# the latency verdict itself is unit-tested (tests/unit/test_promotion_analysis.py).
max_latency_ratio = 3.0
latency_tolerance_ms = 200
latency_budget_ms = 1000
watch_window_seconds = 60
alarm_period_seconds = 10
"""
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def usecase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = (ROOT / "usecases" / "telco_churn.toml").read_text()
    head, _, _ = text.partition("[promotion]")
    path = tmp_path_factory.mktemp("usecases") / "telco_churn.toml"
    path.write_text(head + PROMOTION_SETTINGS)
    return path


@pytest.fixture(scope="module")
def promo_usecase(usecase_file: Path) -> UseCase:
    return load_usecase(usecase_file)


@pytest.fixture(scope="module")
def promo_cloud(usecase_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    workdir = tmp_path_factory.mktemp("promotion-cloud")
    running = launch(usecase=usecase_file, outputs_file=workdir / "outputs.json", log_file=workdir / "cloud.log")
    try:
        yield running
    finally:
        running.stop()
        if FIGURES:
            print("\npromotion figures:", json.dumps(FIGURES, indent=2, default=str))


@pytest.fixture(scope="module")
def two_versions(promo_cloud: RunningCloud, promo_usecase: UseCase, usecase_file: Path) -> tuple[int, int]:
    """Two training runs; the first deployed as champion with the CLI."""
    ingest_sample(promo_cloud, promo_usecase, "e2e/promotion.csv")
    for run in ("first", "second"):
        execution = train(promo_cloud, f"e2e-promotion-{run}-{int(time.time())}")
        assert execution["status"] == "SUCCEEDED", execution.get("cause")
    deployed = run_cli(promo_cloud, "deploy", "1", usecase=usecase_file)
    assert deployed.returncode == 0, deployed.stderr
    return 1, 2


@pytest.fixture(scope="module")
def records(promo_usecase: UseCase) -> list[dict[str, Any]]:
    return [features(promo_usecase, row) for row in load_sample_rows(promo_usecase)[:1000]]


def traffic(cloud: RunningCloud, usecase: UseCase, records: list[dict[str, Any]], batch_size: int = 50) -> Traffic:
    url = f"{cloud.stack_outputs['ApiUrl'].rstrip('/')}/v1/{usecase.name}/predict"
    return Traffic(url=url, api_key=api_key(cloud), records=records, batch_size=batch_size)


def deployment(cloud: RunningCloud, usecase: UseCase) -> DeploymentState:
    return DeploymentStore(cloud.client("dynamodb"), cloud.stack_outputs["DeploymentTableName"]).get(usecase.name)


def promotion_record(cloud: RunningCloud, usecase: UseCase) -> Promotion | None:
    return PromotionStore(cloud.client("dynamodb"), cloud.stack_outputs["DeploymentTableName"]).get(usecase.name)


def history(cloud: RunningCloud, usecase_file: Path) -> list[str]:
    result = run_cli(cloud, "history", "--limit", "200", usecase=usecase_file)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def timeline_page(cloud: RunningCloud, usecase: UseCase, execution_arn: str, folder: Path) -> str:
    """The timeline page a promotion wrote to the lake, fetched as a user would (boto3), saved as a file URL."""
    key = lake.timeline_html_key(usecase.name, execution_arn.rsplit(":", 1)[-1])
    s3, bucket = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    body = wait_for(
        f"s3://{bucket}/{key}",
        lambda: (
            next(iter(s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])), None)
            and s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        ),
        timeout=10,
    )
    path = folder / "timeline.html"
    path.write_bytes(body)
    return path.as_uri()


def assert_timeline_reads(page: Any, url: str, *, outcome: str) -> str:
    """Open the page in chromium: the outcome first, stage names legible and apart, a time axis on every chart.
    Returns the outcome sentence."""
    page.goto(url)
    sentence = str(page.locator("p.outcome").inner_text())
    assert sentence.startswith(f"Outcome: {outcome}"), sentence
    labels = boxes(page, "svg.stage-strip text.stage-label")
    assert {"offline gate", "replay", "shadow"} <= {text for text, _ in labels}, labels
    assert all(box.width > 0 and box.height >= 10 for _, box in labels), labels
    assert overlapping(labels) == [], "stage labels print over each other"
    charts = page.locator("svg.chart").all()
    assert charts
    for chart in charts:
        ticks = [text for text, _ in boxes(chart, "text.tick-label") if text.strip()]
        assert len(ticks) >= 4, f"{chart.get_attribute('aria-label')}: no time axis"
        assert chart.locator("line.time-axis").count() == 1
    return sentence


@dataclass(frozen=True)
class GoodPromotion:
    """A promotion of the second version while traffic flowed, and what was observed right after it."""

    result: subprocess.CompletedProcess[str]
    elapsed: float
    failures: list[Any]
    served: dict[tuple[str, int], int]
    state: DeploymentState
    history: list[str]
    """The audit log's lines from the promotion's start on (earlier tests' promotions are not this one's)."""
    execution: dict[str, Any]


def promote_with_traffic(
    cloud: RunningCloud, usecase: UseCase, usecase_file: Path, candidate: int, records: list[dict[str, Any]]
) -> GoodPromotion:
    """Traffic on the champion until the prediction log has enough for the replay; promote ``candidate`` meanwhile."""
    with traffic(cloud, usecase, records) as flow:
        # Given traffic on the champion, recorded in the prediction log (the replay's input)
        wait_for(
            "served predictions in the log",
            lambda: logged_predictions(cloud, usecase) >= usecase.promotion.min_samples,
            timeout=90,
        )
        # When the operator promotes the candidate and follows it
        since = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"  # the audit log's time format, to the second
        started = time.monotonic()
        result = run_cli(cloud, "promote", str(candidate), usecase=usecase_file)
        elapsed = time.monotonic() - started
        _, failures, served = flow.snapshot()
    return GoodPromotion(
        result=result,
        elapsed=elapsed,
        failures=failures,
        served=served,
        state=deployment(cloud, usecase),
        history=[line for line in history(cloud, usecase_file) if line[: len(since)] >= since],
        execution=latest_execution(cloud),
    )


@pytest.fixture(scope="module")
def good_promotion(
    promo_cloud: RunningCloud,
    promo_usecase: UseCase,
    usecase_file: Path,
    two_versions: tuple[int, int],
    records: list[dict[str, Any]],
) -> GoodPromotion:
    """The second version promoted over the first, once per module (the first test checks it, the second uses it)."""
    _, candidate = two_versions
    return promote_with_traffic(promo_cloud, promo_usecase, usecase_file, candidate, records)


@pytest.fixture
def in_watch_window(
    promo_cloud: RunningCloud,
    promo_usecase: UseCase,
    usecase_file: Path,
    two_versions: tuple[int, int],
    records: list[dict[str, Any]],
) -> int:
    """The second version serving as champion inside its watch window: where the good promotion left the
    deployment when that test ran just before, else the second version promoted now. Returns its version."""
    _, candidate = two_versions
    state = deployment(promo_cloud, promo_usecase)
    if (state.stage, state.champion.version) != ("watch", candidate):  # type: ignore[union-attr]
        again = promote_with_traffic(promo_cloud, promo_usecase, usecase_file, candidate, records)
        assert again.result.returncode == 0, again.result.stdout + again.result.stderr
    return candidate


@pytest.fixture(scope="module")
def prediction_log(
    promo_cloud: RunningCloud, promo_usecase: UseCase, two_versions: tuple[int, int], records: list[dict[str, Any]]
) -> int:
    """The champion's served predictions in the log, enough for a replay (the good promotion's traffic leaves them
    when it ran before). Returns how many there are."""
    if logged_predictions(promo_cloud, promo_usecase) < promo_usecase.promotion.min_samples:
        with traffic(promo_cloud, promo_usecase, records):
            wait_for(
                "served predictions in the log",
                lambda: logged_predictions(promo_cloud, promo_usecase) >= promo_usecase.promotion.min_samples,
                timeout=90,
            )
    return int(logged_predictions(promo_cloud, promo_usecase))


@pytest.fixture
def champion_alone(
    promo_cloud: RunningCloud,
    promo_usecase: UseCase,
    usecase_file: Path,
    two_versions: tuple[int, int],
    prediction_log: int,
) -> int:
    """The first version serving alone, no promotion running, its predictions logged for the replay: a watch
    window left open by another test is rolled back to it by hand first. Returns the champion's version."""
    champion, _ = two_versions
    if deployment(promo_cloud, promo_usecase).stage == "watch":
        result = run_cli(
            promo_cloud, "rollback", "--reason", "e2e: the next test starts from the champion", usecase=usecase_file
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return champion


def test_a_good_candidate_is_promoted_through_every_stage_while_traffic_flows(
    promo_cloud: RunningCloud,
    promo_usecase: UseCase,
    two_versions: tuple[int, int],
    good_promotion: GoodPromotion,
    *,
    page: Any,
    tmp_path: Path,
) -> None:
    champion, candidate = two_versions
    # Given traffic on the champion, When the operator promotes the second version and follows it (the fixture)
    result, elapsed, failures, served = (
        good_promotion.result,
        good_promotion.elapsed,
        good_promotion.failures,
        good_promotion.served,
    )

    # Then the CLI showed every stage's verdict and exited 0
    assert result.returncode == 0, result.stdout + result.stderr
    for stage in ("offline_gate: pass", "replay: pass", "shadow: pass", "canary: pass"):
        assert stage in result.stdout, result.stdout
    for weight in promo_usecase.promotion.canary_steps[:-1]:
        assert f"v{candidate} at {weight:.0%}" in result.stdout, result.stdout
    # And the candidate serves as champion, watched, with the old one kept for a one-step rollback
    state = good_promotion.state
    assert (state.stage, state.champion.version, state.previous_champion.version) == ("watch", candidate, champion)  # type: ignore[union-attr]
    # And the audit log has every event, the timeline was written, and no request failed meanwhile
    lines = good_promotion.history
    actions = [line.split()[3] for line in lines]
    assert actions.count("promote_start") == 1
    assert any("stage=replay" in line for line in lines)
    assert any("stage=shadow" in line for line in lines)
    assert actions.count("weight") == len(promo_usecase.promotion.canary_steps), lines
    assert any(line.split()[3] == "promote" and "stage=watch" in line for line in lines), lines
    execution = good_promotion.execution
    assert execution["status"] == "SUCCEEDED"
    # And its timeline, opened in a browser, says promoted, with every stage apart on a time axis
    url = timeline_page(promo_cloud, promo_usecase, execution["executionArn"], tmp_path)
    outcome = assert_timeline_reads(page, url, outcome="promoted")
    assert f"version {candidate} serves since" in outcome
    assert "canary 100%" in [text for text, _ in boxes(page, "svg.stage-strip text.stage-label")]
    assert page.locator("g.rollback-marker").count() == 0
    assert failures == []
    assert served[("challenger", candidate)] > 0
    FIGURES["good promotion: state transitions"] = transitions(promo_cloud, execution["executionArn"])
    FIGURES["good promotion: seconds"] = round(elapsed, 1)


def test_an_alarm_in_the_watch_window_rolls_back_to_the_previous_champion(
    promo_cloud: RunningCloud,
    promo_usecase: UseCase,
    usecase_file: Path,
    two_versions: tuple[int, int],
    in_watch_window: int,
) -> None:
    champion, candidate = two_versions
    # Given the new champion inside its watch window, its execution finished
    state = deployment(promo_cloud, promo_usecase)
    assert (state.stage, state.champion.version) == ("watch", candidate)  # type: ignore[union-attr]
    finished = latest_execution(promo_cloud)

    # When the new champion starts failing requests (an incident: its Errors metric jumps)
    breach = datetime.now(UTC)
    dimensions = [
        {"Name": telemetry.DIMENSION_USECASE, "Value": promo_usecase.name},
        {"Name": telemetry.DIMENSION_VARIANT, "Value": telemetry.CHAMPION},
    ]
    promo_cloud.client("cloudwatch").put_metric_data(
        Namespace=telemetry.NAMESPACE,
        MetricData=[
            {"MetricName": telemetry.ERRORS, "Dimensions": dimensions, "Value": 40, "Unit": "Count"},
            {"MetricName": telemetry.PREDICTIONS, "Dimensions": dimensions, "Value": 100, "Unit": "Count"},
        ],
    )

    # Then the watch alarm rolls back to the previous champion through EventBridge and the rollback function
    period = promo_usecase.promotion.alarm_period_seconds
    rolled_back = wait_for(
        "the previous champion back",
        lambda: (s := deployment(promo_cloud, promo_usecase)).champion.version == champion and s,  # type: ignore[union-attr]
        timeout=period + 10,
    )
    delay = (rolled_back.updated_at - breach).total_seconds()
    alarm = candidate_alarm_name(promo_usecase.name, WATCH_ERROR_RATE)
    assert (rolled_back.stage, rolled_back.challenger) == ("idle", None)
    assert rolled_back.updated_by == f"rollback-alarm:{alarm}"
    assert delay <= period + 3, delay
    # And the state machine had no part in it: its execution ended before, unchanged
    assert latest_execution(promo_cloud)["executionArn"] == finished["executionArn"]
    assert any(f"rollback-alarm:{alarm}" in line and "rollback" in line for line in history(promo_cloud, usecase_file))
    FIGURES["watch-window rollback: seconds from breach to previous champion"] = round(delay, 1)


def test_a_very_slow_candidate_is_rolled_back_by_its_alarm_during_shadow(
    promo_cloud: RunningCloud,
    promo_usecase: UseCase,
    usecase_file: Path,
    champion_alone: int,
    records: list[dict[str, Any]],
    *,
    page: Any,
    tmp_path: Path,
) -> None:
    champion = champion_alone
    # Given a candidate that scores like the champion but takes ~1000 dense layers per record,
    # registered as a new version through the SageMaker API
    sagemaker, s3 = promo_cloud.client("sagemaker"), promo_cloud.client("s3")
    source = sagemaker.list_model_packages(
        ModelPackageGroupName=promo_cloud.stack_outputs["ModelPackageGroupName"], SortBy="CreationTime"
    )["ModelPackageSummaryList"][0]
    package = sagemaker.describe_model_package(ModelPackageName=source["ModelPackageArn"])
    onnx_key = package["CustomerMetadataProperties"]["onnx_s3_key"]
    champion_onnx = s3.get_object(Bucket=promo_cloud.stack_outputs["LakeBucketName"], Key=onnx_key)["Body"].read()
    slow = register_copy(
        sagemaker=sagemaker,
        s3=s3,
        source_package_arn=source["ModelPackageArn"],
        onnx_model=slowed(champion_onnx),
        run_id=f"e2e-slow-{int(time.time())}",
        description="the champion with a slow dense branch (e2e)",
    )
    version = int(slow["ModelPackageVersion"])
    assert deployment(promo_cloud, promo_usecase).stage == "idle"

    with traffic(promo_cloud, promo_usecase, records, batch_size=250) as flow:
        # When it is promoted while traffic flows
        since = datetime.now(UTC)
        started = run_cli(promo_cloud, "promote", str(version), "--no-wait", usecase=usecase_file)
        assert started.returncode == 0, started.stderr
        # Then an alarm rolls it back during shadow, and the champion serves alone again
        execution = wait_for(
            "the promotion stopped by the alarm",
            lambda: (e := latest_execution(promo_cloud))["status"] != "RUNNING" and e,
            timeout=90,
        )
        state = deployment(promo_cloud, promo_usecase)
        time.sleep(promo_usecase.serving.deployment_cache_seconds + 1)  # requests after the rollback, too
        requests, failures, served = flow.snapshot()

    alarm = candidate_alarm_name(promo_usecase.name, SHADOW_ERRORS)
    assert execution["status"] == "ABORTED", execution
    assert (state.stage, state.champion.version, state.challenger, state.shadow) == ("idle", champion, None, False)  # type: ignore[union-attr]
    assert state.updated_by == f"rollback-alarm:{alarm}"
    promotion = promotion_record(promo_cloud, promo_usecase)
    assert promotion is not None
    assert promotion.outcome.value == "rolled_back"
    assert sagemaker.describe_model_package(ModelPackageName=slow["ModelPackageArn"])["ModelApprovalStatus"] == (
        "Rejected"
    )
    # And within one alarm evaluation window after the breach, with no request failed in between
    breach = first_breach(promo_cloud, promo_usecase, telemetry.SHADOW_ERRORS, telemetry.SHADOW, since)
    assert breach is not None, f"no {telemetry.SHADOW_ERRORS} datapoint since {since}"
    delay = (state.updated_at - breach).total_seconds()  # type: ignore[operator]
    period = promo_usecase.promotion.alarm_period_seconds
    assert 0 <= delay <= period + 5, delay  # the period closes, the next tick evaluates, the event is delivered
    assert failures == []
    assert requests > 0
    assert not any(variant == "challenger" for variant, _ in served)
    # And its timeline, opened in a browser, says rolled back by the alarm, and marks and labels the point
    url = timeline_page(promo_cloud, promo_usecase, execution["executionArn"], tmp_path)
    outcome = assert_timeline_reads(page, url, outcome="rolled back")
    assert alarm in outcome, outcome
    assert f"Now version {champion} serves" in outcome, outcome
    assert "rolled back" in [text for text, _ in boxes(page, "svg.stage-strip text.stage-label")]
    assert page.locator("svg.chart g.rollback-marker").count() == page.locator("svg.chart").count()
    label = str(page.locator("text.rollback-label").text_content())
    assert label.startswith("rolled back "), label
    clock = datetime.strptime(label.removeprefix("rolled back "), "%H:%M:%S").time()
    labelled = datetime.combine(state.updated_at.date(), clock, tzinfo=UTC)  # type: ignore[union-attr]
    assert abs((labelled - state.updated_at).total_seconds()) <= 2, (label, state.updated_at)  # type: ignore[operator]
    FIGURES["alarm rollback: state transitions"] = transitions(promo_cloud, execution["executionArn"])
    FIGURES["alarm rollback: seconds from breach to champion alone"] = round(delay, 1)


@pytest.mark.usefixtures("champion_alone")
def test_an_inconclusive_stage_waits_for_a_human_approve_goes_on_and_abort_rolls_back(
    promo_cloud: RunningCloud, promo_usecase: UseCase, usecase_file: Path, two_versions: tuple[int, int]
) -> None:
    champion, candidate = two_versions
    # Given no traffic at all (every live analysis has too few samples)
    assert deployment(promo_cloud, promo_usecase).stage == "idle"
    started = run_cli(promo_cloud, "promote", str(candidate), "--no-wait", usecase=usecase_file)
    assert started.returncode == 0, started.stderr
    settings = promo_usecase.promotion
    bakes = (settings.max_bake_extensions + 1) * (settings.shadow_bake_seconds + 2)

    # When the shadow stage stayed inconclusive, Then the promotion waits for a human
    waiting = wait_for(
        "a decision asked in shadow",
        lambda: (p := promotion_record(promo_cloud, promo_usecase)) is not None and p.task_token and p,
        timeout=bakes + 20,
    )
    assert deployment(promo_cloud, promo_usecase).stage == "shadow"
    assert waiting.extensions == settings.max_bake_extensions + 1
    status = run_cli(promo_cloud, "status", usecase=usecase_file)
    assert "waiting for a human decision" in status.stdout

    # When the operator approves, Then it goes on to the first canary step (and asks again there)
    assert run_cli(promo_cloud, "approve", "--reason", "quiet hour", usecase=usecase_file).returncode == 0
    wait_for("the canary", lambda: deployment(promo_cloud, promo_usecase).stage == "canary", timeout=20)
    wait_for(
        "a decision asked in canary",
        lambda: (p := promotion_record(promo_cloud, promo_usecase)) is not None and p.task_token,
        timeout=bakes + 20,
    )

    # When the operator aborts, Then the promotion rolls back: the champion alone, the execution failed
    assert run_cli(promo_cloud, "abort", "--reason", "not tonight", usecase=usecase_file).returncode == 0
    execution = wait_for(
        "the execution ended", lambda: (e := latest_execution(promo_cloud))["status"] != "RUNNING" and e, timeout=30
    )
    state = deployment(promo_cloud, promo_usecase)
    assert execution["status"] == "FAILED"
    assert (state.stage, state.champion.version, state.challenger) == ("idle", champion, None), (
        execution.get("error"),
        execution.get("cause"),
    )  # type: ignore[union-attr]
    lines = history(promo_cloud, usecase_file)
    assert any(line.split()[3] == "approve" and "quiet hour" in line for line in lines), lines
    assert any(line.split()[3] == "abort" and "not tonight" in line for line in lines), lines
    # And asking again refuses: nothing waits any more
    again = run_cli(promo_cloud, "approve", usecase=usecase_file)
    assert again.returncode == 1
    assert "no promotion" in again.stderr
    FIGURES["human approve/abort: state transitions"] = transitions(promo_cloud, execution["executionArn"])


def test_the_dashboard_shows_the_candidates_metrics(promo_cloud: RunningCloud, promo_usecase: UseCase) -> None:
    # Given the deployed stack's dashboard
    name = promo_cloud.stack_outputs["DashboardName"]
    # When it is read back as a user would
    body = json.loads(promo_cloud.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])
    # Then its widgets graph the score function's metrics of this use case, by variant
    text = json.dumps(body)
    assert body["widgets"]
    for metric in ("Predictions", "Errors", "Latency", "ScoreDelta"):
        assert metric in text, metric
    assert promo_usecase.name in text
    assert "challenger" in text
