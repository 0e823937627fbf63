"""``python -m cli batch <s3 uri> [--version N] [--no-wait]``: start a batch job (named after its job id), follow
its chunks with a progress bar, print the manifest's summary; a job that fails exits non-zero."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from cli.context import CliError, StackContext
from cli.progress import FINAL_STATUSES
from shared.batch.adapters import BatchStore
from shared.batch.jobs import job_execution_name
from shared.batch.types import JobRequest
from shared.deployment.adapters import DeploymentStore
from shared.lake import layout as lake
from shared.lake.adapters import S3ObjectStore

BAR_WIDTH = 30
RERUN_LIMIT = 20


def _bar(done: int, total: int) -> str:
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} chunks"


def _start(ctx: StackContext, request: JobRequest, name: str) -> tuple[str, bool]:
    """Start ``name`` (the job id); an existing execution that is running or succeeded is reported instead,
    one that failed is re-run as ``<job id>-r<n>`` (same job id: chunks already scored are not scored again)."""
    sfn, machine = ctx.client("stepfunctions"), ctx.output("BatchStateMachineArn")
    document = json.dumps(request.model_dump(mode="json", exclude_none=True))
    for attempt in range(1, RERUN_LIMIT + 1):
        execution_name = name if attempt == 1 else f"{name}-r{attempt}"[:80]
        try:
            return sfn.start_execution(stateMachineArn=machine, name=execution_name, input=document)[
                "executionArn"
            ], True
        except sfn.exceptions.ExecutionAlreadyExists:
            arn = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{execution_name}"
            if sfn.describe_execution(executionArn=arn)["status"] in ("RUNNING", "SUCCEEDED"):
                return arn, False
    raise CliError(f"job {name} failed {RERUN_LIMIT} times; see its executions")


def _chunks_done(store: BatchStore, bucket: str, usecase: str, job_id: str) -> int:
    prefix = lake.batch_prefix(usecase, job_id)
    return len(store.list_keys(bucket, f"{prefix}{lake.BATCH_RESULTS_DIR}")) + len(
        store.list_keys(bucket, f"{prefix}{lake.BATCH_FAILURES_DIR}")
    )


def _total(store: S3ObjectStore, bucket: str, usecase: str, job_id: str) -> int | None:
    key = lake.batch_chunks_key(usecase, job_id)
    return len(json.loads(store.get_bytes(bucket, key))) if store.exists(bucket, key) else None


def batch(ctx: StackContext, uri: str, *, version: int | None, wait: bool, poll_seconds: float = 1.0) -> dict[str, Any]:
    """Start (or find) the job of ``uri``; follow it unless ``wait`` is false; return its manifest."""
    usecase, lake_bucket = ctx.usecase.name, ctx.output("LakeBucketName")
    store = S3ObjectStore(ctx.client("s3"))
    from cli.commands import package_by_version
    from shared.deployment.state import model_ref_from_package

    request = JobRequest(usecase=usecase, source_uri=uri, model_version=version)
    name = job_execution_name(
        request,
        store=store,
        state_of=DeploymentStore(ctx.client("dynamodb"), ctx.output("DeploymentTableName")).get,
        versions=lambda v: model_ref_from_package(*package_by_version(ctx, v)),
    )
    request = request.model_copy(update={"job_id": name})
    arn, started = _start(ctx, request, name)
    print(f"job {name}: {'started' if started else 'already started'} ({arn})")
    if not wait:
        return {}
    sfn, shown = ctx.client("stepfunctions"), ""
    while True:
        status = sfn.describe_execution(executionArn=arn)["status"]
        total = _total(store, lake_bucket, usecase, name)
        if total is not None:
            line = _bar(min(_chunks_done(store, lake_bucket, usecase, name), total), total)
            if line != shown:
                print(f"\r{line}", end="", file=sys.stdout, flush=True)
                shown = line
        if status in FINAL_STATUSES:
            break
        time.sleep(poll_seconds)
    print()
    return _summary(ctx, store, lake_bucket, name, status=status, arn=arn)


def _summary(
    ctx: StackContext, store: S3ObjectStore, bucket: str, job_id: str, *, status: str, arn: str
) -> dict[str, Any]:
    key = lake.batch_manifest_key(ctx.usecase.name, job_id)
    if not store.exists(bucket, key):
        cause = ctx.client("stepfunctions").describe_execution(executionArn=arn).get("cause", "")
        raise CliError(f"job {job_id} {status.lower()} without a manifest: {cause}")
    manifest: dict[str, Any] = json.loads(store.get_bytes(bucket, key))
    print(
        f"rows in {manifest['rows_in']} = scored {manifest['rows_scored']} + rejected {manifest['rows_rejected']}; "
        f"chunks {manifest['chunks_succeeded']}/{manifest['chunks_total']} ({manifest['reason']})"
    )
    for failed in manifest["failed"]:
        print(f"  failed chunk {failed['key']}#{failed['index']}: {failed['error']}: {failed['reason']}")
    print(f"outputs s3://{bucket}/{lake.batch_prefix(ctx.usecase.name, job_id)}")
    if status != "SUCCEEDED":
        raise CliError(f"job {job_id} {status.lower()}: {manifest['reason']}")
    return manifest
