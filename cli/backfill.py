"""``python -m cli backfill --contract-version X.Y.Z [--no-switch] [--no-wait]``: start the backfill state machine
(one execution name per use case and contract version, ``-r<n>`` for each later run), follow its objects with a
progress bar, print the run's summary; a run that does not reconcile exits non-zero, and the same command
resumes it (objects already backfilled are skipped)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from cli.context import CliError, StackContext
from cli.progress import FINAL_STATUSES
from shared.backfill.runs import RunRequest, execution_name
from shared.backfill.service import plan_backfill, require_version
from shared.lake import layout as lake
from shared.lake.adapters import S3ObjectStore

BAR_WIDTH = 30
RUN_LIMIT = 100
STATE_MACHINE_OUTPUT = "BackfillStateMachineArn"


def _bar(done: int, total: int) -> str:
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} objects"


def _start(ctx: StackContext, contract_version: str, *, switch: bool, requested_by: str) -> tuple[str, str, bool]:
    """Follow the run still running, else start the next run number: ``(execution arn, run name, started)``."""
    sfn, machine = ctx.client("stepfunctions"), ctx.output(STATE_MACHINE_OUTPUT)
    for number in range(1, RUN_LIMIT + 1):
        name = execution_name(ctx.usecase.name, contract_version, number)
        request = RunRequest(contract_version=contract_version, run=name, switch=switch, requested_by=requested_by)
        try:
            arn = sfn.start_execution(stateMachineArn=machine, name=name, input=request.model_dump_json())
            return arn["executionArn"], name, True
        except sfn.exceptions.ExecutionAlreadyExists:
            arn = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{name}"
            if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                return arn, name, False
    raise CliError(f"{RUN_LIMIT} backfill runs of contract {contract_version} exist; see the machine's executions")


def _items(store: S3ObjectStore, bucket: str, usecase: str, version: str, run: str) -> int | None:
    key = lake.backfill_items_key(usecase, version, run)
    return len(json.loads(store.get_bytes(bucket, key))) if store.exists(bucket, key) else None


def _done(store: S3ObjectStore, bucket: str, usecase: str, version: str, *, item_count: int, run: str) -> int:
    """Objects of the run that finished: backfilled (their versioned manifest) or recorded as failed."""
    keys = json.loads(store.get_bytes(bucket, lake.backfill_items_key(usecase, version, run)))
    written = set(store.list_keys(bucket, lake.manifest_prefix(usecase, version)))
    backfilled = sum(1 for item in keys if lake.manifest_key(usecase, item["object_id"], version) in written)
    failures = f"{lake.backfill_run_prefix(usecase, version, run)}{lake.BACKFILL_FAILURES_DIR}"
    return min(item_count, backfilled + len(store.list_keys(bucket, failures)))


def backfill(
    ctx: StackContext,
    *,
    contract_version: str,
    switch: bool,
    requested_by: str,
    wait: bool = True,
    poll_seconds: float = 1.0,
) -> bool:
    """Start (or follow) a run; True when the curated set of ``contract_version`` reconciles (and, with ``switch``,
    training reads it)."""
    require_version(ctx.usecase, contract_version)
    name, bucket = ctx.usecase.name, ctx.output("LakeBucketName")
    store = S3ObjectStore(ctx.client("s3"))
    plan = plan_backfill(usecase=name, contract_version=contract_version, store=store, lake_bucket=bucket)
    print(
        f"backfill     {name} → contract {contract_version}: {len(plan.objects)} objects, "
        f"{len(plan.to_run)} to run, {len(plan.objects) - len(plan.to_run)} done"
    )
    arn, run, started = _start(ctx, contract_version, switch=switch, requested_by=requested_by)
    print(f"run          {run}: {'started' if started else 'already running'} ({arn})")
    if not wait:
        return True
    sfn, shown = ctx.client("stepfunctions"), ""
    while True:
        execution = sfn.describe_execution(executionArn=arn)
        total = _items(store, bucket, name, contract_version, run)
        if total is not None:
            line = _bar(_done(store, bucket, name, contract_version, item_count=total, run=run), total)
            if line != shown:
                print(f"\r{line}", end="", file=sys.stdout, flush=True)
                shown = line
        if execution["status"] in FINAL_STATUSES:
            break
        time.sleep(poll_seconds)
    print()
    return _summary(execution, bucket=bucket, usecase=name, version=contract_version)


def _summary(execution: dict[str, Any], *, bucket: str, usecase: str, version: str) -> bool:
    if execution["status"] != "SUCCEEDED":
        print(f"not reconciled ({execution['status'].lower()}): {_cause(execution)}")
        print("run the same command again to resume (objects already backfilled are skipped)")
        return False
    summary = json.loads(execution.get("output") or "{}").get("summary", {})
    print(
        f"reconciled   {summary.get('objects', 0)} objects ({summary.get('reconciled', 0)} backfilled, "
        f"{summary.get('native', 0)} ingested under it): rows in {summary.get('rows_in', 0)} = "
        f"{summary.get('rows_curated', 0)} curated + {summary.get('rows_quarantined', 0)} quarantined"
    )
    if summary.get("switched"):
        print(f"switched     training reads s3://{bucket}/{lake.curated_prefix(usecase, version)}")
    else:
        print(f"not switched switch with: python -m cli backfill --contract-version {version}")
    return True


def _cause(execution: dict[str, Any]) -> str:
    cause = execution.get("cause") or execution.get("error") or "no cause given"
    try:
        payload = json.loads(cause)
    except (TypeError, json.JSONDecodeError):
        return str(cause)
    return str(payload.get("errorMessage", cause)) if isinstance(payload, dict) else str(cause)
