"""The backfill function's environment: one pydantic model, validated once at the first invocation."""

from __future__ import annotations

from shared.environment import LakeEnvironment, UseCaseEnvironment, WorkdirEnvironment


class BackfillEnvironment(UseCaseEnvironment, LakeEnvironment, WorkdirEnvironment):
    """``SLUICE_USECASE_FILE`` (the use case with the new contract version), ``LAKE_BUCKET``, ``SLUICE_WORKDIR``."""
