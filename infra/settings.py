"""Typed settings for the Sluice stack and its constructs, built once from a use-case file.

Constructs take these objects as keyword-only arguments; nothing below them reads context,
environment variables or the use-case file again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, Size
from aws_cdk import aws_logs as logs

from shared.lake import layout as lake_keys
from shared.monitoring import alarms as monitoring_alarms
from shared.monitoring.types import CheckType
from shared.promotion import alarms
from shared.scoring import telemetry
from shared.usecase.settings import ModelKind, UseCase

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
LAYERS_DIR = ROOT / "layers"
SHARED_DIR = ROOT / "shared"
CONSTRAINTS_FILE = ROOT / "requirements.txt"

USECASE_FILE_IN_BUNDLE = "usecase.toml"
"""Name of the use-case file inside every function bundle (read through ``SLUICE_USECASE_FILE``)."""


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
    metrics_namespace: str = telemetry.NAMESPACE


@dataclass(frozen=True, kw_only=True)
class DataPipelineSettings:
    """Everything the data pipeline (raw bucket → ingest → lake) needs to know."""

    usecase_name: str
    usecase_file: Path
    """The use-case TOML copied into the function bundle as :data:`USECASE_FILE_IN_BUNDLE`."""
    ingest: IngestFunctionSettings = field(default_factory=IngestFunctionSettings)
    access_log_retention: Duration = field(default_factory=lambda: Duration.days(365))
    noncurrent_version_retention: Duration = field(default_factory=lambda: Duration.days(90))

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> DataPipelineSettings:
        return cls(usecase_name=usecase.name, usecase_file=usecase_file.resolve())

    @property
    def lake_write_prefixes(self) -> tuple[str, ...]:
        """Where ingest writes in the lake, for every use case (:data:`shared.lake.layout.INGEST_AREAS`)."""
        return tuple(lake_keys.area_prefix(area) for area in lake_keys.INGEST_AREAS)

    @property
    def manifests_area_prefix(self) -> str:
        """Every use case's manifests (``manifests/``)."""
        return lake_keys.area_prefix(lake_keys.MANIFESTS)


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
    estimator: str = "logistic_regression"
    """The use case's estimator: it picks the framework image (:func:`infra.training_pipeline.framework_for`)."""
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
    metrics_namespace: str = telemetry.NAMESPACE
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

    @property
    def curated_prefix(self) -> str:
        return lake_keys.curated_prefix(self.usecase_name)

    @property
    def training_output_prefix(self) -> str:
        return lake_keys.training_output_prefix(self.usecase_name)

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
                estimator=model.estimator,
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
class ScoreFunctionSettings:
    """Size of the score function (behind the REST API)."""

    source_dir: Path = FUNCTIONS_DIR / "score"
    memory_size_mb: int = 1024
    timeout: Duration = field(default_factory=lambda: Duration.seconds(10))
    service_name: str = "score"


@dataclass(frozen=True, kw_only=True)
class PredictionLogSettings:
    """The prediction log: an SQS queue drained in batches into the lake by one function."""

    source_dir: Path = FUNCTIONS_DIR / "prediction_log"
    memory_size_mb: int = 512
    timeout: Duration = field(default_factory=lambda: Duration.seconds(60))
    service_name: str = "prediction-log"
    batch_size: int = 100
    batching_window: Duration = field(default_factory=lambda: Duration.seconds(30))
    queue_retention: Duration = field(default_factory=lambda: Duration.days(4))
    dead_letter_retention: Duration = field(default_factory=lambda: Duration.days(14))
    max_receive_count: int = 5


