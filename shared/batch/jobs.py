"""The steps of a batch job as the state machine runs them, each over the store (S3) and the deployment state.

1. :func:`plan_and_write` (``batch_plan``): list the objects, pin the model, plan the chunks (a re-run of the
   same job id reuses its stored plan), write ``plan.json`` and ``chunks.json`` — the JSON array the
   Distributed Map's ``ItemReader`` (``s3:getObject``) reads its items from.
2. :func:`run_chunk` (``batch_worker``, one map item): score one chunk and write its :class:`ChunkResult` at
   ``results/<chunk key>.json``; a chunk whose result is already stored is not scored again (a re-run or a
   redrive resumes). A failed chunk's error and cause are written at ``failures/<chunk key>.json`` by the
   map's ``Catch`` (an ``s3:putObject`` task), after its retries.
3. :func:`finish` (``batch_finish``): fold every stored result and failure into the manifest, write it, and
   raise :class:`JobFailedError` (the execution fails with the manifest's reason) when the tolerance is
   exceeded — Step Functions' own ``ToleratedFailurePercentage`` never trips, as every item catches its error.

Start (:func:`job_execution_name`, :func:`request_from_upload`): the execution is named after the job id, so a
job started twice finds its execution (``ExecutionAlreadyExists``) instead of running twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.batch.adapters import BatchStore, list_job_objects, row_groups_reader
from shared.batch.exceptions import JobFailedError, JobRequestError
from shared.batch.manifest import chunk_failure, fold_manifest, write_manifest, write_plan
from shared.batch.planning import ModelLookup, derive_job_id, plan_job, resolve_model
from shared.batch.types import (
    Chunk,
    ChunkFailure,
    ChunkResult,
    JobContext,
    JobManifest,
    JobPlan,
    JobRequest,
    JobStatus,
    ObjectEntry,
)
from shared.batch.worker import BatchModels, score_chunk
from shared.deployment.state import DeploymentState
from shared.lake import layout as lake
from shared.usecase.settings import UseCase

StateOf = Callable[[str], DeploymentState]
"""The deployment state of a use case (the champion a job scores with by default)."""
MANIFEST_SUFFIX = ".manifest.json"
"""An upload under ``batch/`` ending so is a manifest (a :class:`JobRequest` document); any other is data."""
EXECUTION_NAME_LIMIT = 80


class PlannedJob(BaseModel):
    """What the plan step hands the map: where its items are, and what every item shares."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    usecase: str
    lake_bucket: str
    chunks_key: str
    chunks: int
    model_version: int
    context: JobContext


def plan_and_write(
    request: JobRequest,
    *,
    usecase: UseCase,
    store: BatchStore,
    lake_bucket: str,
    state_of: StateOf,
    versions: ModelLookup,
    now: datetime,
) -> PlannedJob:
    """Plan the job (or reuse its stored plan) and write its plan and its chunk list."""
    if request.usecase != usecase.name:
        raise JobRequestError(f"this deployment scores {usecase.name!r}, not {request.usecase!r}")
    objects = list_job_objects(store, request)
    model, variant = resolve_model(request, state=state_of(request.usecase), versions=versions)
    job_id = derive_job_id(request, model, objects)
    plan = _stored_plan(store, lake_bucket, usecase.name, job_id)
    if plan is None:
        plan = plan_job(
            request.model_copy(update={"job_id": job_id}),
            objects,
            model=model,
            variant=variant,
            settings=usecase.batch,
            row_groups_of=row_groups_reader(store),
            now=now,
        )
        write_plan(store, lake_bucket, plan)
    chunks_key = lake.batch_chunks_key(plan.usecase, plan.job_id)
    items = json.dumps([chunk.model_dump(mode="json") for chunk in plan.chunks]).encode()
    store.put_bytes(lake_bucket, chunks_key, items, content_type="application/json")
    return PlannedJob(
        job_id=plan.job_id,
        usecase=plan.usecase,
        lake_bucket=lake_bucket,
        chunks_key=chunks_key,
        chunks=len(plan.chunks),
        model_version=plan.model.version,
        context=plan.context,
    )


