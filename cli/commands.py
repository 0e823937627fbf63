"""The CLI's commands. Each takes the stack context and prints what a person on call needs to see."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Any

from cli.context import CliError, StackContext
from shared.deployment import DeploymentState, DeploymentStore, ModelRef, model_ref_from_package
from shared.exceptions import ConcurrentUpdateError


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def _store(ctx: StackContext) -> DeploymentStore:
    return DeploymentStore(ctx.client("dynamodb"), ctx.output("DeploymentTableName"))


def _describe(ref: ModelRef | None) -> str:
    return "—" if ref is None else f"v{ref.version} (run {ref.run_id}, threshold {ref.threshold:.3f})"


def status(ctx: StackContext) -> DeploymentState:
    """What serves, at what weights, in which stage."""
    state = _store(ctx).get(ctx.usecase.name)
    print(f"use case     {ctx.usecase.name}")
    print(f"stage        {state.stage}")
    print(f"champion     {_describe(state.champion)}")
    if state.challenger is not None:
        mode = "shadow" if state.shadow and state.challenger_weight == 0 else f"{state.challenger_weight:.0%} canary"
        shadow = " + shadow" if state.shadow and state.challenger_weight > 0 else ""
        print(f"challenger   {_describe(state.challenger)}: {mode}{shadow}")
    if state.previous_champion is not None:
        print(f"previous     {_describe(state.previous_champion)} (one-step rollback target)")
    if state.updated_at is not None:
        print(f"updated      {state.updated_at:%Y-%m-%d %H:%M:%S} by {state.updated_by or '?'}: {state.reason}")
    return state


def _packages(ctx: StackContext) -> list[dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    summaries: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sagemaker.list_model_packages(
            ModelPackageGroupName=ctx.output("ModelPackageGroupName"),
            SortBy="CreationTime",
            SortOrder="Descending",
            **({"NextToken": token} if token else {}),
        )
        summaries += page["ModelPackageSummaryList"]
        token = page.get("NextToken")
        if not token:
            return summaries


def _read_s3_uri(ctx: StackContext, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def package_by_version(ctx: StackContext, version: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``DescribeModelPackage`` response and metrics.json of one registered version."""
    for summary in _packages(ctx):
        if int(summary.get("ModelPackageVersion", 0)) == version:
            package = ctx.client("sagemaker").describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            metrics_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
            return package, json.loads(_read_s3_uri(ctx, metrics_uri))
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
    new_state = state.model_copy(update={"champion": ref, "stage": "idle"})
    try:
        written = store.put(new_state, expected_revision=state.revision, updated_by=actor(), reason=reason)
    except ConcurrentUpdateError as exc:
        raise CliError(f"the deployment state changed while deploying; try again ({exc})") from exc
    ctx.client("sagemaker").update_model_package(
        ModelPackageArn=ref.package_arn,
        ModelApprovalStatus="Approved",
        ApprovalDescription=f"deployed as the first champion by {actor()}: {reason}",
    )
    store.append_event(
        ctx.usecase.name,
        {"actor": actor(), "action": "deploy", "from_version": None, "to_version": version, "reason": reason},
    )
    print(f"v{version} is now the champion of {ctx.usecase.name} (revision {written.revision})")
    return written


def history(ctx: StackContext, *, limit: int) -> list[dict[str, Any]]:
    """The audit log of deployment events, oldest first (append-only)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    response = ctx.client("dynamodb").query(
        TableName=ctx.output("DeploymentTableName"),
        KeyConditionExpression="usecase = :u AND begins_with(sk, :p)",
        ExpressionAttributeValues={":u": {"S": ctx.usecase.name}, ":p": {"S": "event#"}},
        ScanIndexForward=False,
        Limit=limit,
    )
    events = [{k: deserializer.deserialize(v) for k, v in item.items()} for item in response.get("Items", [])]
    events.reverse()
    for event in events:
        at = datetime.fromisoformat(str(event.get("at"))).astimezone(UTC)
        change = f"v{event.get('from_version') or '-'} → v{event.get('to_version') or '-'}"
        details = " ".join(f"{k}={event[k]}" for k in ("stage", "weight") if event.get(k) not in (None, ""))
        print(
            f"{at:%Y-%m-%d %H:%M:%S}  {event.get('actor', '?'):<28} {event.get('action', '?'):<12} {change:<12} "
            f"{details} {event.get('reason', '')}".rstrip()
        )
    return events