@dataclass(frozen=True, kw_only=True)
class ScoringApiSettings:
    """The scoring API of one use case: REST API → score function, its state, queues and limits."""

    usecase_name: str
    usecase_file: Path
    model_package_group_name: str
    endpoint_name: str | None
    """The heavy model's SageMaker endpoint (:func:`resource_name_for`), also before the endpoint exists;
    None for a light model, which scores in the function only."""
    throttle_rate_per_second: float
    throttle_burst: int
    daily_quota: int | None = None
    stage_name: str = "api"
    """The API's one stage: URLs read ``.../api/v1/{usecase}/predict``. The version lives in the path
    (``v1``), so the stage is not named after a version or an environment (one stack per deployment)."""
    openapi_throttle_rate_per_second: float = 5.0
    openapi_throttle_burst: int = 10
    """``GET openapi.json`` needs no API key; this method-level limit bounds what anonymous callers can cost."""
    requirements_file: Path = LAYERS_DIR / "scoring.txt"
    """The dependency layer of the score and prediction-log functions: onnxruntime, numpy, pydantic,
    powertools, X-Ray, boto3; no scikit-learn, scipy, pandas or pyarrow."""
    score: ScoreFunctionSettings = field(default_factory=ScoreFunctionSettings)
    prediction_log: PredictionLogSettings = field(default_factory=PredictionLogSettings)
    review_retention: Duration = field(default_factory=lambda: Duration.days(14))
    review_visibility_timeout: Duration = field(default_factory=lambda: Duration.minutes(6))
    """At least six times the review intake's timeout (Lambda's rule for SQS event sources)."""
    review_max_receive_count: int = 50
    """Receives of a review message before its dead-letter queue: back-pressure returns messages many times."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    access_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR
    log_level: str = "INFO"
    metrics_namespace: str = telemetry.NAMESPACE

    @property
    def models_prefix(self) -> str:
        return lake_keys.model_prefix(self.usecase_name)

    @property
    def feedback_prefix(self) -> str:
        return lake_keys.feedback_prefix(self.usecase_name)

    @property
    def predictions_prefix(self) -> str:
        return lake_keys.prediction_log_prefix(self.usecase_name)

    @property
    def reports_prefix(self) -> str:
        """The monitor's reports: the score function reads the latest (segments under an alert route reviews)."""
        return lake_keys.report_prefix(self.usecase_name)

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> ScoringApiSettings:
        serving = usecase.serving
        return cls(
            usecase_name=usecase.name,
            usecase_file=usecase_file.resolve(),
            model_package_group_name=resource_name_for(usecase.name),
            endpoint_name=resource_name_for(usecase.name) if usecase.model.kind is ModelKind.HEAVY else None,
            throttle_rate_per_second=serving.throttle_rate_per_second,
            throttle_burst=serving.throttle_burst,
            daily_quota=serving.daily_quota,
        )


@dataclass(frozen=True, kw_only=True)
class PromotionFunctionSettings:
    """Size of one promotion function."""

    source_dir: Path
    memory_size_mb: int
    timeout: Duration
    service_name: str


def _promotion_step_function() -> PromotionFunctionSettings:
    # Loads two ONNX models and a holdout set (offline gate, replay): memory for onnxruntime and numpy.
    return PromotionFunctionSettings(
        source_dir=FUNCTIONS_DIR / "promotion_step",
        memory_size_mb=1024,
        timeout=Duration.minutes(5),
        service_name="promotion",
    )


def _rollback_function() -> PromotionFunctionSettings:
    return PromotionFunctionSettings(
        source_dir=FUNCTIONS_DIR / "rollback",
        memory_size_mb=256,
        timeout=Duration.seconds(60),
        service_name="rollback",
    )


ALARM_PERIODS_UNDER_A_MINUTE = (10, 30)
"""CloudWatch alarms on high-resolution metrics accept these periods below 60 s; above, multiples of 60."""


