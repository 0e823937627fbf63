"""`make demo`: the loop on the embedded cloud, driven as a user would — boto3 and the stack outputs.

Stages so far: the data path, training, then serving. The cloud starts as its own process from the
synthesized template; the demo uploads the use case's sample data, a damaged copy and a copy with a
renamed column, waits for each object's manifest, re-uploads one file to show that a duplicate has
no effect, and prints what landed where. Then it starts the training pipeline (Step Functions →
SageMaker training job → gate → model registry) and shows the metrics and the registered version;
deploys it as the champion with the platform CLI and scores customers over HTTP through the API
Gateway front (single records, a batch of 1,000, a bad record). Then promotion: a second training run
is promoted with `python -m cli promote` through the offline gate, replay, shadow and every canary step
to 100% while synthetic traffic flows; once its watch window is over, a deliberately bad candidate (the
champion made very slow, registered through the SageMaker API) is promoted and rolled back by its
CloudWatch alarm during shadow. It prints the audit history, where the timeline pictures are, the
total time and the rollback delay (from the first breaching datapoint to the champion alone), and
shuts the cloud down.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.assembly import usecase_file
from local.demo.candidates import register_copy, slowed
from local.demo.observe import first_breach, latest_execution, logged_predictions, state_transitions
from local.demo.sample_data import damaged_csv, load_sample_rows, renamed_column_csv, to_csv
from local.demo.segment_shift import plan_shift, score_and_label, served_lines, shifted_traffic
from local.demo.traffic import Traffic
from local.launcher import ROOT, RunningCloud, launch
from shared.lake import layout as lake_keys
from shared.lake.layout import manifest_prefix
from shared.monitoring.alarms import monitoring_alarm_prefix
from shared.monitoring.types import window_name
from shared.promotion.transitions import PromotionOutcome, Stage
from shared.scoring import telemetry
from shared.usecase.settings import UseCase, load_usecase


class DemoError(RuntimeError):
    """The demo could not finish; the message says which step."""


def say(message: str) -> None:
    print(message, flush=True)


def manifests_by_key(cloud: RunningCloud, usecase: UseCase) -> dict[str, list[dict[str, Any]]]:
    """Every manifest of the use case, grouped by the source key it describes."""
    s3 = cloud.client("s3")
    lake = cloud.stack_outputs["LakeBucketName"]
    found: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lake, Prefix=manifest_prefix(usecase.name)):
        for item in page.get("Contents", []):
            manifest = json.loads(s3.get_object(Bucket=lake, Key=item["Key"])["Body"].read())
            found.setdefault(manifest["source_key"], []).append(manifest)
    return found


def wait_for_manifests(cloud: RunningCloud, usecase: UseCase, keys: list[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while True:
        manifests = manifests_by_key(cloud, usecase)
        for key in keys:
            if key in manifests and key not in seen:
                seen.add(key)
                m = manifests[key][0]
                say(f"  ✓ {key}: {m['status']} in {m['duration_ms']} ms")
        if seen >= set(keys):
            return {key: manifests[key][0] for key in keys}
        if time.monotonic() > deadline:
            raise DemoError(f"no manifest after {timeout:.0f}s for {sorted(set(keys) - seen)}")
        time.sleep(0.5)


def count_curated_rows(cloud: RunningCloud, manifest: dict[str, Any]) -> int:
    import pyarrow.parquet as pq

    s3 = cloud.client("s3")
    lake = cloud.stack_outputs["LakeBucketName"]
    return sum(
        pq.read_metadata(io.BytesIO(s3.get_object(Bucket=lake, Key=key)["Body"].read())).num_rows
        for key in manifest["curated_keys"]
    )


def quarantine_reasons(cloud: RunningCloud, manifest: dict[str, Any]) -> Counter[str]:
    s3 = cloud.client("s3")
    lake = cloud.stack_outputs["LakeBucketName"]
    reasons: Counter[str] = Counter()
    for key in manifest["quarantine_keys"]:
        if not key.endswith(".jsonl"):
            continue
        for line in s3.get_object(Bucket=lake, Key=key)["Body"].iter_lines():
            for error in json.loads(line)["errors"]:
                reasons[f"{error['field']}: {error['reason'].split(':')[0]}"] += 1
    return reasons


def print_summary(manifests: dict[str, dict[str, Any]], curated_counts: dict[str, int]) -> None:
    say("\nWhat landed where")
    header = f"  {'object':<44} {'status':<9} {'rows in':>8} {'curated':>8} {'quarant.':>8}  reconciles"
    say(header)
    say("  " + "-" * (len(header) - 2))
    for key, m in manifests.items():
        ok = m["rows_in"] == m["rows_curated"] + m["rows_quarantined"] == curated_counts[key] + m["rows_quarantined"]
        say(
            f"  {key:<44} {m['status']:<9} {m['rows_in']:>8} {m['rows_curated']:>8} "
            f"{m['rows_quarantined']:>8}  {'yes' if ok else 'NO'}"
        )
        if m["reason"]:
            say(f"      reason: {m['reason'][:160]}")
        for change in m["schema_changes"]:
            if change != m["reason"]:
                say(f"      schema: {change[:160]}")


def read_s3_uri(cloud: RunningCloud, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def train(cloud: RunningCloud, timeout: float) -> None:
    """Start the training pipeline, follow it, and show what the registry received."""
    sfn = cloud.client("stepfunctions")
    outputs = cloud.stack_outputs
    run_id = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    say(f"\nTraining: starting the pipeline (execution {run_id}) …")
    started_at = time.monotonic()
    execution = sfn.start_execution(stateMachineArn=outputs["TrainingStateMachineArn"], name=run_id, input="{}")
    seen: set[str] = set()
    while True:
        for event in sfn.get_execution_history(executionArn=execution["executionArn"])["events"]:
            name = event.get("stateEnteredEventDetails", {}).get("name")
            if name and name not in seen:
                seen.add(name)
                say(f"  → {name} (+{time.monotonic() - started_at:.1f}s)")
        status = sfn.describe_execution(executionArn=execution["executionArn"])
        if status["status"] != "RUNNING":
            break
        if time.monotonic() - started_at > timeout:
            raise DemoError(f"training still running after {timeout:.0f}s")
        time.sleep(1.0)
    if status["status"] != "SUCCEEDED":
        raise DemoError(f"training {status['status']}: {status.get('error', '')} {status.get('cause', '')}")
    say(f"  training pipeline succeeded in {time.monotonic() - started_at:.1f}s")

    sagemaker = cloud.client("sagemaker")
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=outputs["ModelPackageGroupName"], SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    package = sagemaker.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])
    metrics = json.loads(read_s3_uri(cloud, package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]))
    properties = package["CustomerMetadataProperties"]
    say(f"\nRegistered {package['ModelPackageGroupName']} version {package.get('ModelPackageVersion', '?')}")
    say(f"  approval: {package['ModelApprovalStatus']}; ONNX sha256 {properties['onnx_sha256'][:16]}…")
    say(f"  lineage: contract {properties['contract_version']}, training set {properties['training_set_hash'][:16]}…")
    say(
        f"  ROC AUC {metrics['auc']:.3f}  PR AUC {metrics['holdout']['pr_auc']:.3f}  "
        f"ECE {metrics['ece']:.3f}  parity max |Δ| {metrics['parity']['max_abs_diff']:.1e}"
    )
    threshold = metrics.get("threshold", {})
    if threshold:
        say(
            f"  threshold from costs {threshold.get('threshold', float('nan')):.3f}: precision "
            f"{threshold.get('precision', float('nan')):.3f}, recall {threshold.get('recall', float('nan')):.3f}"
        )
    for segment, values in (metrics.get("segments") or {}).items():
        aucs = ", ".join(
            f"{value} {m['roc_auc']:.3f}" if "roc_auc" in m else f"{value} n/a ({m.get('skipped', 'no AUC')})"
            for value, m in values.items()
        )
        say(f"  AUC by {segment}: {aucs}")


def http_json(url: str, body: Any, key: str) -> tuple[int, dict[str, Any], float]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310 - local
    request.add_header("content-type", "application/json")
    request.add_header("x-api-key", key)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, payload = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        status, payload = error.code, json.loads(error.read() or b"{}")
    return status, payload, (time.perf_counter() - started) * 1000


def as_record(usecase: UseCase, row: dict[str, str]) -> dict[str, Any]:
    """A sample row as a product service sends it: typed JSON values, no label."""
    record: dict[str, Any] = {}
    for column in usecase.contract.columns:
        value = row.get(column.name, "")
        if column.name == usecase.contract.label:
            continue
        if value == "":
            record[column.name] = None
        elif column.type.value == "int":
            record[column.name] = int(value)
        elif column.type.value == "float":
            record[column.name] = float(value)
        else:
            record[column.name] = value
    return record


def cli_command(cloud: RunningCloud, usecase_file: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli",
        "--usecase",
        str(usecase_file),
        "--endpoint-url",
        cloud.endpoint_url,
        "--outputs-file",
        str(cloud.outputs_file),
        *args,
    ]


def run_cli(cloud: RunningCloud, usecase_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(cloud, usecase_file, *args), capture_output=True, text=True, check=False, cwd=ROOT
    )


def follow_cli(cloud: RunningCloud, usecase_file: Path, *args: str) -> int:
    """Run a CLI command, showing its output as it comes; its exit code."""
    with subprocess.Popen(
        cli_command(cloud, usecase_file, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            say(f"  │ {line.rstrip()[:220]}")
        return process.wait()


def serve(cloud: RunningCloud, usecase: UseCase, usecase_file: Path, rows: list[dict[str, str]]) -> None:
    """Deploy the registered model as champion with the CLI, then score customers over HTTP."""
    version = "1"
    say(f"\nServing: `python -m cli deploy {version}` (the first champion) …")
    deployed = run_cli(cloud, usecase_file, "deploy", version)
    if deployed.returncode != 0:
        raise DemoError(f"deploy failed: {deployed.stderr.strip()}")
    say(f"  {deployed.stdout.strip()}")
    key_id = cloud.stack_outputs["ApiKeyId"]
    key = str(cloud.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])
    url = f"{cloud.stack_outputs['ApiUrl'].rstrip('/')}/v1/{usecase.name}/predict"
    say(f"  POST {url}  (x-api-key from API Gateway key {key_id})")
    time.sleep(usecase.serving.deployment_cache_seconds)
    entity = usecase.contract.entity_id
    for row in rows[:5]:
        status, body, ms = http_json(url, {"record": as_record(usecase, row)}, key)
        if status != 200:
            raise DemoError(f"predict answered {status}: {body}")
        p = body["predictions"][0]
        say(
            f"  customer {row[entity]:>5}: score {p['score']:.3f} → {p['label']:<3} (threshold {p['threshold']:.3f}, "
            f"v{p['model_version']} {p['variant']}) in {ms:.0f} ms"
        )
    batch = [as_record(usecase, row) for row in rows[:1000]]
    status, body, ms = http_json(url, {"records": batch}, key)
    say(f"  batch of {len(batch)}: HTTP {status}, {len(body.get('predictions', []))} scores in {ms:.0f} ms")
    bad = {**as_record(usecase, rows[0]), "tenure": -3, "contract": "Forever"}
    status, body, _ = http_json(url, {"record": bad}, key)
    reasons = "; ".join(f"{e['field']}: {e['reason']}" for item in body.get("errors", []) for e in item["errors"])
    say(f"  a bad record: HTTP {status} — {reasons}")


def predict_url(cloud: RunningCloud, usecase: UseCase) -> str:
    return f"{cloud.stack_outputs['ApiUrl'].rstrip('/')}/v1/{usecase.name}/predict"


def api_key(cloud: RunningCloud) -> str:
    key_id = cloud.stack_outputs["ApiKeyId"]
    return str(cloud.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])


def newest_package(cloud: RunningCloud) -> dict[str, Any]:
    sagemaker = cloud.client("sagemaker")
    summary = sagemaker.list_model_packages(
        ModelPackageGroupName=cloud.stack_outputs["ModelPackageGroupName"],
        SortBy="CreationTime",
        SortOrder="Descending",
    )["ModelPackageSummaryList"][0]
    return dict(sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"]))


def deployment_state(cloud: RunningCloud, usecase: UseCase) -> Any:
    from shared.deployment.adapters import DeploymentStore

    return DeploymentStore(cloud.client("dynamodb"), cloud.stack_outputs["DeploymentTableName"]).get(usecase.name)


def save_timeline(cloud: RunningCloud, usecase: UseCase, execution_arn: str) -> str:
    """Copy a promotion's timeline from the lake to .local/timelines/; its s3:// URI and the local path."""
    bucket = cloud.stack_outputs["LakeBucketName"]
    key = lake_keys.timeline_html_key(usecase.name, execution_arn.rsplit(":", 1)[-1])
    body = cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    path = cloud.outputs_file.parent / "timelines" / key.rsplit("/", 2)[-2] / key.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return f"s3://{bucket}/{key} (copied to {path})"


