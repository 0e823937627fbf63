"""The CLI's commands. Each takes the stack context and prints what a person on call needs to see."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cli.context import CliError, StackContext
from cli.progress import FINAL_STATUSES, ProgressReport, state_transitions
from shared.deployment.adapters import DeploymentStore
from shared.deployment.exceptions import ConcurrentUpdateError
from shared.deployment.state import DeploymentState, ModelRef, model_ref_from_package
from shared.lake import layout as lake
from shared.lake.adapters import S3ObjectStore
from shared.promotion.adapters import PromotionStore
from shared.promotion.service import PromotionService, build_service, cli_command
from shared.promotion.transitions import Promotion, PromotionOutcome, Stage
from shared.registry.adapters import SageMakerRegistry
from shared.registry.package import metrics_uri


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def _store(ctx: StackContext) -> DeploymentStore:
    return DeploymentStore(ctx.client("dynamodb"), ctx.output("DeploymentTableName"))


def _describe(ref: ModelRef | None) -> str:
    return "—" if ref is None else f"v{ref.version} (run {ref.run_id}, threshold {ref.threshold:.3f})"


def _promotions(ctx: StackContext) -> PromotionStore:
    return PromotionStore(ctx.client("dynamodb"), ctx.output("DeploymentTableName"))


def _service(ctx: StackContext) -> PromotionService:
    """The promotion service the state machine's functions run, with the CLI's credentials."""
    return build_service(
        ctx.usecase,
        deployment_table=ctx.output("DeploymentTableName"),
        lake_bucket=ctx.output("LakeBucketName"),
        model_package_group=ctx.output("ModelPackageGroupName"),
        alarm_topic_arn=ctx.output("AlarmTopicArn"),
        clients=ctx.client,
        endpoint_name=ctx.outputs.get("EndpointName"),
        endpoint_role_arn=ctx.outputs.get("EndpointExecutionRoleArn"),
    )


def _describe_promotion(promotion: Promotion) -> list[str]:
    lines = [
        f"promotion    v{promotion.candidate.version} {promotion.outcome.value} ({promotion.execution_name}, "
        f"requested by {promotion.requested_by}, started {promotion.started_at:%Y-%m-%d %H:%M:%S})"
    ]
    if promotion.outcome is PromotionOutcome.RUNNING and promotion.extensions:
        lines.append(f"             {promotion.extensions} inconclusive bake(s) in this stage")
    if promotion.task_token:
        lines.append("             waiting for a human decision: `approve` or `abort`")
    if promotion.watch_until is not None and promotion.outcome is PromotionOutcome.RUNNING:
        lines.append(f"             watch window until {promotion.watch_until:%Y-%m-%d %H:%M:%S} (alarms armed)")
    if promotion.reason:
        lines.append(f"             {promotion.reason}")
    return lines


def status(ctx: StackContext) -> DeploymentState:
    """What serves, at what weights, in which stage (and the promotion that runs, if any)."""
    state = _store(ctx).get(ctx.usecase.name)
    print(f"use case     {ctx.usecase.name}")
    print(f"stage        {state.stage}")
    print(f"champion     {_describe(state.champion)}")
    if state.challenger is not None:
        mode = (
            Stage.SHADOW.value
            if state.shadow and state.challenger_weight == 0
            else f"{state.challenger_weight:.0%} canary"
        )
        shadow = " + shadow" if state.shadow and state.challenger_weight > 0 else ""
        print(f"challenger   {_describe(state.challenger)}: {mode}{shadow}")
    if state.previous_champion is not None:
        print(f"previous     {_describe(state.previous_champion)} (one-step rollback target)")
    if state.updated_at is not None:
        print(f"updated      {state.updated_at:%Y-%m-%d %H:%M:%S} by {state.updated_by or '?'}: {state.reason}")
    promotion = _promotions(ctx).get(ctx.usecase.name)
    if promotion is not None:
        for line in _describe_promotion(promotion):
            print(line)
    return state


def _registry(ctx: StackContext) -> SageMakerRegistry:
    return SageMakerRegistry(ctx.client("sagemaker"))


def _packages(ctx: StackContext) -> list[dict[str, Any]]:
    return _registry(ctx).packages(ctx.output("ModelPackageGroupName"))


def package_by_version(ctx: StackContext, version: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``DescribeModelPackage`` response and metrics.json of one registered version."""
    for summary in _packages(ctx):
        if int(summary.get("ModelPackageVersion", 0)) == version:
            package = _registry(ctx).describe(summary["ModelPackageArn"])
            bucket, key = lake.parse_s3_uri(metrics_uri(package))
            return package, json.loads(S3ObjectStore(ctx.client("s3")).get_bytes(bucket, key))
    raise CliError(f"no model package version {version} in {ctx.output('ModelPackageGroupName')}")


