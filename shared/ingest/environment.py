"""The ingest function's environment: one pydantic model, validated once at the first invocation."""

from __future__ import annotations

from pydantic import Field

from shared.environment import IDEMPOTENCY_TABLE_VARIABLE, LakeEnvironment, UseCaseEnvironment, WorkdirEnvironment


class IngestEnvironment(UseCaseEnvironment, LakeEnvironment, WorkdirEnvironment):
    """``SLUICE_USECASE_FILE``, ``LAKE_BUCKET``, ``IDEMPOTENCY_TABLE``, ``SLUICE_WORKDIR`` (default ``/tmp``)."""

    idempotency_table: str = Field(min_length=3, alias=IDEMPOTENCY_TABLE_VARIABLE)