def promote_good(
    cloud: RunningCloud, usecase: UseCase, usecase_file: Path, traffic: Traffic, timeout: float
) -> dict[str, Any]:
    """Train a second model and promote it through every stage with the CLI while traffic flows."""
    train(cloud, timeout)
    version = int(newest_package(cloud)["ModelPackageVersion"])
    say("\nPromotion of a good candidate, while synthetic traffic flows over HTTP …")
    deadline = time.monotonic() + timeout
    while logged_predictions(cloud, usecase) < usecase.promotion.min_samples:  # the replay's input
        if time.monotonic() > deadline:
            raise DemoError("no served prediction reached the prediction log")
        time.sleep(1.0)
    settings = usecase.promotion
    steps = " → ".join(f"{w:.0%}" for w in settings.canary_steps)
    say(f"  shadow {settings.shadow_bake_seconds} s, canary {steps} ({settings.canary_bake_seconds} s each)")
    say(f"  $ python -m cli promote {version}")
    started = time.monotonic()
    code = follow_cli(cloud, usecase_file, "promote", str(version))
    if code != 0:
        raise DemoError(f"the promotion of v{version} did not succeed (exit {code})")
    execution = latest_execution(cloud)
    requests, failures, served = traffic.snapshot()
    say(
        f"  promoted in {time.monotonic() - started:.0f} s; traffic so far: {requests} requests, {len(failures)} failed"
    )
    say("  answers by variant: " + ", ".join(f"{v} v{n}: {c}" for (v, n), c in sorted(served.items())))
    return {
        "version": version,
        "execution_arn": execution["executionArn"],
        "transitions": state_transitions(cloud, execution["executionArn"]),
        "seconds": time.monotonic() - started,
    }