@dataclass(frozen=True, kw_only=True)
class PromotionSettings:
    """The promotion of a candidate model (the CDK side of the use case's ``[promotion]``): the state
    machine's bake times and canary steps, the candidate alarms' thresholds and windows, the rollback."""

    usecase_name: str
    usecase_file: Path
    model_package_group_name: str
    endpoint_name: str | None
    """The heavy model's SageMaker endpoint, whose variant weights a promotion moves; None for a light model."""
    shadow_bake: Duration
    canary_steps: tuple[float, ...]
    canary_bake: Duration
    max_bake_extensions: int
    max_error_rate: float
    """A share (0.01 = 1%); the alarms compare percentages."""
    latency_budget_ms: float
    max_fallback_rate: float
    max_divergence: float
    watch_window: Duration
    alarm_period: Duration
    alarm_evaluation_periods: int
    alarm_datapoints_to_alarm: int
    human_decision_timeout: Duration = field(default_factory=lambda: Duration.days(1))
    """How long a promotion waits for ``approve``/``abort`` before it rolls back on its own."""
    watch_check_schedule: str = "rate(5 minutes)"
    """How often the promotion function ends a post-promotion watch whose window has passed."""
    step: PromotionFunctionSettings = field(default_factory=_promotion_step_function)
    rollback: PromotionFunctionSettings = field(default_factory=_rollback_function)
    rollback_retry_attempts: int = 4
    rollback_max_event_age: Duration = field(default_factory=lambda: Duration.hours(1))
    dead_letter_retention: Duration = field(default_factory=lambda: Duration.days(14))
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    log_level: str = "INFO"
    metrics_namespace: str = telemetry.NAMESPACE

    def __post_init__(self) -> None:
        period = int(self.alarm_period.to_seconds())
        if period not in ALARM_PERIODS_UNDER_A_MINUTE and period % 60 != 0:
            raise ValueError(f"alarm period {period} s: CloudWatch accepts 10, 30 or a multiple of 60 seconds")
        if not self.canary_steps or self.canary_steps[-1] != 1.0:
            raise ValueError("canary_steps must end at 1.0")

    @property
    def resource_name(self) -> str:
        return resource_name_for(self.usecase_name)

    @property
    def alarm_name_prefix(self) -> str:
        """Every candidate alarm's name starts with this; the rollback rule matches on it."""
        return alarms.candidate_alarm_prefix(self.usecase_name)

    @property
    def watch_alarm_name_prefix(self) -> str:
        """The watch-window alarms (the promoted model, as champion): still under :attr:`alarm_name_prefix`."""
        return f"{self.alarm_name_prefix}{alarms.WATCH_MARKER}"

    @property
    def dashboard_name(self) -> str:
        return self.resource_name

    @property
    def models_prefix(self) -> str:
        return lake_keys.model_prefix(self.usecase_name)

    @property
    def predictions_prefix(self) -> str:
        return lake_keys.prediction_log_prefix(self.usecase_name)

    @property
    def promotions_prefix(self) -> str:
        """Timelines: ``promotions/{usecase}/{execution name}/timeline.html`` and ``.json``."""
        return lake_keys.promotion_prefix(self.usecase_name)

    @property
    def execution_timeout(self) -> Duration:
        """The longest a promotion can legitimately take: every bake extended to the limit, a human asked
        at every stage, and an hour for the tasks themselves."""
        bakes = 1 + self.max_bake_extensions
        seconds = (
            bakes * (self.shadow_bake.to_seconds() + len(self.canary_steps) * self.canary_bake.to_seconds())
            + (1 + len(self.canary_steps)) * self.human_decision_timeout.to_seconds()
            + 3600
        )
        return Duration.seconds(seconds)

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> PromotionSettings:
        promotion = usecase.promotion
        return cls(
            usecase_name=usecase.name,
            usecase_file=usecase_file.resolve(),
            model_package_group_name=resource_name_for(usecase.name),
            endpoint_name=resource_name_for(usecase.name) if usecase.model.kind is ModelKind.HEAVY else None,
            shadow_bake=Duration.seconds(promotion.shadow_bake_seconds),
            canary_steps=tuple(promotion.canary_steps),
            canary_bake=Duration.seconds(promotion.canary_bake_seconds),
            max_bake_extensions=promotion.max_bake_extensions,
            max_error_rate=promotion.max_error_rate,
            latency_budget_ms=promotion.latency_budget_ms,
            max_fallback_rate=promotion.max_fallback_rate,
            max_divergence=promotion.max_divergence,
            watch_window=Duration.seconds(promotion.watch_window_seconds),
            alarm_period=Duration.seconds(promotion.alarm_period_seconds),
            alarm_evaluation_periods=promotion.alarm_evaluation_periods,
            alarm_datapoints_to_alarm=promotion.alarm_datapoints_to_alarm,
        )


