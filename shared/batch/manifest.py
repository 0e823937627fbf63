"""The job manifest: chunk results and failures folded into one account (pure).

Rows in = scored + rejected, for the job as for each chunk; a failed chunk's rows are not counted (they were
not read to the end) but the chunk is named, with its error and reason. The job fails when the failed share of
its chunks is above the use case's ``tolerated_failure_percentage`` (a job with chunks none of which succeeded
fails whatever the tolerance, as does a job whose chunks are not all accounted for).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.batch.exceptions import BatchError
from shared.batch.types import ChunkFailure, ChunkLines, ChunkResult, JobManifest, JobPlan, JobStatus
from shared.lake import layout as lake


def chunk_failure(chunk: Any, error: BaseException | str, reason: str | None = None) -> ChunkFailure:
    """A failed chunk as the manifest names it (``error``: the exception, or its type's name from the map's
    ``Catch`` output, with ``reason`` its ``Cause``)."""
    name = error if isinstance(error, str) else type(error).__name__
    why = reason if reason is not None else str(error)
    return ChunkFailure(chunk_key=chunk.chunk_key, key=chunk.key, index=chunk.index, error=name, reason=why)


def fold_manifest(
    plan: JobPlan, results: Sequence[ChunkResult], failures: Sequence[ChunkFailure], *, now: datetime
) -> JobManifest:
    """The job's manifest from every chunk's outcome (a chunk both failed and later succeeded counts as succeeded:
    a redrive)."""
    planned = {chunk.chunk_key for chunk in plan.chunks}
    succeeded = {result.chunk_key: result for result in results if result.chunk_key in planned}
    failed = {f.chunk_key: f for f in failures if f.chunk_key in planned and f.chunk_key not in succeeded}
    unaccounted = planned - succeeded.keys() - failed.keys()
    for key in sorted(unaccounted):
        chunk = next(c for c in plan.chunks if c.chunk_key == key)
        failed[key] = chunk_failure(chunk, "Unaccounted", "the chunk has neither a result nor a failure")
    done = list(succeeded.values())
    rows_in = sum(r.rows_in for r in done)
    rows_scored = sum(r.rows_scored for r in done)
    rows_rejected = sum(r.rows_rejected for r in done)
    if rows_in != rows_scored + rows_rejected:
        raise BatchError(f"rows in {rows_in} != scored {rows_scored} + rejected {rows_rejected}")
    total = len(plan.chunks)
    percentage = 100.0 * len(failed) / total if total else 0.0
    status, reason = JobStatus.SUCCEEDED, f"{len(done)} of {total} chunks scored"
    if percentage > plan.tolerated_failure_percentage:
        status = JobStatus.FAILED
        reason = (
            f"{len(failed)} of {total} chunks failed ({percentage:.2f}%), "
            f"above the tolerated {plan.tolerated_failure_percentage:g}%"
        )
    elif failed and not done:
        status, reason = JobStatus.FAILED, f"all {total} chunks failed"
    elif failed:
        reason += f"; {len(failed)} failed, within the tolerated {plan.tolerated_failure_percentage:g}%"
    return JobManifest(
        job_id=plan.job_id,
        usecase=plan.usecase,
        model_version=plan.model.version,
        status=status,
        reason=reason,
        rows_in=rows_in,
        rows_scored=rows_scored,
        rows_rejected=rows_rejected,
        chunks_total=total,
        chunks_succeeded=len(done),
        chunks_failed=len(failed),
        failure_percentage=round(percentage, 4),
        tolerated_failure_percentage=plan.tolerated_failure_percentage,
        failed=tuple(sorted(failed.values(), key=lambda f: (f.key, f.index))),
        objects_skipped=tuple(o for o in plan.objects if o.skipped),
        output_keys=tuple(sorted(r.output_key for r in done)),
        rejected_keys=tuple(sorted(r.rejected_key for r in done if r.rejected_key)),
        chunk_lines=_chunk_lines(plan, succeeded),
        seconds=round(sum(r.seconds for r in done), 6),
        finished_at=now,
    )


def _chunk_lines(plan: JobPlan, succeeded: dict[str, ChunkResult]) -> tuple[ChunkLines, ...]:
    """Each chunk's first line in its object: the lines of the chunks before it, plus one."""
    by_object: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for chunk in plan.chunks:
        by_object[(chunk.bucket, chunk.key)].append(chunk)
    located: list[ChunkLines] = []
    for (_, key), chunks in sorted(by_object.items()):
        line: int | None = 1
        for chunk in sorted(chunks, key=lambda c: c.index):
            located.append(ChunkLines(chunk_key=chunk.chunk_key, key=key, first_line=line))
            result = succeeded.get(chunk.chunk_key)
            line = None if line is None or result is None else line + result.lines
    return tuple(located)


def write_manifest(store: Any, bucket: str, manifest: JobManifest) -> str:
    """Write the manifest at ``batch-predictions/<usecase>/<job>/manifest.json``; return its key."""
    key = lake.batch_manifest_key(manifest.usecase, manifest.job_id)
    store.put_json(bucket, key, manifest.model_dump(mode="json"))
    return key


def write_plan(store: Any, bucket: str, plan: JobPlan) -> str:
    """Write the plan at ``batch-predictions/<usecase>/<job>/plan.json`` (the map reads its items there)."""
    key = lake.batch_plan_key(plan.usecase, plan.job_id)
    store.put_json(bucket, key, plan.model_dump(mode="json"))
    return key