def reject_bad(
    cloud: RunningCloud, usecase: UseCase, usecase_file: Path, traffic: Traffic, timeout: float
) -> dict[str, Any]:
    """A very slow candidate, promoted after the watch window: its shadow alarm rolls it back."""
    settings = usecase.promotion
    state = deployment_state(cloud, usecase)
    if state.stage == Stage.WATCH:
        say(f"\nThe new champion's alarms stay armed for {settings.watch_window_seconds} s (the watch window) …")
        deadline = time.monotonic() + settings.watch_window_seconds + 2
        while time.monotonic() < deadline:
            time.sleep(1.0)
    champion = state.champion
    source = newest_package(cloud)
    s3 = cloud.client("s3")
    onnx = s3.get_object(
        Bucket=cloud.stack_outputs["LakeBucketName"], Key=source["CustomerMetadataProperties"]["onnx_s3_key"]
    )["Body"].read()
    bad = register_copy(
        sagemaker=cloud.client("sagemaker"),
        s3=s3,
        source_package_arn=source["ModelPackageArn"],
        onnx_model=slowed(onnx),
        run_id=f"demo-slow-{time.strftime('%Y%m%d-%H%M%S')}",
        description="the champion with a slow dense branch: same scores, ~1000 dense layers per record",
    )
    version = int(bad["ModelPackageVersion"])
    say(f"\nA deliberately bad candidate: v{version} = v{champion.version} made very slow (same scores), ")
    say("  registered through the SageMaker API; the gates cannot see it, live traffic can.")
    traffic.batch_size = 250  # product batches: where the slow model's cost shows
    since = datetime.now(UTC)
    say(f"  $ python -m cli promote {version}")
    code = follow_cli(cloud, usecase_file, "promote", str(version))
    if code == 0:
        raise DemoError(f"the bad candidate v{version} was promoted")
    deadline = time.monotonic() + timeout
    while (state := deployment_state(cloud, usecase)).challenger is not None or state.stage != Stage.IDLE:
        if time.monotonic() > deadline:
            raise DemoError("the bad candidate still serves in shadow")
        time.sleep(0.5)
    execution = latest_execution(cloud)
    breach = first_breach(cloud, usecase, telemetry.SHADOW_ERRORS, telemetry.SHADOW, since)
    delay = (state.updated_at - breach).total_seconds() if breach is not None and state.updated_at else None
    say(f"  rolled back by {state.updated_by}: v{state.champion.version} serves alone")
    if delay is not None:
        say(
            f"  rollback delay: {delay:.1f} s from the first breaching datapoint to the champion alone "
            f"(alarm period {settings.alarm_period_seconds} s)"
        )
    return {
        "version": version,
        "execution_arn": execution["executionArn"],
        "transitions": state_transitions(cloud, execution["executionArn"]),
        "delay": delay,
    }


