"""One run of the monitor: every window's traffic and labels against each served model's baseline, as one family.

For each window (``settings.windows_hours``) and each served model version (champion, challenger, shadow) with a
baseline, :func:`run_monitor` builds these cells, then judges them all together (:func:`judge_family`,
Benjamini-Hochberg at ``settings.fdr``) — so testing 20 features x 3 windows x 2 versions does not cry wolf:

========================  ================  ======================================  ==============================
check type                 cell              test (p-value)                          effect worth an alert
========================  ================  ======================================  ==============================
data_quality               null rate         pooled two-proportion z, one-sided up   ``null_rate_alert``
data_quality               unseen share      pooled z against the holdout's 0        ``null_rate_alert`` (below)
data_drift                 feature PSI       numeric: KS against the baseline's      ``psi_alert``
                                             reference sample (chi-square on the
                                             bins when it has < 100 values);
                                             categorical: chi-square on categories
prediction_drift           score PSI         KS against the holdout's scores         ``psi_alert``
model_quality /            AUC               DeLong z, one-sided down                ``auc_drop_alert``
segment_degradation        Brier             Welch z, one-sided up                   ``brier_increase_alert``
                           positive rate     pooled z, two-sided (label shift)       ``rate_change_alert``
                           precision/recall  pooled z at the deployed threshold,     ``rate_change_alert``
                                             one-sided down
calibration                ECE               Spiegelhalter's z on the window         ``ece_alert`` (ECE rise)
========================  ================  ======================================  ==============================

Decisions worth knowing:

- Degradations are one-sided (an AUC *rise* is never an alert); positive rate (the observed share of positives)
  is a shift either way. PSI is the effect of a drift cell; its p-value is one test per cell (named in
  ``statistic``): KS is the more powerful for numeric features, chi-square the only one for categories.
- A category never seen in the holdout: the cell's effect is the share of rows carrying one, tested against the
  holdout's zero; it alerts when that share is significant *and* at least ``null_rate_alert`` (both are rows the
  model has not learned from). A handful of new values is listed in ``data_quality`` without an alert. Drift of
  a categorical feature is measured on its known categories (the unseen ones are this cell's business).
- Refusals by reason are counted per window in the report; the baseline has no refusal rate to test against.
- Drift is tested on every row of the version (``segment = "all"``): the baseline format 1 profiles features
  overall only. Performance is tested overall and per segment value the baseline holds.
- Every cell needs at least ``min_samples`` rows (drift, data quality) or ``min_labels`` labels (performance),
  and at least the n at which its test has ``settings.power`` to see its declared effect at ``alpha = fdr``;
  below that it says *insufficient evidence* and that n. ECE's n is approximated by the n that sees a shift of
  the positive rate of ``ece_alert`` (calibration in the large).
- A model version without a baseline is monitored for data quality only (no tests: there is nothing to test
  against); the report says so in ``notes`` and ``models``.
- CBPE: expected AUC, precision, recall and positive rate from the scores of all served rows (they are
  calibrated probabilities), beside the realized values on the rows whose labels have landed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from shared.monitoring.baseline import Baseline, CategoricalProfile, MetricSummary, NumericProfile
from shared.monitoring.cells import (
    ALERT,
    INSUFFICIENT_EVIDENCE,
    CellEvidence,
    CellKey,
    CellResult,
    judge_family,
    significance,
)
from shared.monitoring.columns import EncodedColumn, WindowColumns
from shared.monitoring.exceptions import MonitoringError
from shared.monitoring.statistics import (
    ECE_BINS,
    AucSummary,
    Comparison,
    MeanSummary,
    ProportionSummary,
    bin_counts,
    chi2_homogeneity,
    compare_auc,
    compare_means,
    compare_proportions,
    ece_estimate,
    ece_estimate_by_bin_moments,
    expected_auc,
    expected_calibration_error,
    expected_confusion,
    ks_2samp,
    psi,
    required_n_auc,
    required_n_mean_difference,
    required_n_psi,
    required_n_two_proportions,
    spiegelhalter_z,
    summarize_auc,
    summarize_brier,
    summarize_weighted_auc,
    threshold_rates,
    uniform,
    weighted_auc,
    weighted_brier,
    weighted_mean,
    weighted_proportion,
    weighted_threshold_rates,
)
from shared.monitoring.types import (
    CALIBRATION,
    DATA_DRIFT,
    DATA_QUALITY,
    MODEL_QUALITY,
    OVERALL,
    PREDICTION_DRIFT,
    SEGMENT_DEGRADATION,
    Cell,
    CheckType,
    FeatureQuality,
    ModelSummary,
    MonitoringReport,
    MonitorWindow,
    PerformanceEstimate,
    ReliabilityBin,
    ReliabilityCurve,
    ServedModel,
    Violation,
    WindowSummary,
    finite_or_none,
)
from shared.monitoring.window import PredictionColumns
from shared.usecase.settings import MonitoringSettings, UseCase

MIN_KS_SAMPLE = 100
"""A numeric feature is tested with KS when the baseline's reference sample has at least this many values."""
ECE_RESAMPLES = 100
"""Bootstrap resamples of ECE's interval (each a pass of three ``bincount`` over the window's labels)."""
ECE_ROW_BOOTSTRAP_MAX = 20_000
"""Above this many labels, ECE's interval is drawn from each bin's moments (:func:`ece_estimate_by_bin_moments`,
cost independent of n) instead of resampling rows: at 300k labels x 4 populations x 3 windows the row bootstrap
alone took most of a run."""
MAX_SEGMENT_VALUES = 20
"""CBPE estimates at most this many values of a segment column (the most frequent) when there is no baseline."""
SCORE = "score"
METRIC_LABELS = {
    "auc": "AUC",
    "brier": "Brier score",
    "ece": "Calibration error (ECE)",
    "positive_rate": "Positive rate",
    "precision": "Precision",
    "recall": "Recall",
}
UP, DOWN, EITHER = 1, -1, 0
"""The direction in which a change is a degradation (the one-sided test looks that way)."""