@dataclass(frozen=True, kw_only=True)
class MonitoringFunctionSettings:
    """Size of one monitoring function."""

    source_dir: Path
    memory_size_mb: int
    timeout: Duration
    service_name: str


def _monitor_function() -> MonitoringFunctionSettings:
    # One run reads up to ~1M logged predictions x 20 features of its longest window (numpy + pyarrow).
    return MonitoringFunctionSettings(
        source_dir=FUNCTIONS_DIR / "monitor",
        memory_size_mb=3008,
        timeout=Duration.minutes(15),
        service_name="monitor",
    )


def _retrain_function() -> MonitoringFunctionSettings:
    return MonitoringFunctionSettings(
        source_dir=FUNCTIONS_DIR / "retrain",
        memory_size_mb=256,
        timeout=Duration.seconds(60),
        service_name="retrain",
    )


@dataclass(frozen=True, kw_only=True)
class MonitoringStackSettings:
    """Production monitoring (the CDK side of the use case's ``[monitoring]``): the monitor on its schedule,
    one alarm per check type on the run's alert counts, and the retrain function those alarms reach."""

    usecase_name: str
    usecase_file: Path
    model_package_group_name: str
    enabled: bool
    """False: the monitor is deployed (startable from the CLI) but not scheduled."""
    schedule_minutes: int
    monitor: MonitoringFunctionSettings = field(default_factory=_monitor_function)
    retrain: MonitoringFunctionSettings = field(default_factory=_retrain_function)
    requirements_file: Path = LAYERS_DIR / "ingest.txt"
    """numpy, pyarrow, pydantic, powertools: the ingest layer (no pandas or scipy)."""
    retry_attempts: int = 2
    max_event_age: Duration = field(default_factory=lambda: Duration.hours(1))
    dead_letter_retention: Duration = field(default_factory=lambda: Duration.days(14))
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    log_level: str = "INFO"
    metrics_namespace: str = telemetry.NAMESPACE

    @property
    def schedule(self) -> str:
        unit = "minute" if self.schedule_minutes == 1 else "minutes"
        return f"rate({self.schedule_minutes} {unit})"

    @property
    def alarm_period(self) -> Duration:
        """One alarm period per monitor run: the alert counts of one run are summed over it."""
        return Duration.minutes(self.schedule_minutes)

    @property
    def alarm_name_prefix(self) -> str:
        """Every monitoring alarm's name starts with this; the retraining rule matches on it."""
        return monitoring_alarms.monitoring_alarm_prefix(self.usecase_name)

    def alarm_name(self, check: CheckType) -> str:
        return monitoring_alarms.monitoring_alarm_name(self.usecase_name, check)

    @property
    def predictions_prefix(self) -> str:
        return lake_keys.prediction_log_prefix(self.usecase_name)

    @property
    def feedback_prefix(self) -> str:
        return lake_keys.feedback_prefix(self.usecase_name)

    @property
    def models_prefix(self) -> str:
        """Model archives and their ``baseline.json``."""
        return lake_keys.model_prefix(self.usecase_name)

    @property
    def monitoring_prefix(self) -> str:
        """The only prefix the monitor writes: joined labels and reports."""
        return lake_keys.monitoring_prefix(self.usecase_name)

    @property
    def reports_prefix(self) -> str:
        return lake_keys.report_prefix(self.usecase_name)

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> MonitoringStackSettings:
        monitoring = usecase.monitoring
        return cls(
            usecase_name=usecase.name,
            usecase_file=usecase_file.resolve(),
            model_package_group_name=resource_name_for(usecase.name),
            enabled=monitoring.enabled,
            schedule_minutes=monitoring.schedule_minutes,
        )


@dataclass(frozen=True, kw_only=True)
class BatchFunctionSettings:
    """Size of one batch function."""

    source_dir: Path
    memory_size_mb: int
    timeout: Duration
    service_name: str
    ephemeral_storage: Size = field(default_factory=lambda: Size.mebibytes(512))