def promotion(
    cloud: RunningCloud, usecase: UseCase, usecase_file: Path, rows: list[dict[str, str]], timeout: float
) -> dict[str, Any]:
    records = [as_record(usecase, row) for row in rows]
    with Traffic(url=predict_url(cloud, usecase), api_key=api_key(cloud), records=records, batch_size=50) as traffic:
        good = promote_good(cloud, usecase, usecase_file, traffic, timeout)
        bad = reject_bad(cloud, usecase, usecase_file, traffic, timeout)
        time.sleep(usecase.serving.deployment_cache_seconds + 1)
        requests, failures, _ = traffic.snapshot()
    say(f"\nSynthetic traffic: {requests} requests, {len(failures)} failed")
    for failure in failures[:5]:
        say(f"  ✗ {failure}")
    say("\nHistory (`python -m cli history`)")
    shown = run_cli(cloud, usecase_file, "history", "--limit", "100")
    for line in shown.stdout.splitlines():
        say(f"  {line[:200]}")
    say("\nTimelines (traffic share, key metrics, stage boundaries, the rollback point)")
    for label, outcome in ((PromotionOutcome.PROMOTED.value, good), ("rolled back", bad)):
        say(f"  v{outcome['version']} {label}: {save_timeline(cloud, usecase, outcome['execution_arn'])}")
    return {"good": good, "bad": bad, "failed_requests": len(failures)}