@dataclass(frozen=True, kw_only=True)
class _Planned:
    """A cell before judgement: its evidence and where it belongs in the report."""

    evidence: CellEvidence
    check_type: CheckType
    model: ServedModel
    hours: float
    feature_name: str
    metric: str
    value: float | None
    baseline_n: int | None
    detail: str = ""


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


def run_monitor(
    usecase: UseCase,
    *,
    now: datetime,
    models: Sequence[ServedModel],
    windows: Sequence[MonitorWindow],
) -> MonitoringReport:
    """Every window against every served model's baseline, judged as one family (see the module docstring)."""
    settings = usecase.monitoring
    several = sum(model.baseline is not None for model in models) > 1
    planned: list[_Planned] = []
    read = [_Read(window) for window in windows]
    for window in read:
        for model in models:
            if model.baseline is None:
                continue
            rows = window.served.version_rows(model.model_version)
            planned.extend(_data_quality_cells(settings, model, model.baseline, window, rows))
            planned.extend(_drift_cells(settings, model, model.baseline, window, rows))
            if window.labeled is not None:
                labeled = window.labeled.version_rows(model.model_version)
                planned.extend(_performance_cells(settings, model, model.baseline, window, window.labeled, labeled))
    results = judge_family([p.evidence for p in planned], fdr=settings.fdr)
    cells = [_cell(p, r, several=several) for p, r in zip(planned, results, strict=True)]
    quality = [q for window in read for q in _feature_quality(usecase, models, window)]
    return MonitoringReport(
        usecase=usecase.name,
        generated_at=now.isoformat(),
        fdr=settings.fdr,
        power=settings.power,
        models=[_model_summary(model) for model in models],
        windows=[_window_summary(window, now) for window in read],
        violations=[_violation(cell) for cell in cells if cell.verdict == ALERT],
        cells=cells,
        data_quality=quality,
        estimates=[e for window in read for model in models for e in _estimates(usecase, model, window)],
        reliability=[c for window in read for model in models for c in _reliability(model, window)],
        notes=_notes(models, windows, quality),
    )


class _Read:
    """A window with its columns read once (:class:`WindowColumns`): its traffic's, and its labels' if any."""

    def __init__(self, window: MonitorWindow) -> None:
        self.window = window
        self.name = window.name
        self.hours = window.hours
        self.served = WindowColumns(window.predictions)
        self.labeled = WindowColumns(window.labels.predictions) if window.labels is not None else None
        self.positive = np.asarray(window.labels.positive, dtype=bool) if window.labels is not None else None
        self.weight = np.asarray(window.labels.weight, dtype=np.float64) if window.labels is not None else None
        """Each label's weight, 1 / its inclusion probability (reviewed labels); all 1 otherwise."""


def _one_sided(p_value: float, effect: float, direction: int) -> float:
    if direction == EITHER or math.isnan(effect):
        return p_value
    return p_value / 2 if effect * direction > 0 else 1.0 - p_value / 2


def _clamp(rate: float, floor: float) -> float:
    return min(max(rate, floor), 1.0 - floor)


def _required_proportion_n(p0: float, effect: float, *, settings: MonitoringSettings, baseline_n: int | None) -> float:
    """The window n for a two-proportion test to see ``effect`` from ``p0`` (p0 kept off 0 and 1)."""
    base = _clamp(p0, 1.0 / (2 * baseline_n) if baseline_n else 1e-3)
    if not 0 < base + effect < 1:
        effect = -effect
    try:
        return required_n_two_proportions(base, effect, alpha=settings.fdr, power=settings.power, baseline_n=baseline_n)
    except ValueError:
        return math.inf


