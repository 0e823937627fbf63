"""What every Lambda function reads from its environment, and how: once, validated, with a clear error.

Each function declares one pydantic model of its environment, derived from :class:`FunctionEnvironment`
(or :class:`UseCaseEnvironment` when it reads the use-case file bundled with its code), and reads it
with :func:`read_environment` behind an ``lru_cache`` at its first invocation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.exceptions import SettingsError


class FunctionEnvironment(BaseModel):
    """Base of a function's environment model: immutable, variables by their names, others ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class UseCaseEnvironment(FunctionEnvironment):
    """A function that reads its use-case file: ``SLUICE_USECASE_FILE``, relative to ``LAMBDA_TASK_ROOT``."""

    usecase_file: str = Field(default="usecase.toml", alias="SLUICE_USECASE_FILE")
    task_root: str = Field(default=".", alias="LAMBDA_TASK_ROOT")

    @property
    def usecase_path(self) -> Path:
        path = Path(self.usecase_file)
        return path if path.is_absolute() else Path(self.task_root) / path


Environment = TypeVar("Environment", bound=BaseModel)


def read_environment(model: type[Environment], function: str) -> Environment:
    """``model`` read from ``os.environ``; :class:`SettingsError` naming ``function`` when it is invalid."""
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as exc:
        raise SettingsError(f"the {function} function's environment is invalid:\n{exc}") from exc
