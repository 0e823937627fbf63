"""Batch finish handler: the job's chunk results → its manifest; fails (``JobFailedError``) past the tolerance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.batch import runtime
from shared.batch.jobs import finish

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    settings = runtime.finish_environment()
    manifest = finish(
        str(event["usecase"]),
        str(event["job_id"]),
        store=runtime.lake_store(),
        lake_bucket=settings.lake_bucket,
        now=datetime.now(UTC),
    )
    logger.info("finished", extra={"job_id": manifest.job_id, "reason": manifest.reason})
    return {
        "job_id": manifest.job_id,
        "status": manifest.status.value,
        "reason": manifest.reason,
        "rows_in": manifest.rows_in,
        "rows_scored": manifest.rows_scored,
        "rows_rejected": manifest.rows_rejected,
        "chunks_failed": manifest.chunks_failed,
    }