def _evidence(
    *,
    window: str,
    segment: str,
    subject: str,
    statistic: str,
    n: int,
    comparison: Comparison | None,
    direction: int,
    required: float,
    floor: int,
    min_effect: float,
) -> CellEvidence:
    key = CellKey(window=window, segment=segment, subject=subject, statistic=statistic)
    needed = max(required, float(floor))
    if comparison is None:  # the statistic cannot be computed on this window (e.g. one class): no verdict
        return CellEvidence(key=key, n=n, effect=math.nan, p_value=1.0, required_n=max(needed, n + 1.0))
    return CellEvidence(
        key=key,
        n=n,
        effect=comparison.effect,
        p_value=_one_sided(comparison.p_value, comparison.effect, direction),
        interval=(comparison.window.low, comparison.window.high),
        baseline=comparison.baseline,
        required_n=needed,
        min_effect=min_effect,
    )


# ---------------------------------------------------------------------------------------------------------------
# Data quality and drift
# ---------------------------------------------------------------------------------------------------------------


def _data_quality_cells(
    settings: MonitoringSettings, model: ServedModel, baseline: Baseline, window: _Read, rows: np.ndarray
) -> Iterator[_Planned]:
    n = int(rows.sum())
    for name, profile in baseline.features.items():
        nulls = window.served.nulls(name)[rows]
        held = ProportionSummary(successes=profile.null_count, n=profile.count)
        seen = ProportionSummary(successes=int(nulls.sum()), n=n)
        comparison = compare_proportions(held, seen) if n and profile.count else None
        required = _required_proportion_n(
            held.rate if profile.count else 0.0, settings.null_rate_alert, settings=settings, baseline_n=profile.count
        )
        yield _Planned(
            evidence=_evidence(
                window=window.name,
                segment=OVERALL,
                subject=name,
                statistic="pooled z",
                n=n,
                comparison=comparison,
                direction=UP,
                required=required,
                floor=settings.min_samples,
                min_effect=settings.null_rate_alert,
            ),
            check_type=DATA_QUALITY,
            model=model,
            hours=window.hours,
            feature_name=name,
            metric="null_rate",
            value=seen.rate if n else None,
            baseline_n=profile.count,
        )
        if isinstance(profile, CategoricalProfile):
            yield _unseen_cell(settings, model, window, name, profile, window.served.encoded(name).counts(rows))


def _unseen_cell(  # noqa: PLR0917
    settings: MonitoringSettings,
    model: ServedModel,
    window: _Read,
    name: str,
    profile: CategoricalProfile,
    counts: np.ndarray,
) -> _Planned:
    """``counts``: the version's rows per distinct value of the column (:class:`EncodedColumn`)."""
    present, unseen = _unseen_counts(window.served.encoded(name), counts, profile.counts)
    held_n = profile.count - profile.null_count
    seen = ProportionSummary(successes=sum(unseen.values()), n=present)
    comparison = compare_proportions(ProportionSummary(successes=0, n=held_n), seen) if present and held_n else None
    new = sorted(unseen)
    return _Planned(
        evidence=_evidence(
            window=window.name,
            segment=OVERALL,
            subject=name,
            statistic="pooled z",
            n=present,
            comparison=comparison,
            direction=UP,
            required=_required_proportion_n(0.0, settings.null_rate_alert, settings=settings, baseline_n=held_n),
            floor=settings.min_samples,
            min_effect=settings.null_rate_alert,
        ),
        check_type=DATA_QUALITY,
        model=model,
        hours=window.hours,
        feature_name=name,
        metric="unseen_share",
        value=seen.rate if present else None,
        baseline_n=held_n,
        detail=", ".join(repr(v) for v in new[:5]) + (f" and {len(new) - 5} more" if len(new) > 5 else ""),
    )


def _unseen_counts(encoded: EncodedColumn, counts: np.ndarray, known: Mapping[str, int]) -> tuple[int, dict[str, int]]:
    """The non-null rows among ``counts`` (rows per distinct value), and the rows per text never in ``known``."""
    present = 0
    unseen: dict[str, int] = {}
    for text, null, count in zip(encoded.text.tolist(), encoded.null.tolist(), counts.tolist(), strict=True):
        if null or not count:
            continue
        present += count
        if text not in known:
            unseen[text] = unseen.get(text, 0) + count
    return present, unseen


