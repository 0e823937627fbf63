"""Planning a batch job: the request and its objects → the model pinned and the chunks (pure).

Job id: the caller's, or ``v{model version}-{sha256 of use case, model sha256 and every object's bucket, key
and ETag}`` — the same request over the same content and model is the same job (its outputs overwrite); new
content or a new champion is a new job, so old and new outputs never mix under one job.

Chunk key: ``sha256(job id | bucket/key | ETag | kind | start | end)`` — the same chunk of the same job
always writes the same keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from shared.batch.exceptions import ChunkFailedError, UnknownModelVersionError
from shared.batch.types import Chunk, ChunkKind, JobPlan, JobRequest, ListedObject, PlannedObject
from shared.deployment.state import DeploymentState, ModelRef
from shared.ingest.exceptions import UnsupportedFormatError
from shared.ingest.formats import Compression, DataFormat, detect_format
from shared.scoring.telemetry import CHAMPION
from shared.usecase.settings import BatchSettings

JOB_HASH_LENGTH = 20
CHUNK_KEY_LENGTH = 32
NAMED_VERSION_VARIANT = "batch"
"""The prediction log's variant of a batch scored by a version that is not the champion."""

RowGroupsOf = Callable[[ListedObject], Sequence[int]]
"""The rows of each row group of a Parquet object (read from its footer); raises :class:`ChunkFailedError`."""
ModelLookup = Callable[[int], ModelRef]
"""A registered version's :class:`ModelRef`; raises :class:`UnknownModelVersionError` when there is none."""


def resolve_model(request: JobRequest, *, state: DeploymentState, versions: ModelLookup) -> tuple[ModelRef, str]:
    """The model a job scores with, and its prediction-log variant: the named version, or the champion."""
    champion = state.champion
    if request.model_version is None:
        if champion is None:
            raise UnknownModelVersionError(f"{request.usecase} has no champion; name a version to score with")
        return champion, CHAMPION
    if champion is not None and champion.version == request.model_version:
        return champion, CHAMPION
    return versions(request.model_version), NAMED_VERSION_VARIANT


def derive_job_id(request: JobRequest, model: ModelRef, objects: Iterable[ListedObject]) -> str:
    """The job id: the caller's, else a hash of the use case, the model file and the objects' content."""
    if request.job_id is not None:
        return request.job_id
    digest = hashlib.sha256(f"{request.usecase}|{model.version}|{model.onnx_sha256}".encode())
    for item in sorted(objects, key=lambda o: (o.bucket, o.key)):
        digest.update(f"\n{item.bucket}/{item.key}|{item.etag}".encode())
    return f"v{model.version}-{digest.hexdigest()[:JOB_HASH_LENGTH]}"


def chunk_key(job_id: str, item: ListedObject, kind: ChunkKind, start: int, end: int) -> str:
    text = f"{job_id}|{item.bucket}/{item.key}|{item.etag}|{kind.value}|{start}|{end}"
    return hashlib.sha256(text.encode()).hexdigest()[:CHUNK_KEY_LENGTH]


def byte_ranges(size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of at most ``chunk_bytes`` covering ``size`` bytes (none for an empty object)."""
    return [(start, min(start + chunk_bytes, size)) for start in range(0, size, chunk_bytes)]


def row_group_ranges(rows: Sequence[int], max_rows: int) -> list[tuple[int, int, int]]:
    """Consecutive row groups ``[start, end)`` holding at most ``max_rows`` rows (at least one group each),
    with the 1-based row number of each range's first row."""
    ranges: list[tuple[int, int, int]] = []
    start, held, first_row = 0, 0, 1
    for index, count in enumerate(rows):
        if index > start and held + count > max_rows:
            ranges.append((start, index, first_row))
            first_row += held
            start, held = index, 0
        held += count
    if start < len(rows):
        ranges.append((start, len(rows), first_row))
    return ranges


def plan_job(
    request: JobRequest,
    objects: Sequence[ListedObject],
    *,
    model: ModelRef,
    variant: str,
    settings: BatchSettings,
    row_groups_of: RowGroupsOf,
    now: datetime,
) -> JobPlan:
    """Cut each object into chunks. An empty object or one of an unsupported format gets no chunk and says why;
    a Parquet object whose footer cannot be read gets one whole-object chunk, which fails with the reason."""
    job_id = derive_job_id(request, model, objects)
    chunks: list[Chunk] = []
    planned: list[PlannedObject] = []
    for item in sorted(objects, key=lambda o: (o.bucket, o.key)):
        try:
            found = detect_format(item.key)
        except UnsupportedFormatError as exc:
            planned.append(_planned(item, 0, exc.reason))
            continue
        if item.size == 0:
            planned.append(_planned(item, 0, "the object is empty (0 bytes): no rows"))
            continue
        ranges: list[tuple[ChunkKind, int, int, int]]
        if found.compression is Compression.GZIP:
            ranges = [(ChunkKind.WHOLE, 0, item.size, 1)]
        elif found.data_format is DataFormat.PARQUET:
            try:
                groups = row_groups_of(item)
            except ChunkFailedError:
                ranges = [(ChunkKind.WHOLE, 0, item.size, 1)]
            else:
                ranges = [
                    (ChunkKind.ROW_GROUPS, start, end, first)
                    for start, end, first in row_group_ranges(groups, settings.max_rows_per_chunk)
                ]
        else:
            ranges = [(ChunkKind.BYTES, start, end, 1) for start, end in byte_ranges(item.size, settings.chunk_bytes)]
        for index, (kind, start, end, first_row) in enumerate(ranges):
            chunks.append(
                Chunk(
                    chunk_key=chunk_key(job_id, item, kind, start, end),
                    job_id=job_id,
                    usecase=request.usecase,
                    bucket=item.bucket,
                    key=item.key,
                    etag=item.etag,
                    size=item.size,
                    data_format=found.data_format.value,
                    compression=found.compression.value,
                    kind=kind,
                    start=start,
                    end=end,
                    index=index,
                    first_row=first_row,
                )
            )
        planned.append(_planned(item, len(ranges), None if ranges else "no row groups: no rows"))
    return JobPlan(
        job_id=job_id,
        usecase=request.usecase,
        model=model,
        variant=variant,
        created_at=now,
        chunks=tuple(chunks),
        objects=tuple(planned),
        max_concurrency=settings.max_concurrency,
        tolerated_failure_percentage=settings.tolerated_failure_percentage,
        retry_attempts=settings.retry_attempts,
    )


def _planned(item: ListedObject, chunks: int, skipped: str | None) -> PlannedObject:
    return PlannedObject(
        bucket=item.bucket, key=item.key, size=item.size, etag=item.etag, chunks=chunks, skipped=skipped
    )
