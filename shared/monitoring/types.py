"""The monitor's inputs (numpy columns of one window) and its report (pydantic, serialized to JSON).

Inputs are the lake readers' own columns (:class:`~shared.monitoring.window.PredictionColumns`,
:class:`~shared.monitoring.window.JoinedColumns`), gathered per window in :class:`MonitorWindow` by
:func:`shared.monitoring.labels.read_window`; :func:`shared.monitoring.monitor.run_monitor` turns them into a
:class:`MonitoringReport`.

Column conventions: a numeric feature is a float array with NaN for null; a categorical feature is an object
array of ``str`` with ``None`` for null; ``model_version`` is compared as text; ``time`` is ``datetime64``
(informational). All columns of one input have the same length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.monitoring.baseline import Baseline
from shared.monitoring.cells import Verdict
from shared.monitoring.join import JoinOutcome
from shared.monitoring.window import JoinedColumns, PredictionColumns

CheckType = Literal[
    "data_quality", "data_drift", "prediction_drift", "model_quality", "calibration", "segment_degradation"
]
DATA_QUALITY: CheckType = "data_quality"
DATA_DRIFT: CheckType = "data_drift"
PREDICTION_DRIFT: CheckType = "prediction_drift"
MODEL_QUALITY: CheckType = "model_quality"
CALIBRATION: CheckType = "calibration"
SEGMENT_DEGRADATION: CheckType = "segment_degradation"
CHECK_TYPES: tuple[CheckType, ...] = (
    DATA_QUALITY,
    DATA_DRIFT,
    PREDICTION_DRIFT,
    MODEL_QUALITY,
    CALIBRATION,
    SEGMENT_DEGRADATION,
)
OVERALL = "all"
"""The segment of a cell over every row (not one segment value)."""


@dataclass(frozen=True, kw_only=True)
class MonitorWindow:
    """One window of a run: the last ``hours`` before ``now``, its traffic, its labels and the requests refused
    by reason (counted, not tested: the baseline has none).

    :func:`~shared.monitoring.labels.read_window` builds it from the lake (``labels`` then holds the labels
    observed in the window, possibly none); ``labels`` None means no labels were read at all (performance is
    estimated, not tested). ``join``, ``objects`` and ``unreadable_lines`` say what reading it found.
    """

    hours: float
    predictions: PredictionColumns
    labels: JoinedColumns | None = None
    refusals: Mapping[str, int] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    join: JoinOutcome = field(default_factory=JoinOutcome)
    """The counts of the feedback days the window touches (whole days: the counts are kept per day)."""
    objects: int = 0
    """Prediction-log objects read."""
    unreadable_lines: int = 0

    @property
    def name(self) -> str:
        return window_name(self.hours)

    @property
    def empty(self) -> bool:
        """No traffic in the window: every traffic cell is insufficient evidence (n = 0)."""
        return len(self.predictions) == 0


def window_name(hours: float) -> str:
    """``last 6 h``; a window under an hour reads in whole minutes or seconds when it is one (``last 3 min``)."""
    return f"last {window_span(hours, minutes=' min', seconds=' s', hours_unit=' h')}"


def window_span(hours: float, *, minutes: str = "min", seconds: str = "s", hours_unit: str = "") -> str:
    """``6`` (hours, ``hours_unit`` appended), ``3min`` or ``45s`` under an hour when whole: the window's length."""
    for count, unit in ((hours * 60, minutes), (hours * 3600, seconds)):
        if hours < 1 and count >= 1 and math.isclose(count, round(count), abs_tol=1e-6):
            return f"{round(count)}{unit}"
    return f"{hours:g}{hours_unit}"


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """A model version being served (champion, challenger or shadow) and its baseline.

    ``baseline`` None (a package registered before baselines existed): data quality only; ``reason`` says why.
    ``threshold`` defaults to the baseline's.
    """

    model_version: str
    variant: str
    baseline: Baseline | None
    reason: str = ""
    threshold: float | None = None

    @property
    def deployed_threshold(self) -> float | None:
        if self.threshold is not None:
            return self.threshold
        return self.baseline.threshold if self.baseline is not None else None