def _drift_cells(
    settings: MonitoringSettings, model: ServedModel, baseline: Baseline, window: _Read, rows: np.ndarray
) -> Iterator[_Planned]:
    for name, profile in baseline.features.items():
        if isinstance(profile, NumericProfile):
            values = window.served.column(name)[rows][~window.served.nulls(name)[rows]]
            yield _drift_cell(settings, model, window, name, profile, values, DATA_DRIFT)
        else:
            counts = window.served.encoded(name).counts_by_text(rows)
            yield _drift_cell(settings, model, window, name, profile, counts, DATA_DRIFT)
    score = np.asarray(window.window.predictions.score, dtype=np.float64)[rows]
    yield _drift_cell(settings, model, window, SCORE, baseline.score, score[~np.isnan(score)], PREDICTION_DRIFT)


def _drift_cell(  # noqa: PLR0917
    settings: MonitoringSettings,
    model: ServedModel,
    window: _Read,
    name: str,
    profile: NumericProfile | CategoricalProfile,
    values: np.ndarray | Mapping[str, int],
    check_type: CheckType,
) -> _Planned:
    """``values``: a numeric feature's non-null values, or a categorical one's non-null rows per category."""
    numbers = np.zeros(0)
    if isinstance(profile, NumericProfile):
        reference = np.asarray(profile.counts, dtype=np.float64)
        numbers = np.sort(np.asarray(values).astype(np.float64))  # sorted once: the bin counts and KS read it
        current = bin_counts(numbers, profile.edges)
        statistic = "ks" if len(profile.sample) >= MIN_KS_SAMPLE else "chi2"
    else:
        categories = list(profile.counts)
        reference = np.asarray([profile.counts[c] for c in categories], dtype=np.float64)
        of = values if isinstance(values, Mapping) else {}
        current = np.asarray([of.get(c, 0) for c in categories], dtype=np.float64)
        statistic = "chi2"
    n = int(current.sum())
    bins = int(reference.size)
    required = math.inf
    if bins >= 2:
        required = required_n_psi(
            settings.psi_alert, bins, alpha=settings.fdr, power=settings.power, reference_n=int(reference.sum())
        )
    key = CellKey(window=window.name, segment=OVERALL, subject=name, statistic=statistic)
    if n == 0 or reference.sum() == 0 or bins < 2:
        evidence = CellEvidence(key=key, n=n, effect=math.nan, p_value=1.0, required_n=max(required, n + 1.0))
        drift = None
    else:
        drift = psi(reference, current)
        if statistic == "ks":
            _, p_value = ks_2samp(np.asarray(profile.sample, dtype=np.float64), numbers)  # type: ignore[union-attr]
        else:
            _, _, p_value = chi2_homogeneity(reference, current)
        evidence = CellEvidence(
            key=key,
            n=n,
            effect=drift,
            p_value=p_value,
            baseline=0.0,
            required_n=max(required, float(settings.min_samples)),
            min_effect=settings.psi_alert,
        )
    return _Planned(
        evidence=evidence,
        check_type=check_type,
        model=model,
        hours=window.hours,
        feature_name=name,
        metric="psi",
        value=drift,
        baseline_n=int(reference.sum()),
    )


# ---------------------------------------------------------------------------------------------------------------
# Performance with labels
# ---------------------------------------------------------------------------------------------------------------


def _populations(
    baseline: Baseline, labeled: WindowColumns, rows: np.ndarray
) -> Iterator[tuple[str, np.ndarray, MetricSummary]]:
    yield OVERALL, rows, baseline.overall
    for column, values in baseline.segments.items():
        for value, summary in values.items():
            yield f"{column}={value}", rows & labeled.segment_rows(column, value), summary


def _performance_cells(  # noqa: PLR0917
    settings: MonitoringSettings,
    model: ServedModel,
    baseline: Baseline,
    window: _Read,
    labeled: WindowColumns,
    rows: np.ndarray,
) -> Iterator[_Planned]:
    scores = np.asarray(labeled.data.score, dtype=np.float64)
    positive = window.positive if window.positive is not None else np.zeros(labeled.rows, dtype=bool)
    threshold = model.deployed_threshold if model.deployed_threshold is not None else baseline.threshold
    weight = window.weight if window.weight is not None else np.ones(labeled.rows, dtype=np.float64)
    for segment, inside, summary in _populations(baseline, labeled, rows):
        s, y, w = scores[inside], positive[inside], weight[inside]
        tests = _metric_tests(settings, summary, s, y, threshold, None if uniform(w) else w)
        for metric, n, comparison, direction, required, min_effect in tests:
            check_type = (
                CALIBRATION if metric == "ece" else MODEL_QUALITY if segment == OVERALL else SEGMENT_DEGRADATION
            )
            statistic = _STATISTICS[metric]
            yield _Planned(
                evidence=_evidence(
                    window=window.name,
                    segment=segment,
                    subject=metric,
                    statistic=statistic,
                    n=n,
                    comparison=comparison,
                    direction=direction,
                    required=required,
                    floor=settings.min_labels,
                    min_effect=min_effect,
                ),
                check_type=check_type,
                model=model,
                hours=window.hours,
                feature_name=metric,
                metric=metric,
                value=comparison.window.value if comparison is not None else None,
                baseline_n=_baseline_n(metric, summary),
            )


