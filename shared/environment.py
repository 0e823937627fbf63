"""What every Lambda function reads from its environment, and how: once, validated, with a clear error.

Each function declares one pydantic model of its environment in its capability's package (for example
:class:`shared.ingest.environment.IngestEnvironment`), derived from :class:`FunctionEnvironment` (or
:class:`UseCaseEnvironment` when it reads the use-case file bundled with its code), and reads it with
:func:`read_environment` behind an ``lru_cache`` at its first invocation. Each variable's name is spelled
once, in its field's alias (a variable several functions read is one field of a mixin below); the stack
builds each function's ``environment`` from the same model with :meth:`FunctionEnvironment.lambda_environment`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.exceptions import SettingsError

USECASE_VARIABLE = "SLUICE_USECASE"
"""The use case by name (the training trigger), or a name or path the CDK app, CLI and demo resolve."""
USECASE_FILE_VARIABLE = "SLUICE_USECASE_FILE"
"""The use-case TOML a function (or the inference container) reads, relative to ``LAMBDA_TASK_ROOT``."""
TASK_ROOT_VARIABLE = "LAMBDA_TASK_ROOT"
"""Where Lambda unpacks a function's code (set by Lambda, and by the embedded cloud)."""
IDEMPOTENCY_TABLE_VARIABLE = "IDEMPOTENCY_TABLE"
"""The powertools idempotency table (required by ingest, optional for the score function)."""
ENDPOINT_NAME_VARIABLE = "SAGEMAKER_ENDPOINT_NAME"
"""A heavy use case's SageMaker endpoint (unset: the model runs in the function)."""


class FunctionEnvironment(BaseModel):
    """Base of a function's environment model: immutable, variables by their names, others ignored.

    The three powertools variables the stack sets on every function are declared here once; nothing in
    Sluice reads them (powertools does)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    service_name: str | None = Field(default=None, alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str | None = Field(default=None, alias="POWERTOOLS_METRICS_NAMESPACE")
    log_level: str | None = Field(default=None, alias="LOG_LEVEL")

    @classmethod
    def lambda_environment(cls, **values: str | None) -> dict[str, str]:
        """The Lambda function's ``environment``: each value (by field name) under its variable's name, in
        the order given; a ``None`` value is left out. Values are not validated (they are often CDK tokens);
        an unknown field name is refused with :class:`SettingsError`."""
        fields = cls.model_fields
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise SettingsError(f"{cls.__name__} has no field {', '.join(unknown)}")
        return {str(fields[name].alias or name): value for name, value in values.items() if value is not None}

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable name of ``field``."""
        try:
            return str(cls.model_fields[field].alias or field)
        except KeyError as exc:
            raise SettingsError(f"{cls.__name__} has no field {field}") from exc


class UseCaseEnvironment(FunctionEnvironment):
    """A function that reads its use-case file: ``SLUICE_USECASE_FILE``, relative to ``LAMBDA_TASK_ROOT``."""

    usecase_file: str = Field(default="usecase.toml", alias=USECASE_FILE_VARIABLE)
    task_root: str = Field(default=".", alias=TASK_ROOT_VARIABLE)

    @property
    def usecase_path(self) -> Path:
        path = Path(self.usecase_file)
        return path if path.is_absolute() else Path(self.task_root) / path


class LakeEnvironment(FunctionEnvironment):
    """A function that reads or writes the lake bucket."""

    lake_bucket: str = Field(min_length=3, alias="LAKE_BUCKET")


class DeploymentEnvironment(FunctionEnvironment):
    """A function that reads the deployment state (champion, challenger and weight per use case)."""

    deployment_table: str = Field(min_length=3, alias="DEPLOYMENT_TABLE")


class RegistryEnvironment(FunctionEnvironment):
    """A function that reads or writes the use case's model package group."""

    model_package_group: str = Field(min_length=1, alias="MODEL_PACKAGE_GROUP")


class AlarmTopicEnvironment(FunctionEnvironment):
    """A function that notifies the alarm topic (SNS) itself."""

    alarm_topic_arn: str = Field(pattern=r"^arn:", alias="ALARM_TOPIC_ARN")


class WorkdirEnvironment(FunctionEnvironment):
    """A function that writes scratch files (Lambda's ``/tmp`` by default)."""

    workdir: Path = Field(default=Path("/tmp"), alias="SLUICE_WORKDIR")  # noqa: S108 - Lambda's scratch space


Environment = TypeVar("Environment", bound=BaseModel)


def read_environment(model: type[Environment], function: str) -> Environment:
    """``model`` read from ``os.environ``; :class:`SettingsError` naming ``function`` when it is invalid."""
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as exc:
        raise SettingsError(f"the {function} function's environment is invalid:\n{exc}") from exc