MONITORING_TRAFFIC = 2400
MONITORING_SEED = 20261120
QUIET_SECONDS = 8.0


def send_shifted(cloud: RunningCloud, usecase: UseCase, rows: list[dict[str, str]], timeout: float) -> datetime:
    """Score the shifted traffic, send its labels, wait for the prediction log; when the traffic began."""
    since = datetime.now(UTC)
    time.sleep(QUIET_SECONDS)  # the window starts in this quiet gap: the promotions' traffic stays out of it
    plan = plan_shift(usecase, rows)
    shifted = ", ".join(f"{name} +{plan.steps[name]:.3g}" for name in plan.features)
    say(f"\nMonitoring: production traffic in which {plan.segment} drifts ({shifted}, one standard deviation)")
    say("  and degrades (its customers' outcomes no longer follow the scores); every other customer as in training …")
    traffic = shifted_traffic(usecase, rows, plan, n=MONITORING_TRAFFIC, seed=MONITORING_SEED)
    sent = score_and_label(cloud.stack_outputs["ApiUrl"], usecase, api_key(cloud), traffic)
    if sent.failures:
        raise DemoError(f"monitoring traffic: {sent.failures[:3]}")
    say(
        f"  {sent.predictions:,} customers scored over HTTP ({sent.by_segment['shifted']:,} in {plan.segment}); "
        f"{sent.labels:,} observed outcomes sent to POST /v1/{usecase.name}/feedback"
    )
    s3, lake = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    deadline = time.monotonic() + timeout
    while served_lines(s3, lake, lake_keys.prediction_log_prefix(usecase.name), sent.request_ids) < sent.predictions:
        if time.monotonic() > deadline:
            raise DemoError("the monitoring traffic did not reach the prediction log")
        time.sleep(1.0)
    return since