_STATISTICS = {
    "auc": "delong z",
    "brier": "welch z",
    "ece": "spiegelhalter z",
    "positive_rate": "pooled z",
    "precision": "pooled z",
    "recall": "pooled z",
}


def _baseline_n(metric: str, summary: MetricSummary) -> int:
    if metric == "precision":
        return summary.predicted_positives
    if metric == "recall":
        return summary.positives
    return summary.n


def _attempt(compute: Callable[[], Comparison]) -> Comparison | None:
    try:
        return compute()
    except (MonitoringError, ValueError, ZeroDivisionError):
        return None


MetricTest = tuple[str, int, Comparison | None, int, float, float]


def _metric_tests(  # noqa: PLR0917
    settings: MonitoringSettings,
    summary: MetricSummary,
    s: np.ndarray,
    y: np.ndarray,
    threshold: float,
    weights: np.ndarray | None = None,
) -> Iterator[MetricTest]:
    """(metric, n, comparison, direction, required n, declared effect) of one population.

    ``weights`` (1 / inclusion probability of reviewed labels; None: all equal): AUC, Brier, positive rate,
    precision and recall are weighted estimates (Hájek) counted in Kish's effective rows; ECE stays unweighted."""
    n = int(s.size)
    alpha, power = settings.fdr, settings.power
    if summary.auc is not None and summary.auc_variance is not None:
        held = AucSummary(
            value=summary.auc,
            variance=summary.auc_variance,
            positives=summary.positives,
            negatives=summary.n - summary.positives,
        )
        try:
            required = required_n_auc(
                summary.auc,
                -settings.auc_drop_alert,
                alpha=alpha,
                power=power,
                prevalence=_clamp(summary.positive_rate, 0.01),
                baseline_variance=summary.auc_variance,
            )
        except ValueError:
            required = math.inf
        yield (
            "auc",
            n,
            _attempt(
                lambda: compare_auc(
                    held, summarize_auc(s, y) if weights is None else summarize_weighted_auc(s, y, weights)
                )
            ),
            DOWN,
            required,
            settings.auc_drop_alert,
        )
    brier = MeanSummary(mean=summary.brier, variance=summary.brier_variance, n=summary.n)
    required = required_n_mean_difference(
        max(summary.brier_variance, 1e-9),
        settings.brier_increase_alert,
        alpha=alpha,
        power=power,
        baseline_variance=summary.brier_variance,
        baseline_n=summary.n,
    )
    comparison = _attempt(
        lambda: compare_means(brier, summarize_brier(s, y) if weights is None else weighted_brier(s, y, weights))
    )
    yield "brier", n, comparison, UP, required, settings.brier_increase_alert
    yield (
        "ece",
        n,
        _attempt(lambda: _ece_comparison(summary, s, y)),
        UP,
        _required_proportion_n(summary.positive_rate, settings.ece_alert, settings=settings, baseline_n=None),
        settings.ece_alert,
    )
    prevalence = ProportionSummary(successes=summary.positives, n=summary.n)
    seen = ProportionSummary(successes=int(y.sum()), n=n) if weights is None else weighted_proportion(y, weights)
    yield (
        "positive_rate",
        n,
        _attempt(lambda: compare_proportions(prevalence, seen)),
        EITHER,
        _required_proportion_n(prevalence.rate, settings.rate_change_alert, settings=settings, baseline_n=summary.n),
        settings.rate_change_alert,
    )
    if not n:
        rates = None
    elif weights is None:
        rates = threshold_rates(s, y, threshold)
    else:
        rates = weighted_threshold_rates(s, y, threshold, weights)
    for metric, held_rate, window_rate in (
        (
            "precision",
            ProportionSummary(successes=summary.true_positives, n=summary.predicted_positives),
            rates.precision if rates is not None else ProportionSummary(successes=0, n=0),
        ),
        (
            "recall",
            ProportionSummary(successes=summary.true_positives, n=summary.positives),
            rates.recall if rates is not None else ProportionSummary(successes=0, n=0),
        ),
    ):
        if held_rate.n == 0:
            continue
        required = _required_proportion_n(
            held_rate.rate, -settings.rate_change_alert, settings=settings, baseline_n=held_rate.n
        )
        comparison = _attempt(lambda held=held_rate, now=window_rate: compare_proportions(held, now))  # type: ignore[misc]
        yield metric, window_rate.n, comparison, DOWN, required, settings.rate_change_alert


