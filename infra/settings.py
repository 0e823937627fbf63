"""Typed settings for the Sluice stack and its constructs, built once from a use-case file.

Constructs take these objects as keyword-only arguments; nothing below them reads context,
environment variables or the use-case file again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, Size
from aws_cdk import aws_logs as logs

from shared.usecase import UseCase

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
LAYERS_DIR = ROOT / "layers"
SHARED_DIR = ROOT / "shared"
CONSTRAINTS_FILE = ROOT / "requirements.txt"

USECASE_FILE_IN_BUNDLE = "usecase.toml"
"""Name of the use-case file inside every function bundle (read through ``SLUICE_USECASE_FILE``)."""


@dataclass(frozen=True, kw_only=True)
class LakeLayout:
    """Where the ingest function writes in the lake bucket (each a key prefix ending in ``/``)."""

    curated: str = "curated/"
    quarantine: str = "quarantine/"
    manifests: str = "manifests/"

    def __post_init__(self) -> None:
        for prefix in (self.curated, self.quarantine, self.manifests):
            if not prefix.endswith("/") or prefix.startswith("/") or "*" in prefix:
                raise ValueError(f"lake prefix {prefix!r} must be a relative key prefix ending in '/'")


@dataclass(frozen=True, kw_only=True)
class IngestFunctionSettings:
    """Size and failure handling of the ingest function."""

    source_dir: Path = FUNCTIONS_DIR / "ingest"
    requirements_file: Path = LAYERS_DIR / "ingest.txt"
    memory_size_mb: int = 2048
    timeout: Duration = field(default_factory=lambda: Duration.minutes(15))
    ephemeral_storage: Size = field(default_factory=lambda: Size.gibibytes(4))
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    log_level: str = "INFO"
    retry_attempts: int = 2
    max_event_age: Duration = field(default_factory=lambda: Duration.hours(6))
    dead_letter_retention: Duration = field(default_factory=lambda: Duration.days(14))
    service_name: str = "ingest"
    metrics_namespace: str = "Sluice"


@dataclass(frozen=True, kw_only=True)
class DataPipelineSettings:
    """Everything the data pipeline (raw bucket → ingest → lake) needs to know."""

    usecase_name: str
    usecase_file: Path
    """The use-case TOML copied into the function bundle as :data:`USECASE_FILE_IN_BUNDLE`."""
    lake: LakeLayout = field(default_factory=LakeLayout)
    ingest: IngestFunctionSettings = field(default_factory=IngestFunctionSettings)
    access_log_retention: Duration = field(default_factory=lambda: Duration.days(365))
    noncurrent_version_retention: Duration = field(default_factory=lambda: Duration.days(90))

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> DataPipelineSettings:
        return cls(usecase_name=usecase.name, usecase_file=usecase_file.resolve())


@dataclass(frozen=True, kw_only=True)
class SluiceSettings:
    """One use case's deployment: its stack name and the settings of each capability."""

    stack_name: str
    usecase_name: str
    data_pipeline: DataPipelineSettings

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> SluiceSettings:
        return cls(
            stack_name=stack_name_for(usecase.name),
            usecase_name=usecase.name,
            data_pipeline=DataPipelineSettings.from_usecase(usecase, usecase_file=usecase_file),
        )


def stack_name_for(usecase_name: str) -> str:
    """``telco_churn`` → ``Sluice-telco-churn`` (stack names allow no underscores)."""
    return "Sluice-" + usecase_name.replace("_", "-")