def models(ctx: StackContext) -> None:
    """The registered versions, newest first, with their gate metrics and approval status."""
    print(f"{'version':>7}  {'approval':<22} {'AUC':>6} {'ECE':>6}  created")
    for summary in _packages(ctx):
        version = int(summary.get("ModelPackageVersion", 0))
        _, metrics = package_by_version(ctx, version)
        created = summary.get("CreationTime")
        when = created.strftime("%Y-%m-%d %H:%M") if isinstance(created, datetime) else str(created)
        print(
            f"{version:>7}  {summary.get('ModelApprovalStatus', '?'):<22} "
            f"{metrics.get('auc', float('nan')):>6.3f} {metrics.get('ece', float('nan')):>6.3f}  {when}"
        )


def deploy(ctx: StackContext, version: int, *, reason: str) -> DeploymentState:
    """Make ``version`` the first champion of a use case that has none (later changes go through `promote`)."""
    store = _store(ctx)
    state = store.get(ctx.usecase.name)
    if state.champion is not None:
        raise CliError(
            f"{ctx.usecase.name} already has a champion ({_describe(state.champion)}); use `promote {version}`"
        )
    package, metrics = package_by_version(ctx, version)
    ref = model_ref_from_package(package, metrics)
    new_state = state.model_copy(update={"champion": ref, "stage": Stage.IDLE.value})
    try:
        written = store.put(new_state, expected_revision=state.revision, updated_by=actor(), reason=reason)
    except ConcurrentUpdateError as exc:
        raise CliError(f"the deployment state changed while deploying; try again ({exc})") from exc
    _registry(ctx).set_approval(
        ref.package_arn, approved=True, reason=f"deployed as the first champion by {actor()}: {reason}"
    )
    store.append_event(
        ctx.usecase.name,
        {"actor": actor(), "action": "deploy", "from_version": None, "to_version": version, "reason": reason},
    )
    print(f"v{version} is now the champion of {ctx.usecase.name} (revision {written.revision})")
    return written


def history(ctx: StackContext, *, limit: int) -> list[dict[str, Any]]:
    """The audit log of deployment events, oldest first (append-only)."""
    events = _store(ctx).latest_events(ctx.usecase.name, limit=limit)
    events.reverse()
    for event in events:
        at = datetime.fromisoformat(str(event.get("at"))).astimezone(UTC)
        versions = (event.get("from_version"), event.get("to_version"))
        # events that change no model (retraining decisions, a curated-set switch) show no version change
        change = f"v{versions[0] or '-'} → v{versions[1] or '-'}" if any(versions) else ""
        details = " ".join(f"{k}={event[k]}" for k in ("stage", "weight") if event.get(k) not in (None, ""))
        print(
            f"{at:%Y-%m-%d %H:%M:%S}  {event.get('actor', '?'):<28} {event.get('action', '?'):<12} {change:<12} "
            f"{details} {event.get('reason', '')}".rstrip()
        )
    return events


