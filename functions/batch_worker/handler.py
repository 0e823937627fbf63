"""Batch worker handler: one map item (a chunk and its job's context) → its scores and stored result."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.batch import runtime
from shared.batch.jobs import run_chunk
from shared.batch.types import Chunk, JobContext

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    settings = runtime.worker_environment()
    result = run_chunk(
        Chunk.model_validate(event["chunk"]),
        JobContext.model_validate(event["context"]),
        usecase=runtime.usecase_at(str(settings.usecase_path)),
        store=runtime.lake_store(),
        lake_bucket=settings.lake_bucket,
        models=runtime.worker_models(),
        workdir=settings.workdir,
    )
    return {"chunk_key": result.chunk_key, "rows_in": result.rows_in}