def monitor_with_cli(cloud: RunningCloud, usecase: UseCase, usecase_file: Path, since: datetime) -> dict[str, Any]:
    """`python -m cli monitor --run` over the stage's own minutes; the run's ``latest.json``."""
    seconds = math.ceil((datetime.now(UTC) - since).total_seconds())
    hours = seconds / 3600  # the stage's own traffic, not the promotions' (it ends at the CLI's clock, a bit later)
    say(f"  $ python -m cli monitor --run --window {hours:.6g}   ({window_name(hours)}: this stage's traffic)")
    code = follow_cli(cloud, usecase_file, "monitor", "--run", "--window", repr(hours))
    if code != 0:
        raise DemoError(f"the monitor failed (exit {code})")
    s3, lake = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    latest: dict[str, Any] = json.loads(
        s3.get_object(Bucket=lake, Key=lake_keys.latest_report_key(usecase.name))["Body"].read()
    )
    html = cloud.outputs_file.parent / "monitoring" / latest["run_id"] / "report.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_bytes(s3.get_object(Bucket=lake, Key=latest["report_html_key"])["Body"].read())
    say(f"  report: s3://{lake}/{latest['report_json_key']}")
    say(f"  HTML:   s3://{lake}/{latest['report_html_key']} (copied to {html})")
    return latest


def retraining_run(cloud: RunningCloud, usecase: UseCase, usecase_file: Path, timeout: float) -> dict[str, Any]:
    """Wait for the training execution a monitoring alarm starts; show the alarms and the audit history."""
    say("\n  Waiting for the monitoring alarms (evaluated every minute) → EventBridge → the retrain function …")
    sfn, machine = cloud.client("stepfunctions"), cloud.stack_outputs["TrainingStateMachineArn"]
    deadline = time.monotonic() + timeout
    while True:
        runs = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if "-retrain-" in e["name"]]
        if runs:
            break
        if time.monotonic() > deadline:
            raise DemoError("no monitoring alarm started a training run")
        time.sleep(2.0)
    alarms = cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix=monitoring_alarm_prefix(usecase.name))
    for alarm in alarms["MetricAlarms"]:
        if alarm["StateValue"] == "ALARM":
            say(f"  ⚠ {alarm['AlarmName']}: ALARM — {alarm.get('AlarmDescription', '')[:110]}")
    say(f"  the alarm started training execution {runs[0]['name']}")
    shown = run_cli(cloud, usecase_file, "history", "--limit", "20")
    for line in shown.stdout.splitlines():
        if "retrain" in line:
            say(f"  │ {line[:200]}")
    return dict(runs[0])


def monitoring(
    cloud: RunningCloud, usecase: UseCase, usecase_file: Path, rows: list[dict[str, str]], timeout: float
) -> dict[str, Any]:
    """Traffic in which one segment drifts and degrades, labels sent back, the monitor started with the CLI;
    its alarm starts a training run, whose version waits for promotion like any other."""
    started = time.monotonic()
    since = send_shifted(cloud, usecase, rows, timeout)
    run_at = time.monotonic()
    latest = monitor_with_cli(cloud, usecase, usecase_file, since)
    monitored = time.monotonic() - run_at
    execution = retraining_run(cloud, usecase, usecase_file, timeout)
    alarm_delay = time.monotonic() - run_at
    finished = wait_for(cloud, execution["executionArn"], timeout)
    if finished["status"] != "SUCCEEDED":
        raise DemoError(f"the retraining run {finished['status']}: {finished.get('cause', '')}")
    package, state = newest_package(cloud), deployment_state(cloud, usecase)
    say(
        f"  retrained: v{package['ModelPackageVersion']} registered ({package['ModelApprovalStatus']}); "
        f"v{state.champion.version} still serves alone — a new version is promoted only through `cli promote`"
    )
    if state.challenger is not None or state.champion.version == int(package["ModelPackageVersion"]):
        raise DemoError("the retrained version was promoted without a promotion")
    seconds = time.monotonic() - started
    say(
        f"  monitoring stage: {seconds:.0f} s (monitor run {monitored:.1f} s, "
        f"monitor → training started {alarm_delay:.0f} s)"
    )
    return {"seconds": seconds, "alerts": latest["alerts"], "execution": execution["name"]}