# ---------------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null (``required_n`` null means "more than can be seen")."""
    return None if value is None or not math.isfinite(value) else float(value)


class Cell(_Frozen):
    """One test of the run with its verdict: an alert, ok, or insufficient evidence (and the n it would need)."""

    check_type: CheckType
    model_version: str
    window: str
    window_hours: float
    segment: str
    feature_name: str
    """The feature tested (data quality, drift), ``score`` (prediction drift) or the metric (``auc``...)."""
    metric: str
    """What is measured: ``psi``, ``null_rate``, ``unseen_share``, ``auc``, ``brier``, ``ece``, ..."""
    statistic: str
    """The test behind the p-value: ``ks``, ``chi2``, ``pooled z``, ``delong z``, ``welch z``, ``spiegelhalter z``."""
    n: int
    value: float | None
    baseline: float | None
    baseline_n: int | None
    effect: float | None
    interval: tuple[float, float] | None
    p_value: float | None
    q_value: float | None
    verdict: Verdict
    required_n: float | None
    min_effect: float | None
    description: str


class Violation(_Frozen):
    """An alert, shaped as SageMaker Model Monitor's ``constraint_violations.json`` items plus the evidence."""

    feature_name: str
    constraint_check_type: CheckType
    description: str
    model_version: str
    segment: str
    window: str
    metric: str
    n: int
    effect: float | None
    interval: tuple[float, float] | None
    p_value: float | None
    q_value: float | None


class ReliabilityBin(_Frozen):
    low: float
    high: float
    n: int
    mean_score: float
    observed_rate: float


class ReliabilityCurve(_Frozen):
    """A window's calibration: per equal-width score bin, the mean score and the observed positive rate."""

    model_version: str
    window: str
    segment: str
    n: int
    ece: float
    bins: list[ReliabilityBin]


class PerformanceEstimate(_Frozen):
    """CBPE: performance expected from the calibrated scores of all served rows, and, once labels have
    landed, the realized value on the labeled rows beside it (reconciliation)."""

    model_version: str
    window: str
    segment: str
    n: int
    expected_auc: float | None
    expected_precision: float | None
    expected_recall: float | None
    expected_positive_rate: float | None
    """The share of positives the scores expect (their mean)."""
    labeled_n: int = 0
    realized_auc: float | None = None
    realized_precision: float | None = None
    realized_recall: float | None = None
    realized_positive_rate: float | None = None


class FeatureQuality(_Frozen):
    """Served traffic's data quality of one feature in one window (every model version's rows)."""

    window: str
    feature_name: str
    n: int
    null_rate: float
    unseen_categories: list[str] = Field(default_factory=list)
    unseen_count: int = 0


class WindowSummary(_Frozen):
    window: str
    hours: float
    start: str
    end: str
    predictions: dict[str, int]
    """Rows per model version."""
    labels: dict[str, int]
    labels_weighted: dict[str, float] = Field(default_factory=dict)
    """Per model version, the labels counted with their weights (Σ 1 / inclusion probability): the population
    they stand for in the weighted estimates. A reviewed audit label at P = 0.2 counts 5; any other label 1."""
    refusals: dict[str, int]
    joined: dict[str, int] = Field(default_factory=dict)
    """The label join's counts over the window's feedback days (joined, late, no prediction, repeated, ...)."""


class ModelSummary(_Frozen):
    model_version: str
    variant: str
    has_baseline: bool
    baseline_rows: int | None
    note: str = ""


class MonitoringReport(_Frozen):
    """One run of the monitor: every cell of the family, the alerts among them, and what helps read them."""

    usecase: str
    generated_at: str
    fdr: float
    power: float = 0.8
    """The power each test is sized for (``required_n``) to see its declared effect at ``alpha = fdr``."""
    models: list[ModelSummary]
    windows: list[WindowSummary]
    violations: list[Violation]
    cells: list[Cell]
    data_quality: list[FeatureQuality]
    estimates: list[PerformanceEstimate]
    reliability: list[ReliabilityCurve]
    notes: list[str] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def insufficient(self) -> list[Cell]:
        return [cell for cell in self.cells if cell.verdict == "insufficient evidence"]
