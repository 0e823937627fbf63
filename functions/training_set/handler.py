"""Training-set handler (first state of the training pipeline): the lake's curated data → one training set.

Input: ``{"run_id": str, "started_at": ISO datetime, "request": {"cutoff"?: ISO datetime, ...}}``
(the state machine passes its execution name, start time and input). The cutoff defaults to the
execution's start time, so a retried task builds the same set. Output: the report of
:func:`shared.training.training_set.build_training_set` and ``s3_uri``, the training set's prefix.

Environment: ``SLUICE_USECASE_FILE`` (default ``usecase.toml``, relative to ``LAMBDA_TASK_ROOT``),
``LAKE_BUCKET``, plus powertools' own.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.environment import read_environment
from shared.lake import layout as lake
from shared.lake.adapters import S3ObjectStore
from shared.training.environment import TrainingSetEnvironment
from shared.usecase.settings import UseCase, load_usecase

logger = Logger()
tracer = Tracer()


class RunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    cutoff: AwareDatetime | None = None


class TrainingSetEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    started_at: AwareDatetime
    request: RunRequest = Field(default_factory=RunRequest)

    @property
    def cutoff(self) -> datetime:
        return self.request.cutoff or self.started_at


@lru_cache(maxsize=1)
def settings() -> TrainingSetEnvironment:
    return read_environment(TrainingSetEnvironment, "training-set")


@lru_cache(maxsize=1)
def usecase() -> UseCase:
    return load_usecase(settings().usecase_path)


@lru_cache(maxsize=1)
def object_store() -> S3ObjectStore:
    import boto3

    return S3ObjectStore(boto3.client("s3"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    from shared.training.training_set import build_training_set

    request = TrainingSetEvent.model_validate(event)
    current, name = settings(), usecase().name
    report = build_training_set(
        usecase=usecase(),
        store=object_store(),
        lake_bucket=current.lake_bucket,
        cutoff=request.cutoff,
        run_id=request.run_id,
    )
    s3_uri = f"s3://{current.lake_bucket}/{lake.training_set_prefix(name, request.run_id)}"
    logger.info("training set built", extra={"s3_uri": s3_uri, "cutoff": request.cutoff.isoformat()})
    return {
        "report": report.model_dump(mode="json"),
        "s3_uri": s3_uri,
        "cutoff": request.cutoff.isoformat(),
        "run_id": request.run_id,
    }