def _ece_comparison(summary: MetricSummary, s: np.ndarray, y: np.ndarray) -> Comparison:
    """The window's ECE (bootstrap interval) against the holdout's; the p-value is Spiegelhalter's on the window."""
    if s.size > ECE_ROW_BOOTSTRAP_MAX:
        estimate = ece_estimate_by_bin_moments(s, y, resamples=ECE_RESAMPLES)
    else:
        estimate = ece_estimate(s, y, resamples=ECE_RESAMPLES)
    z, p_value = spiegelhalter_z(s, y)
    return Comparison(baseline=summary.ece, effect=estimate.value - summary.ece, window=estimate, z=z, p_value=p_value)


# ---------------------------------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.3g}"


def _percent(value: float) -> str:
    return f"{100 * value:.3g}%"


def describe(planned: _Planned, result: CellResult, *, several: bool) -> str:
    """The sentence of a cell, e.g. ``AUC on contract=Month-to-month fell from 0.755 (training holdout, n=612) to
    0.61 (n=812) over the last 6 h; q = 0.0004``."""
    over = f"over the {planned.evidence.key.window}"
    model = f" (model {planned.model.model_version}, {planned.model.variant})" if several else ""
    subject = _subject(planned)
    if result.verdict == INSUFFICIENT_EVIDENCE:
        needed = (
            "more rows than can be seen" if math.isinf(result.required_n) else f"needs n ≈ {int(result.required_n):,}"
        )
        return f"{subject} {over}: insufficient evidence (n={result.n:,}; {needed}){model}"
    q = significance("q", result.q_value)
    if planned.metric == "psi":
        test = f"{planned.evidence.key.statistic} {significance('p', result.p_value)}"
        verb = "drifted from" if result.verdict == ALERT else "stayed close to"
        return (
            f"{subject} {verb} its training distribution: PSI {_number(result.effect)} "
            f"(alert at {_number(planned.evidence.min_effect or 0.0)}; n={result.n:,}) {over} ({test}); {q}{model}"
        )
    value = planned.value if planned.value is not None else math.nan
    held = result.baseline if result.baseline is not None else math.nan
    show = _percent if planned.metric in {"null_rate", "unseen_share"} else _number
    if planned.metric == "unseen_share":
        categories = f" ({planned.detail})" if planned.detail else ""
        return (
            f"{subject} carries categories never seen in training{categories} on {show(value)} of rows "
            f"(n={result.n:,}) {over}; {q}{model}"
        )
    if value == held:
        return (
            f"{subject} stayed at {show(value)} (training holdout, n={planned.baseline_n:,}; n={result.n:,}) "
            f"{over}; {q}{model}"
        )
    verb = "rose" if value > held else "fell"
    return (
        f"{subject} {verb} from {show(held)} (training holdout, n={planned.baseline_n:,}) to {show(value)} "
        f"(n={result.n:,}) {over}; {q}{model}"
    )


def _subject(planned: _Planned) -> str:
    segment = planned.evidence.key.segment
    if planned.metric == "null_rate":
        return f"Null rate of {planned.feature_name}"
    if planned.metric == "unseen_share":
        return planned.feature_name
    if planned.metric == "psi":
        return "The score distribution" if planned.feature_name == SCORE else planned.feature_name
    label = METRIC_LABELS.get(planned.metric, planned.metric)
    return label if segment == OVERALL else f"{label} on {segment}"


def _cell(planned: _Planned, result: CellResult, *, several: bool) -> Cell:
    interval = result.interval
    return Cell(
        check_type=planned.check_type,
        model_version=planned.model.model_version,
        window=result.key.window,
        window_hours=planned.hours,
        segment=result.key.segment,
        feature_name=planned.feature_name,
        metric=planned.metric,
        statistic=result.key.statistic,
        n=result.n,
        value=finite_or_none(planned.value),
        baseline=finite_or_none(result.baseline),
        baseline_n=planned.baseline_n,
        effect=finite_or_none(result.effect),
        interval=(interval[0], interval[1]) if interval is not None else None,
        p_value=finite_or_none(result.p_value) if result.verdict != INSUFFICIENT_EVIDENCE else None,
        q_value=finite_or_none(result.q_value),
        verdict=result.verdict,
        required_n=finite_or_none(result.required_n),
        min_effect=planned.evidence.min_effect,
        description=describe(planned, result, several=several),
    )