def wait_for(cloud: RunningCloud, execution_arn: str, timeout: float) -> dict[str, Any]:
    sfn, deadline = cloud.client("stepfunctions"), time.monotonic() + timeout
    while (execution := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise DemoError(f"{execution_arn} still running after {timeout:.0f}s")
        time.sleep(2.0)
    return dict(execution)


def run(usecase_file: Path, timeout: float) -> int:
    started = time.monotonic()
    usecase = load_usecase(usecase_file)
    say(f"Sluice demo — use case {usecase.name!r} (contract {usecase.contract.version})")
    say("Starting the embedded cloud from the synthesized template …")
    with launch(usecase=usecase_file) as cloud:
        outputs = cloud.stack_outputs
        say(f"  endpoint {cloud.endpoint_url}; outputs in {cloud.outputs_file}")
        s3 = cloud.client("s3")
        raw = outputs["RawBucketName"]

        rows = load_sample_rows(usecase)
        damaged = damaged_csv(rows, usecase.contract)
        renamed, old, new = renamed_column_csv(rows, usecase.contract)
        uploads = {
            f"incoming/{usecase.name}.csv": to_csv(rows),
            f"incoming/{usecase.name}_damaged.csv.gz": damaged.body,
            f"incoming/{usecase.name}_renamed_column.csv": renamed,
        }
        say(f"\nUploading to s3://{raw}/ …")
        for key, body in uploads.items():
            s3.put_object(Bucket=raw, Key=key, Body=body)
            say(f"  ↑ {key} ({len(body):,} bytes)")
        say(f"  (the damaged copy breaks {damaged.bad_rows} of {damaged.rows} rows: {dict(damaged.damage)};")
        say(f"   the third renames column {old!r} to {new!r})")

        say("\nWaiting for the ingest function …")
        manifests = wait_for_manifests(cloud, usecase, list(uploads), timeout)

        duplicate_key = f"incoming/{usecase.name}.csv"
        say(f"\nUploading {duplicate_key} again (same bytes: S3 and users both deliver twice) …")
        s3.put_object(Bucket=raw, Key=duplicate_key, Body=uploads[duplicate_key])
        time.sleep(2.0)
        after = manifests_by_key(cloud, usecase)
        curated_counts = {key: count_curated_rows(cloud, m) for key, m in manifests.items()}
        print_summary(manifests, curated_counts)

        duplicates = len(after.get(duplicate_key, [])) - 1
        say(f"\n  duplicate upload → {duplicates} extra manifest(s); its curated rows: {curated_counts[duplicate_key]}")
        reasons = quarantine_reasons(cloud, manifests[f"incoming/{usecase.name}_damaged.csv.gz"])
        say("\nQuarantine reasons in the damaged copy")
        for reason, count in reasons.most_common(10):
            say(f"  {count:>5}  {reason}")

        failed = [k for k, m in manifests.items() if m["rows_in"] != curated_counts[k] + m["rows_quarantined"]]
        if duplicates or failed:
            raise DemoError(f"invariants broken: duplicates={duplicates}, not reconciled={failed}")

        train(cloud, timeout)
        serve(cloud, usecase, usecase_file, rows)
        figures = promotion(cloud, usecase, usecase_file, rows, timeout)
        figures["monitoring"] = monitoring(cloud, usecase, usecase_file, rows, timeout)
        say("\nShutting the embedded cloud down …")
    good, bad = figures["good"], figures["bad"]
    say(f"\nDone in {time.monotonic() - started:.1f}s.")
    say(f"  state transitions: {good['transitions']} for the promotion, {bad['transitions']} for the rollback")
    if bad["delay"] is not None:
        say(f"  rollback delay, breach → champion alone: {bad['delay']:.1f} s")
    say(f"  monitoring stage (drift, labels, monitor, alarm → retraining): {figures['monitoring']['seconds']:.0f} s")
    if figures["failed_requests"]:
        say(f"  {figures['failed_requests']} requests failed during the promotions")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--usecase",
        type=Path,
        default=None,
        help="use-case file (default: $SLUICE_USECASE, a file or a use-case name, else usecases/telco_churn.toml)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each stage")
    args = parser.parse_args(argv)
    try:
        return run(usecase_file(args.usecase), args.timeout)
    except DemoError as exc:
        say(f"\nDemo failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
