"""Typed settings for the Sluice stack and its constructs, built once from a use-case file.

Constructs take these objects as keyword-only arguments; nothing below them reads context,
environment variables or the use-case file again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, Size
from aws_cdk import aws_logs as logs

from shared import lake as lake_keys
from shared.usecase import ModelKind, UseCase

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
class TrainingFunctionSettings:
    """Size of one training-pipeline function."""

    source_dir: Path
    memory_size_mb: int = 1024
    timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    ephemeral_storage: Size = field(default_factory=lambda: Size.mebibytes(512))
    service_name: str


def _training_set_function() -> TrainingFunctionSettings:
    return TrainingFunctionSettings(
        source_dir=FUNCTIONS_DIR / "training_set",
        memory_size_mb=3008,
        timeout=Duration.minutes(15),
        ephemeral_storage=Size.gibibytes(4),
        service_name="training-set",
    )


def _register_function() -> TrainingFunctionSettings:
    return TrainingFunctionSettings(
        source_dir=FUNCTIONS_DIR / "training_register",
        memory_size_mb=1024,
        timeout=Duration.minutes(5),
        ephemeral_storage=Size.gibibytes(2),
        service_name="training-register",
    )


def _trigger_function() -> TrainingFunctionSettings:
    return TrainingFunctionSettings(
        source_dir=FUNCTIONS_DIR / "training_trigger",
        memory_size_mb=256,
        timeout=Duration.seconds(30),
        service_name="training-trigger",
    )


@dataclass(frozen=True, kw_only=True)
class TrainingJobSettings:
    """The SageMaker training job of one run (from the use case's ``[model]``)."""

    instance_type: str
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime: Duration = field(default_factory=lambda: Duration.hours(1))
    use_spot: bool = False
    hyperparameters: dict[str, object] = field(default_factory=dict)
    entry_point: str = "training/train.py"
    """``sagemaker_program``: the script the framework container runs, relative to the source archive."""

    @property
    def max_wait(self) -> Duration:
        """Spot training may wait for capacity as long as it may run (``MaxWaitTimeInSeconds`` = 2 x runtime)."""
        return Duration.seconds(2 * self.max_runtime.to_seconds())


@dataclass(frozen=True, kw_only=True)
class TrainingPipelineSettings:
    """Everything the training pipeline (lake → SageMaker → model registry) needs to know."""

    usecase_name: str
    usecase_file: Path
    model_package_group_name: str
    job: TrainingJobSettings
    poll_interval: Duration = field(default_factory=lambda: Duration.seconds(60))
    schedule: str = "rate(7 days)"
    debounce: Duration = field(default_factory=lambda: Duration.seconds(300))
    training_set: TrainingFunctionSettings = field(default_factory=_training_set_function)
    register: TrainingFunctionSettings = field(default_factory=_register_function)
    trigger: TrainingFunctionSettings = field(default_factory=_trigger_function)
    requirements_file: Path = LAYERS_DIR / "ingest.txt"
    """The dependency layer of the pipeline's functions (powertools, pydantic, pyarrow, numpy, boto3)."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    log_level: str = "INFO"
    metrics_namespace: str = "Sluice"
    queue_retention: Duration = field(default_factory=lambda: Duration.days(4))
    dead_letter_retention: Duration = field(default_factory=lambda: Duration.days(14))
    max_receive_count: int = 5

    @property
    def training_sets_prefix(self) -> str:
        return lake_keys.training_set_prefix(self.usecase_name)

    @property
    def sagemaker_prefix(self) -> str:
        return lake_keys.sagemaker_prefix(self.usecase_name)

    @property
    def models_prefix(self) -> str:
        return lake_keys.model_prefix(self.usecase_name)

    @property
    def manifests_prefix(self) -> str:
        return lake_keys.manifest_prefix(self.usecase_name)

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> TrainingPipelineSettings:
        model = usecase.model
        return cls(
            usecase_name=usecase.name,
            usecase_file=usecase_file.resolve(),
            model_package_group_name=resource_name_for(usecase.name),
            job=TrainingJobSettings(
                instance_type=model.training_instance_type,
                instance_count=model.training_instance_count,
                volume_size_gb=model.training_volume_size_gb,
                max_runtime=Duration.seconds(model.max_runtime_seconds),
                use_spot=model.use_spot,
                hyperparameters=dict(model.hyperparameters),
            ),
            poll_interval=Duration.seconds(model.poll_seconds),
            schedule=model.schedule,
            debounce=Duration.seconds(model.debounce_seconds),
        )


@dataclass(frozen=True, kw_only=True)
class ServingEndpointSettings:
    """A heavy model's SageMaker real-time endpoint."""

    usecase_name: str
    endpoint_name: str
    instance_type: str
    initial_model_data: str
    """``s3://.../model.tar.gz`` of a registered model: the endpoint is deployed once one exists."""
    instance_count: int = 1
    variant_name: str = "AllTraffic"
    inference_program: str = "training/inference.py"
    """``SAGEMAKER_PROGRAM`` of the framework container: loads ``model.onnx`` with onnxruntime."""
    capture_sampling_percentage: int = 100
    canary_percent: int = 10
    canary_wait: Duration = field(default_factory=lambda: Duration.minutes(10))
    termination_wait: Duration = field(default_factory=lambda: Duration.minutes(5))
    max_latency_microseconds: int = 500_000
    max_5xx_errors: int = 1

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, initial_model_data: str | None) -> ServingEndpointSettings | None:
        """Settings of the endpoint, or None for a light model or a heavy one with no model registered yet."""
        model = usecase.model
        if model.kind is not ModelKind.HEAVY or not initial_model_data or model.endpoint_instance_type is None:
            return None
        return cls(
            usecase_name=usecase.name,
            endpoint_name=resource_name_for(usecase.name),
            instance_type=model.endpoint_instance_type,
            initial_model_data=initial_model_data,
        )


@dataclass(frozen=True, kw_only=True)
class SluiceSettings:
    """One use case's deployment: its stack name and the settings of each capability."""

    stack_name: str
    usecase_name: str
    data_pipeline: DataPipelineSettings
    training_pipeline: TrainingPipelineSettings
    serving_endpoint: ServingEndpointSettings | None = None
    """Only for heavy models, and only once ``initial_model_data`` names a registered model's artifact."""

    @classmethod
    def from_usecase(
        cls, usecase: UseCase, *, usecase_file: Path, initial_model_data: str | None = None
    ) -> SluiceSettings:
        return cls(
            stack_name=stack_name_for(usecase.name),
            usecase_name=usecase.name,
            data_pipeline=DataPipelineSettings.from_usecase(usecase, usecase_file=usecase_file),
            training_pipeline=TrainingPipelineSettings.from_usecase(usecase, usecase_file=usecase_file),
            serving_endpoint=ServingEndpointSettings.from_usecase(usecase, initial_model_data=initial_model_data),
        )


def stack_name_for(usecase_name: str) -> str:
    """``telco_churn`` → ``Sluice-telco-churn`` (stack names allow no underscores)."""
    return "Sluice-" + usecase_name.replace("_", "-")


def resource_name_for(usecase_name: str) -> str:
    """``telco_churn`` → ``sluice-telco-churn``: SageMaker names allow letters, digits and hyphens only."""
    return "sluice-" + usecase_name.replace("_", "-")