def _violation(cell: Cell) -> Violation:
    return Violation(
        feature_name=cell.feature_name,
        constraint_check_type=cell.check_type,
        description=cell.description,
        model_version=cell.model_version,
        segment=cell.segment,
        window=cell.window,
        metric=cell.metric,
        n=cell.n,
        effect=cell.effect,
        interval=cell.interval,
        p_value=cell.p_value,
        q_value=cell.q_value,
    )


# ---------------------------------------------------------------------------------------------------------------
# What helps read the cells: summaries, data quality, CBPE, reliability
# ---------------------------------------------------------------------------------------------------------------


def _model_summary(model: ServedModel) -> ModelSummary:
    return ModelSummary(
        model_version=model.model_version,
        variant=model.variant,
        has_baseline=model.baseline is not None,
        baseline_rows=model.baseline.rows if model.baseline is not None else None,
        note="" if model.baseline is not None else _no_baseline(model),
    )


def _no_baseline(model: ServedModel) -> str:
    why = model.reason or "its package was registered before baselines existed"
    return (
        f"Model version {model.model_version} ({model.variant}) has no baseline ({why}): "
        "data quality only, no drift or performance tests."
    )


def _window_summary(read: _Read, now: datetime) -> WindowSummary:
    window = read.window
    return WindowSummary(
        window=window.name,
        hours=window.hours,
        start=(now - timedelta(hours=window.hours)).isoformat(),
        end=now.isoformat(),
        predictions=read.served.version_counts(),
        labels=read.labeled.version_counts() if read.labeled is not None else {},
        labels_weighted=_weighted_version_counts(read),
        refusals=dict(window.refusals),
        joined={k: v for k, v in window.join.counts().items() if v},
    )


def _weighted_version_counts(read: _Read) -> dict[str, float]:
    """Σ of the labels' weights per model version (:attr:`WindowSummary.labels_weighted`)."""
    if read.labeled is None or read.weight is None:
        return {}
    return {
        version: round(float(read.weight[read.labeled.version_rows(version)].sum()), 6)
        for version in read.labeled.version_counts()
    }


def _known_categories(usecase: UseCase, models: Sequence[ServedModel], name: str) -> set[str] | None:
    known: set[str] = set()
    for model in models:
        profile = model.baseline.features.get(name) if model.baseline is not None else None
        if isinstance(profile, CategoricalProfile):
            known.update(profile.counts)
    if known:
        return known
    column = next((c for c in usecase.contract.columns if c.name == name), None)
    return {str(v) for v in column.allowed} if column is not None and column.allowed is not None else None


def _feature_names(models: Sequence[ServedModel], data: PredictionColumns) -> list[str]:
    names = [n for model in models if model.baseline is not None for n in model.baseline.features]
    names += list(data.features)
    return list(dict.fromkeys(names))


def _feature_quality(usecase: UseCase, models: Sequence[ServedModel], window: _Read) -> Iterator[FeatureQuality]:
    columns = window.served
    served = np.asarray(columns.data.served, dtype=bool)  # a shadow line repeats a served line's features
    n = int(served.sum())
    for name in _feature_names(models, columns.data):
        nulls = int(columns.nulls(name)[served].sum())
        known = _known_categories(usecase, models, name)
        unseen: list[str] = []
        unseen_count = 0
        if known is not None and columns.column(name).dtype.kind not in "fciub":
            encoded = columns.encoded(name)
            _, outside = _unseen_counts(encoded, encoded.counts(served), dict.fromkeys(known, 0))
            unseen_count = sum(outside.values())
            unseen = sorted(outside)
        yield FeatureQuality(
            window=window.name,
            feature_name=name,
            n=n,
            null_rate=nulls / n if n else 0.0,
            unseen_categories=unseen,
            unseen_count=unseen_count,
        )


def _optional(compute: Callable[[], float]) -> float | None:
    try:
        return finite_or_none(compute())
    except (MonitoringError, ValueError, ZeroDivisionError):
        return None


def _estimate_populations(
    usecase: UseCase, model: ServedModel, columns: WindowColumns, rows: np.ndarray
) -> Iterator[tuple[str, str | None, str | None]]:
    yield OVERALL, None, None
    for column in usecase.contract.segments:
        if model.baseline is not None and column in model.baseline.segments:
            values = list(model.baseline.segments[column])
        else:
            encoded = columns.encoded(column)
            present: dict[str, int] = {}
            for key, null, count in zip(
                encoded.segment.tolist(), encoded.null.tolist(), encoded.counts(rows).tolist(), strict=True
            ):
                if count and not null:
                    present[key] = present.get(key, 0) + count
            found = np.asarray(sorted(present), dtype=str)
            counts = np.asarray([present[key] for key in found.tolist()], dtype=np.int64)
            values = [str(v) for v in found[np.argsort(-counts)][:MAX_SEGMENT_VALUES]]
        for value in values:
            yield f"{column}={value}", column, value


