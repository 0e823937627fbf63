"""The baseline: what the training holdout looked like, written beside the model as ``baseline.json``.

The training job writes it (``training/baseline.py``); the registry attaches it to the model package
(``DriftCheckBaselines`` and ``ModelQuality``) and names it in lineage; the monitor compares served traffic
and joined labels against it. Everything here is a summary a window can be tested against without the
holdout itself:

- per feature: its type, count, nulls, and its distribution — quantile bin edges with the holdout's count
  per bin and a bounded reference sample (numeric: chi-square on the bins, KS on the sample, PSI on the
  bins), or the count per category (categorical: chi-square and PSI, and which categories are new);
- the score distribution on the holdout, as a numeric feature;
- holdout metrics overall and per declared segment value, each with what a two-sample test needs (AUC and
  its DeLong variance, the mean and variance of the per-row squared error for Brier, the confusion counts
  at the deployed threshold for rates).

A model version without a baseline (packages registered before baselines existed) is monitored for data
quality only; the report says so.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

BASELINE_FILE = "baseline.json"
BASELINE_FORMAT = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NumericProfile(_Frozen):
    """A numeric feature (or the score): ``counts[i]`` holdout values fell in bin ``i`` of ``edges``.

    Bins are ``(-inf, e0], (e0, e1], …, (e_last, +inf)``: ``len(counts) == len(edges) + 1``, so a served value
    outside the holdout's range still lands in a bin. ``sample`` is a seeded, bounded sample of the non-null
    values (for the two-sample KS test).
    """

    kind: Literal["numeric"] = "numeric"
    count: int = Field(ge=0)
    null_count: int = Field(ge=0)
    edges: list[float]
    counts: list[int]
    sample: list[float] = Field(default_factory=list)
    mean: float | None = None
    std: float | None = None

    @property
    def null_rate(self) -> float:
        return self.null_count / self.count if self.count else 0.0


class CategoricalProfile(_Frozen):
    """A categorical feature: how many holdout rows had each category (nulls counted apart)."""

    kind: Literal["categorical"] = "categorical"
    count: int = Field(ge=0)
    null_count: int = Field(ge=0)
    counts: dict[str, int]

    @property
    def null_rate(self) -> float:
        return self.null_count / self.count if self.count else 0.0


FeatureProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class MetricSummary(_Frozen):
    """Holdout metrics of one population (overall, or one segment value), with what a test needs."""

    n: int = Field(ge=0)
    positives: int = Field(ge=0)
    auc: float | None = None
    """None when the population has one class only."""
    auc_variance: float | None = None
    """DeLong's variance of ``auc``."""
    brier: float
    brier_variance: float
    """Variance of the per-row squared error (Brier is its mean)."""
    ece: float
    positive_rate: float
    """Observed share of positives."""
    mean_score: float
    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def predicted_positives(self) -> int:
        return self.true_positives + self.false_positives

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.predicted_positives if self.predicted_positives else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.positives if self.positives else None


class Baseline(_Frozen):
    """``baseline.json``: the holdout's profile, score distribution and metrics (overall and per segment)."""

    format: int = BASELINE_FORMAT
    usecase: str
    contract_version: str
    threshold: float
    rows: int = Field(ge=0)
    features: dict[str, FeatureProfile]
    score: NumericProfile
    overall: MetricSummary
    segments: dict[str, dict[str, MetricSummary]] = Field(default_factory=dict)
    """segment column → segment value (as text) → its metrics; values with too few rows are left out."""