def _batch_function(
    name: str, *, memory_size_mb: int, timeout: Duration, storage_mb: int = 512
) -> BatchFunctionSettings:
    return BatchFunctionSettings(
        source_dir=FUNCTIONS_DIR / name,
        memory_size_mb=memory_size_mb,
        timeout=timeout,
        service_name=name.replace("_", "-"),
        ephemeral_storage=Size.mebibytes(storage_mb),
    )


@dataclass(frozen=True, kw_only=True)
class BatchStackSettings:
    """Batch prediction (the CDK side of the use case's ``[batch]``): the Distributed Map's concurrency, tolerance
    and retries, and the functions it runs."""

    usecase_name: str
    usecase_file: Path
    model_package_group_name: str
    max_concurrency: int
    tolerated_failure_percentage: float
    retry_attempts: int
    retry_interval: Duration = field(default_factory=lambda: Duration.seconds(2))
    plan: BatchFunctionSettings = field(
        default_factory=lambda: _batch_function("batch_plan", memory_size_mb=1024, timeout=Duration.minutes(15))
    )
    worker: BatchFunctionSettings = field(
        default_factory=lambda: _batch_function(
            "batch_worker", memory_size_mb=3008, timeout=Duration.minutes(15), storage_mb=4096
        )
    )
    finish: BatchFunctionSettings = field(
        default_factory=lambda: _batch_function("batch_finish", memory_size_mb=1024, timeout=Duration.minutes(15))
    )
    start: BatchFunctionSettings = field(
        default_factory=lambda: _batch_function("batch_start", memory_size_mb=512, timeout=Duration.minutes(5))
    )
    execution_timeout: Duration = field(default_factory=lambda: Duration.hours(24))
    worker_requirements_file: Path = LAYERS_DIR / "batch.txt"
    """The worker's one dependency layer: pyarrow, numpy, onnxruntime, msgspec, pydantic, powertools, boto3."""
    worker_aws_services: tuple[str, ...] = ("s3", "xray")
    """The AWS services the worker's process makes clients of: S3 (``shared.batch.runtime.lake_store``) and X-Ray
    (the X-Ray SDK's sampling rules, made when powertools' Tracer starts). Its layer keeps their botocore models
    only; a client of any other service fails with ``UnknownServiceError``."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    log_level: str = "INFO"
    metrics_namespace: str = telemetry.NAMESPACE

    @property
    def batch_prefix(self) -> str:
        """The only lake prefix batch jobs write besides the prediction log: ``batch-predictions/<usecase>/``."""
        return lake_keys.batch_prefix(self.usecase_name)

    @property
    def predictions_prefix(self) -> str:
        return lake_keys.prediction_log_prefix(self.usecase_name)

    @property
    def models_prefix(self) -> str:
        return lake_keys.model_prefix(self.usecase_name)

    @property
    def training_output_prefix(self) -> str:
        """Where a registered version's metrics.json lies (the plan reads a named version's threshold there)."""
        return lake_keys.training_output_prefix(self.usecase_name)

    @property
    def upload_prefix(self) -> str:
        """Raw bucket: an upload under it starts a job."""
        return lake_keys.BATCH_UPLOAD_PREFIX

    @property
    def failure_key_template(self) -> str:
        """``States.Format`` template of a failed chunk's key (use case, job id, chunk key)."""
        return lake_keys.batch_failure_key("{}", "{}", "{}")

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> BatchStackSettings:
        batch = usecase.batch
        return cls(
            usecase_name=usecase.name,
            usecase_file=usecase_file.resolve(),
            model_package_group_name=resource_name_for(usecase.name),
            max_concurrency=batch.max_concurrency,
            tolerated_failure_percentage=batch.tolerated_failure_percentage,
            retry_attempts=batch.retry_attempts,
        )


@dataclass(frozen=True, kw_only=True)
class ReviewFunctionSettings:
    """Size of one review function."""

    source_dir: Path
    memory_size_mb: int
    timeout: Duration
    service_name: str