def _estimates(usecase: UseCase, model: ServedModel, window: _Read) -> Iterator[PerformanceEstimate]:
    data = window.served.data
    rows = window.served.version_rows(model.model_version)
    threshold = model.deployed_threshold
    labels = window.labeled
    labeled = labels.version_rows(model.model_version) if labels is not None else None
    for segment, column, value in _estimate_populations(usecase, model, window.served, rows):
        inside = rows if column is None or value is None else rows & window.served.segment_rows(column, value)
        scores = np.asarray(data.score, dtype=np.float64)[inside]
        scores = scores[~np.isnan(scores)]
        if scores.size < 2:
            continue
        confusion = expected_confusion(scores, threshold) if threshold is not None else None
        realized: dict[str, float | None] = {}
        labeled_n = 0
        if labels is not None and labeled is not None and window.positive is not None:
            chosen = labeled
            if column is not None and value is not None:
                chosen = labeled & labels.segment_rows(column, value)
            s = np.asarray(labels.data.score, dtype=np.float64)[chosen]
            y = window.positive[chosen]
            w = window.weight[chosen] if window.weight is not None else np.ones(s.size)
            labeled_n = int(s.size)
            if labeled_n:
                realized = _realized(s, y, w, threshold)
        yield PerformanceEstimate(
            model_version=model.model_version,
            window=window.name,
            segment=segment,
            n=int(scores.size),
            expected_auc=_optional(lambda scores=scores: expected_auc(scores)),  # type: ignore[misc]
            expected_precision=finite_or_none(confusion.precision) if confusion is not None else None,
            expected_recall=finite_or_none(confusion.recall) if confusion is not None else None,
            expected_positive_rate=float(scores.mean()),
            labeled_n=labeled_n,
            realized_auc=realized.get("auc"),
            realized_precision=realized.get("precision"),
            realized_recall=realized.get("recall"),
            realized_positive_rate=realized.get("positive_rate"),
        )


def _realized(s: np.ndarray, y: np.ndarray, w: np.ndarray, threshold: float | None) -> dict[str, float | None]:
    """The labelled rows' AUC, precision, recall and positive rate: weighted (Hájek) when weights differ."""
    if uniform(w):
        rates = threshold_rates(s, y, threshold) if threshold is not None else None
        auc_value = _optional(lambda: summarize_auc(s, y).value)
        positive = float(y.mean())
    else:
        rates = weighted_threshold_rates(s, y, threshold, w) if threshold is not None else None
        auc_value = _optional(lambda: weighted_auc(s, y, w))
        positive = weighted_mean(y, w)
    return {
        "auc": auc_value,
        "precision": finite_or_none(rates.precision.rate) if rates is not None else None,
        "recall": finite_or_none(rates.recall.rate) if rates is not None else None,
        "positive_rate": positive,
    }


def _reliability(model: ServedModel, window: _Read) -> Iterator[ReliabilityCurve]:
    if window.labeled is None or window.positive is None:
        return
    rows = window.labeled.version_rows(model.model_version)
    s = np.asarray(window.labeled.data.score, dtype=np.float64)[rows]
    y = window.positive[rows]
    keep = ~np.isnan(s)
    s, y = s[keep], y[keep]
    if s.size == 0:
        return
    index = np.minimum((np.clip(s, 0.0, 1.0) * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    counts = np.bincount(index, minlength=ECE_BINS)
    score_sums = np.bincount(index, weights=s, minlength=ECE_BINS)
    positive_sums = np.bincount(index, weights=y.astype(np.float64), minlength=ECE_BINS)
    bins = [
        ReliabilityBin(
            low=b / ECE_BINS,
            high=(b + 1) / ECE_BINS,
            n=int(counts[b]),
            mean_score=float(score_sums[b] / counts[b]),
            observed_rate=float(positive_sums[b] / counts[b]),
        )
        for b in range(ECE_BINS)
        if counts[b]
    ]
    yield ReliabilityCurve(
        model_version=model.model_version,
        window=window.name,
        segment=OVERALL,
        n=int(s.size),
        ece=expected_calibration_error(s, y),
        bins=bins,
    )


def _notes(
    models: Sequence[ServedModel], windows: Sequence[MonitorWindow], quality: Sequence[FeatureQuality]
) -> list[str]:
    notes = [_no_baseline(model) for model in models if model.baseline is None]
    notes += [
        f"No traffic over the {window.name}: every cell of that window is insufficient evidence."
        for window in windows
        if window.empty
    ]
    notes += [
        f"{q.feature_name} was null in all {q.n:,} served rows over the {q.window}."
        for q in quality
        if q.n and q.null_rate == 1.0
    ]
    return notes