def _history_events(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def promote(
    ctx: StackContext,
    version: int,
    *,
    wait: bool,
    poll_seconds: float = 1.0,
    timeout_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Start the promotion state machine for ``version``; with ``wait``, follow it to its end.

    Returns the execution (``DescribeExecution``). Raises :class:`CliError` when the promotion fails,
    is rolled back or aborted, or is still running after ``timeout_seconds`` (it goes on regardless).
    """
    package, _ = package_by_version(ctx, version)
    sfn = ctx.client("stepfunctions")
    requested_by = actor()
    name = f"v{version}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{getpass.getuser()}"[:80]
    started = sfn.start_execution(
        stateMachineArn=ctx.output("PromotionStateMachineArn"),
        name="".join(c if c.isalnum() or c in "-_" else "-" for c in name),
        input=json.dumps({"model_package_arn": package["ModelPackageArn"], "requested_by": requested_by}),
    )
    execution_arn = started["executionArn"]
    print(f"promoting v{version} of {ctx.usecase.name} (execution {execution_arn.rsplit(':', 1)[-1]})", flush=True)
    if not wait:
        print(f"follow it with `{cli_command(ctx.usecase.name, 'status')}`")
        return dict(sfn.describe_execution(executionArn=execution_arn))
    store, promotions = _store(ctx), _promotions(ctx)
    report = ProgressReport(
        approve_hint=f"`{cli_command(ctx.usecase.name, 'approve')}` or `{cli_command(ctx.usecase.name, 'abort')}`"
    )
    began = clock()
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        events = _history_events(sfn, execution_arn)
        promotion = promotions.get(ctx.usecase.name)
        ours = promotion if promotion is not None and promotion.execution_arn == execution_arn else None
        for line in report.update(store.get(ctx.usecase.name), ours, events):
            print(line, flush=True)
        if execution["status"] in FINAL_STATUSES:
            break
        if timeout_seconds is not None and clock() - began > timeout_seconds:
            raise CliError(f"the promotion still runs after {timeout_seconds:.0f} s (it goes on; see `status`)")
        sleep(poll_seconds)
    transitions = state_transitions(events)
    if execution["status"] != "SUCCEEDED":
        why = f"{execution.get('error', '')}: {execution.get('cause', '')}".strip(": ")
        raise CliError(
            f"the promotion of v{version} {execution['status'].lower()} after {transitions} state transitions"
            f"{': ' + why if why else ''}"
        )
    watch = ctx.usecase.promotion.watch_window_seconds
    print(f"v{version} promoted after {transitions} state transitions; its alarms stay armed for {watch} s")
    return dict(execution)


def rollback(ctx: StackContext, *, reason: str) -> DeploymentState:
    """Roll the running promotion back now (to the champion), or, in the watch window, to the previous champion."""
    result = _service(ctx).rollback_by_hand(actor=actor(), reason=reason)
    if result.extra.get("already"):
        raise CliError(f"nothing to roll back: {result.reason}")
    state = _store(ctx).get(ctx.usecase.name)
    serving_now = f"v{state.champion.version}" if state.champion else "no model"
    print(f"rolled back: {serving_now} serves {ctx.usecase.name} alone ({reason})")
    return state


def decide(ctx: StackContext, *, approve: bool, reason: str) -> None:
    """Answer a promotion that waits for a human: approve (go on) or abort (roll back)."""
    result = _service(ctx).decide(approve=approve, actor=actor(), reason=reason)
    print(f"{'approved' if approve else 'aborted'}: {result.reason}")


def monitor(ctx: StackContext, *, window: float | None, run: bool) -> int:
    """Print the latest monitoring report (``run``: start the monitor function first); the violations' count."""
    from shared.monitoring.service import read_latest, read_report
    from shared.monitoring.types import window_name

    bucket = ctx.output("LakeBucketName")
    if run:
        function = ctx.output("MonitorFunctionName")
        payload: dict[str, Any] = {"now": datetime.now(UTC).isoformat()}
        if window is not None:
            payload["window_hours"] = [window]
        response = ctx.client("lambda").invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
        )
        answer = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise CliError(f"the monitor function failed: {answer.get('errorMessage', answer)}")
    store = S3ObjectStore(ctx.client("s3"))
    latest = read_latest(store, bucket, ctx.usecase.name)
    if latest is None:
        raise CliError("no monitoring report yet: run `python -m cli monitor --run`")
    report = read_report(store, bucket, latest.report_json_key)
    wanted = window_name(window) if window is not None else None
    cells = [c for c in report.cells if wanted is None or c.window == wanted]
    alerts = [c for c in cells if c.verdict == "alert"]
    print(f"monitoring   {report.usecase}, run {latest.run_id} ({report.generated_at}), FDR {report.fdr:g}")
    for model in report.models:
        print(f"model        v{model.model_version} ({model.variant}){'' if model.has_baseline else ': ' + model.note}")
    print(f"alerts       {len(alerts)}")
    for cell in alerts:
        print(f"  [{cell.check_type}] {cell.description}")
    insufficient = [c for c in cells if c.verdict == "insufficient evidence"]
    print(f"insufficient {len(insufficient)}")
    for cell in insufficient[:20]:
        print(f"  {cell.description}")
    estimates = [e for e in report.estimates if wanted is None or e.window == wanted]
    if estimates:
        print("estimate vs realized (AUC)")
    for e in estimates:
        realized = "—" if e.realized_auc is None else f"{e.realized_auc:.3f} (n={e.labeled_n:,})"
        expected = "—" if e.expected_auc is None else f"{e.expected_auc:.3f}"
        print(f"  v{e.model_version} {e.window} {e.segment}: expected {expected} (n={e.n:,}), realized {realized}")
    for note in report.notes:
        print(f"note         {note}")
    print(f"report       s3://{bucket}/{latest.report_html_key}")
    return len(alerts)