def _stored_plan(store: BatchStore, bucket: str, usecase: str, job_id: str) -> JobPlan | None:
    key = lake.batch_plan_key(usecase, job_id)
    if not store.exists(bucket, key):
        return None
    return JobPlan.model_validate_json(store.get_bytes(bucket, key))


def run_chunk(
    chunk: Chunk,
    context: JobContext,
    *,
    usecase: UseCase,
    store: BatchStore,
    lake_bucket: str,
    models: BatchModels,
    workdir: Path,
) -> ChunkResult:
    """Score one chunk and store its result; a chunk already scored (its result stored) is returned as stored."""
    key = lake.batch_result_key(context.usecase, context.job_id, chunk.chunk_key)
    if store.exists(lake_bucket, key):
        return ChunkResult.model_validate_json(store.get_bytes(lake_bucket, key))
    result = score_chunk(
        chunk, context, usecase=usecase, store=store, lake_bucket=lake_bucket, models=models, workdir=workdir
    )
    store.put_json(lake_bucket, key, result.model_dump(mode="json"))
    return result


def failure_reason(cause: str | None) -> str:
    """The reason in a ``Catch``'s ``Cause``: Lambda's ``errorMessage`` when the cause is its error document."""
    if not cause:
        return "no cause given"
    try:
        document = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    if isinstance(document, dict) and "errorMessage" in document:
        return str(document["errorMessage"])
    return cause


def finish(usecase: str, job_id: str, *, store: BatchStore, lake_bucket: str, now: datetime) -> JobManifest:
    """Fold the stored results and failures into the manifest and write it; :class:`JobFailedError` (after
    writing it) when the job failed."""
    plan = _stored_plan(store, lake_bucket, usecase, job_id)
    if plan is None:
        raise JobRequestError(f"job {job_id!r} of {usecase!r} has no plan")
    prefix = lake.batch_prefix(usecase, job_id)
    results = [
        ChunkResult.model_validate_json(store.get_bytes(lake_bucket, key))
        for key in store.list_keys(lake_bucket, f"{prefix}{lake.BATCH_RESULTS_DIR}")
    ]
    failures: list[ChunkFailure] = []
    for key in store.list_keys(lake_bucket, f"{prefix}{lake.BATCH_FAILURES_DIR}"):
        document = json.loads(store.get_bytes(lake_bucket, key))
        chunk = Chunk.model_validate(document["chunk"])
        failures.append(
            chunk_failure(chunk, str(document.get("error") or "Unknown"), failure_reason(document.get("cause")))
        )
    manifest = fold_manifest(plan, results, failures, now=now)
    write_manifest(store, lake_bucket, manifest)
    if manifest.status is JobStatus.FAILED:
        raise JobFailedError(manifest.reason)
    return manifest


def job_execution_name(request: JobRequest, *, store: BatchStore, state_of: StateOf, versions: ModelLookup) -> str:
    """The job id the plan step will derive (same objects, same model), as an execution name."""
    model, _ = resolve_model(request, state=state_of(request.usecase), versions=versions)
    job_id = derive_job_id(request, model, list_job_objects(store, request))
    return re.sub(r"[^A-Za-z0-9_-]", "-", job_id)[:EXECUTION_NAME_LIMIT]


def request_from_upload(usecase: str, bucket: str, key: str, *, read: Callable[[str, str], bytes]) -> JobRequest:
    """The job an upload under ``batch/`` starts: a ``*.manifest.json`` is a job request document (its use case
    forced to this deployment's); any other object is a job of that one object."""
    if not key.endswith(MANIFEST_SUFFIX):
        return JobRequest(usecase=usecase, objects=(ObjectEntry(bucket=bucket, key=key),))
    try:
        document: Any = json.loads(read(bucket, key))
        return JobRequest.model_validate({**document, "usecase": usecase})
    except (json.JSONDecodeError, TypeError, ValidationError) as exc:
        raise JobRequestError(f"s3://{bucket}/{key} is not a batch job manifest: {exc}") from exc