@dataclass(frozen=True, kw_only=True)
class ReviewStackSettings:
    """Human review (the CDK side of the use case's ``[review]``): the items table, the intake from the review
    queue, the sweep on its schedule, the SLA alarm, the reviewers' user pool and API."""

    usecase_name: str
    usecase_file: Path
    sla: Duration
    """``[review] sla_seconds``: the oldest open item's age past it raises the SLA alarm."""
    model_package_group_name: str
    """Where the reviewer's API finds a served version's ``metrics.json`` (per-feature contributions)."""
    intake: ReviewFunctionSettings = field(
        default_factory=lambda: ReviewFunctionSettings(
            source_dir=FUNCTIONS_DIR / "review_intake",
            memory_size_mb=512,
            timeout=Duration.seconds(60),
            service_name="review-intake",
        )
    )
    sweep: ReviewFunctionSettings = field(
        default_factory=lambda: ReviewFunctionSettings(
            source_dir=FUNCTIONS_DIR / "review_sweep",
            memory_size_mb=512,
            timeout=Duration.minutes(5),
            service_name="review-sweep",
        )
    )
    api: ReviewFunctionSettings = field(
        default_factory=lambda: ReviewFunctionSettings(
            source_dir=FUNCTIONS_DIR / "review_api",
            memory_size_mb=512,
            timeout=Duration.seconds(15),
            service_name="review-api",
        )
    )
    intake_batch_size: int = 10
    intake_batching_window: Duration = field(default_factory=lambda: Duration.seconds(5))
    intake_max_receive_count: int = 50
    """Receives before a message goes to the dead-letter queue: back-pressure (a full queue) returns messages
    many times before a reviewer frees room, so this is generous; an unreadable message reaches it too."""
    sweep_minutes: int = 5
    dead_letter_retention: Duration = field(default_factory=lambda: Duration.days(14))
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    log_level: str = "INFO"
    metrics_namespace: str = telemetry.NAMESPACE

    @property
    def sweep_schedule(self) -> str:
        return f"rate({self.sweep_minutes} minutes)"

    @property
    def feedback_prefix(self) -> str:
        """The reviewed labels, where the feedback API writes them."""
        return lake_keys.feedback_prefix(self.usecase_name)

    @property
    def reports_prefix(self) -> str:
        """The monitor's reports: segments under an alert route items."""
        return lake_keys.report_prefix(self.usecase_name)

    @property
    def models_prefix(self) -> str:
        """The registered models' files: a version's ``metrics.json`` explains a linear model's scores."""
        return lake_keys.model_prefix(self.usecase_name)

    @classmethod
    def from_usecase(cls, usecase: UseCase, *, usecase_file: Path) -> ReviewStackSettings:
        return cls(
            usecase_name=usecase.name,
            usecase_file=usecase_file.resolve(),
            sla=Duration.seconds(usecase.review.sla_seconds),
            model_package_group_name=resource_name_for(usecase.name),
        )


@dataclass(frozen=True, kw_only=True)
class SluiceSettings:
    """One use case's deployment: its stack name and the settings of each capability."""

    stack_name: str
    usecase_name: str
    data_pipeline: DataPipelineSettings
    training_pipeline: TrainingPipelineSettings
    scoring_api: ScoringApiSettings
    promotion: PromotionSettings
    monitoring: MonitoringStackSettings
    batch: BatchStackSettings
    review: ReviewStackSettings
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
            scoring_api=ScoringApiSettings.from_usecase(usecase, usecase_file=usecase_file),
            promotion=PromotionSettings.from_usecase(usecase, usecase_file=usecase_file),
            monitoring=MonitoringStackSettings.from_usecase(usecase, usecase_file=usecase_file),
            batch=BatchStackSettings.from_usecase(usecase, usecase_file=usecase_file),
            review=ReviewStackSettings.from_usecase(usecase, usecase_file=usecase_file),
            serving_endpoint=ServingEndpointSettings.from_usecase(usecase, initial_model_data=initial_model_data),
        )


def stack_name_for(usecase_name: str) -> str:
    """``telco_churn`` → ``Sluice-telco-churn`` (stack names allow no underscores)."""
    return "Sluice-" + usecase_name.replace("_", "-")


def resource_name_for(usecase_name: str) -> str:
    """``telco_churn`` → ``sluice-telco-churn``: SageMaker names allow letters, digits and hyphens only."""
    return "sluice-" + usecase_name.replace("_", "-")
