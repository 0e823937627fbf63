"""The monitor end to end on synthetic windows: which cells alert, what the report, the page and the EMF say.

A churn-like use case: three numeric features (``tenure``, ``monthly``, ``calls``; ``monthly`` is not a model
input) and two categorical ones (``contract``, the segment column, and ``payment``). The model is calibrated:
its score is the true probability. The baseline is profiled from a 5,000-row holdout exactly as the training
job's baseline is defined (:mod:`shared.monitoring.baseline`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from html import escape
from html.parser import HTMLParser
from typing import Any

import numpy as np

from shared.monitoring import telemetry
from shared.monitoring.baseline import Baseline, CategoricalProfile, MetricSummary, NumericProfile
from shared.monitoring.html import render_report
from shared.monitoring.monitor import run_monitor
from shared.monitoring.statistics import (
    bin_counts,
    expected_calibration_error,
    quantile_edges,
    summarize_auc,
    summarize_brier,
)
from shared.monitoring.types import (
    DATA_DRIFT,
    DATA_QUALITY,
    SEGMENT_DEGRADATION,
    MonitoringReport,
    MonitorWindow,
    ServedModel,
)
from shared.monitoring.window import JoinedColumns, PredictionColumns
from shared.usecase.settings import UseCase

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
THRESHOLD = 0.5
CONTRACTS = ("Month-to-month", "One year", "Two year")
PAYMENTS = ("card", "bank", "check")
NUMERIC = ("tenure", "monthly", "calls")
SEGMENT = "contract"
DEGRADED = "contract=Month-to-month"


def usecase() -> UseCase:
    columns: list[dict[str, Any]] = [
        {"name": "customer", "type": "int"},
        {"name": "churn", "type": "category", "allowed": ["No", "Yes"]},
        {"name": "tenure", "type": "float", "nullable": True},
        {"name": "monthly", "type": "float", "nullable": True},
        {"name": "calls", "type": "float", "nullable": True},
        {"name": "contract", "type": "category", "allowed": list(CONTRACTS), "nullable": True},
        {"name": "payment", "type": "string", "nullable": True},
    ]
    contract = {
        "version": "1.0.0",
        "entity_id": "customer",
        "label": "churn",
        "positive_class": "Yes",
        "segments": [SEGMENT],
        "columns": columns,
    }
    return UseCase.model_validate({"name": "churn", "contract": contract})


def draw(
    rng: np.random.Generator,
    rows: int,
    *,
    drift_in: str | None = None,
    degrade: str | None = None,
    unseen_payment: float = 0.0,
    null_feature: str | None = None,
) -> dict[str, np.ndarray]:
    """Rows of the use case; ``drift_in`` raises ``monthly`` by 2 sd inside that contract only."""
    contract = rng.choice(np.array(CONTRACTS, dtype=object), size=rows, p=[0.5, 0.3, 0.2])
    payment = rng.choice(np.array(PAYMENTS, dtype=object), size=rows, p=[0.5, 0.3, 0.2])
    if unseen_payment:
        payment[rng.uniform(size=rows) < unseen_payment] = "crypto"
    tenure = rng.normal(30.0, 10.0, size=rows)
    monthly = rng.normal(70.0, 20.0, size=rows)
    calls = rng.poisson(2.0, size=rows).astype(np.float64)
    if drift_in is not None:
        monthly[contract == drift_in] += 40.0
    logit = -0.2 - 0.08 * (tenure - 30.0) + 0.5 * (calls - 2.0) + 0.8 * (contract == "Month-to-month") - 0.4
    probability = 1.0 / (1.0 + np.exp(-logit))
    positive = rng.uniform(size=rows) < probability
    score = probability.copy()
    if degrade is not None:
        inside = contract == degrade.split("=", 1)[1]
        noisy = 0.3 * logit[inside] + rng.normal(0.0, 1.0, size=int(inside.sum()))
        score[inside] = 1.0 / (1.0 + np.exp(-noisy))
    data = {"tenure": tenure, "monthly": monthly, "calls": calls, "contract": contract, "payment": payment}
    if null_feature is not None:
        data[null_feature] = np.full(rows, np.nan)
    return {**data, "score": score, "positive": positive}


def metric_summary(score: np.ndarray, positive: np.ndarray) -> MetricSummary:
    auc = summarize_auc(score, positive)
    brier = summarize_brier(score, positive)
    predicted = score >= THRESHOLD
    return MetricSummary(
        n=int(score.size),
        positives=int(positive.sum()),
        auc=auc.value,
        auc_variance=auc.variance,
        brier=brier.mean,
        brier_variance=brier.variance,
        ece=expected_calibration_error(score, positive),
        positive_rate=float(positive.mean()),
        mean_score=float(score.mean()),
        threshold=THRESHOLD,
        true_positives=int((predicted & positive).sum()),
        false_positives=int((predicted & ~positive).sum()),
        false_negatives=int((~predicted & positive).sum()),
        true_negatives=int((~predicted & ~positive).sum()),
    )


def numeric_profile(values: np.ndarray, rng: np.random.Generator) -> NumericProfile:
    finite = values[~np.isnan(values)]
    edges = quantile_edges(finite)
    return NumericProfile(
        count=int(values.size),
        null_count=int(np.isnan(values).sum()),
        edges=edges.tolist(),
        counts=[int(c) for c in bin_counts(finite, edges)],
        sample=rng.choice(finite, size=min(finite.size, 2000), replace=False).tolist(),
    )


def profile_baseline(holdout: dict[str, np.ndarray], rng: np.random.Generator) -> Baseline:
    features: dict[str, NumericProfile | CategoricalProfile] = {n: numeric_profile(holdout[n], rng) for n in NUMERIC}
    for name in ("contract", "payment"):
        found, counts = np.unique(holdout[name].astype(str), return_counts=True)
        features[name] = CategoricalProfile(
            count=int(holdout[name].size), null_count=0, counts=dict(zip(found.tolist(), counts.tolist(), strict=True))
        )
    inside = {value: holdout[SEGMENT] == value for value in CONTRACTS}
    segments = {SEGMENT: {v: metric_summary(holdout["score"][i], holdout["positive"][i]) for v, i in inside.items()}}
    return Baseline(
        usecase="churn",
        contract_version="1.0.0",
        threshold=THRESHOLD,
        rows=int(holdout["score"].size),
        features=features,
        score=numeric_profile(holdout["score"], rng),
        overall=metric_summary(holdout["score"], holdout["positive"]),
        segments=segments,
    )


def window(hours: float, rows: dict[str, np.ndarray], *, version: str = "7", labeled: bool = True) -> MonitorWindow:
    n = rows["score"].size
    versions = np.full(n, version, dtype=object)
    variants = np.full(n, "champion", dtype=object)
    predictions = PredictionColumns(
        features={name: rows[name] for name in (*NUMERIC, "contract", "payment")},
        score=rows["score"],
        model_version=versions,
        variant=variants,
    )
    labels = JoinedColumns(
        predictions=PredictionColumns(
            features={SEGMENT: rows[SEGMENT]}, score=rows["score"], model_version=versions, variant=variants
        ),
        positive=rows["positive"],
    )
    return MonitorWindow(hours=hours, predictions=predictions, labels=labels if labeled else None)


@lru_cache(maxsize=1)
def baseline() -> Baseline:
    rng = np.random.default_rng(1)
    return profile_baseline(draw(rng, 5000), rng)


def monitor(seed: int, *, rows: int = 3000, model: ServedModel | None = None, **shift: Any) -> MonitoringReport:
    rng = np.random.default_rng(seed)
    windows = [window(1.0, draw(rng, rows // 6, **shift)), window(6.0, draw(rng, rows, **shift))]
    served = model or ServedModel(model_version="7", variant="champion", baseline=baseline())
    return run_monitor(usecase(), now=NOW, models=[served], windows=windows)


@lru_cache(maxsize=1)
def drifted_and_degraded() -> MonitoringReport:
    return monitor(11, drift_in="Two year", degrade=DEGRADED)


def violations_where(report: MonitoringReport, keep: Callable[[Any], bool]) -> set[tuple[str, str]]:
    return {(v.feature_name, v.segment) for v in report.violations if keep(v)}


# ---------------------------------------------------------------------------------------------------------------


def test_a_feature_drifting_in_one_segment_and_labels_degrading_in_another_are_named_and_nothing_else() -> None:
    # Given monthly charges shifted by 2 sd for two-year contracts, and month-to-month scores made noisy
    report = drifted_and_degraded()
    # Then the only drifted feature is monthly (and the score, whose distribution the noise moved)
    drifted = {v.feature_name for v in report.violations if v.constraint_check_type == DATA_DRIFT}
    assert drifted == {"monthly"}
    # And the only degraded segment is month-to-month, its AUC among the alerts
    segments = {v.segment for v in report.violations if v.constraint_check_type == SEGMENT_DEGRADATION}
    assert segments == {DEGRADED}
    assert (("auc", DEGRADED)) in violations_where(report, lambda v: v.window == "last 6 h")
    # And no violation names another segment value, nor a data-quality problem
    assert not [v for v in report.violations if v.segment not in {"all", DEGRADED}]
    assert not [v for v in report.violations if v.constraint_check_type == DATA_QUALITY]
    # And every violation carries its evidence
    assert all(v.q_value is not None and v.q_value <= report.fdr and v.n > 0 for v in report.violations)


def test_the_alert_sentence_says_what_where_how_much_and_how_sure() -> None:
    report = drifted_and_degraded()
    auc = next(v for v in report.violations if v.metric == "auc" and v.segment == DEGRADED and v.window == "last 6 h")
    assert re.fullmatch(
        r"AUC on contract=Month-to-month fell from 0\.\d+ \(training holdout, n=[\d,]+\) "
        r"to 0\.\d+ \(n=[\d,]+\) over the last 6 h; q (= [0-9.e-]+|< 1e-16)",
        auc.description,
    ), auc.description
    assert auc.effect is not None
    assert auc.effect < -0.05
    assert auc.interval is not None
    assert auc.interval[0] < auc.interval[1]
    drift = next(v for v in report.violations if v.feature_name == "monthly" and v.window == "last 6 h")
    assert drift.description.startswith("monthly drifted from its training distribution: PSI ")
    # The JSON report round-trips and carries the violations
    document = json.loads(report.to_json())
    assert {"feature_name", "constraint_check_type", "description", "q_value"} <= set(document["violations"][0])
    assert MonitoringReport.model_validate_json(report.to_json()) == report


def test_windows_drawn_from_the_baseline_raise_no_alert() -> None:
    # Given windows from the holdout's own distribution, labels included
    report = monitor(21)
    # Then no cell alerts ...
    assert report.violations == []
    # ... while the 6 h window judges all 19 cells on every row: 7 data quality, 6 drift, 6 metrics (the smaller
    # segments need more labels than 3,000 rows give them)
    six_hours = [cell for cell in report.cells if cell.window == "last 6 h" and cell.segment == "all"]
    assert len(six_hours) == 19
    assert all(cell.verdict == "ok" for cell in six_hours)


def test_small_windows_say_insufficient_evidence_and_the_n_they_need() -> None:
    # Given windows of 30 and 60 rows, the scores of one segment badly degraded
    report = monitor(31, rows=60, degrade=DEGRADED)
    # Then nothing is a verdict, no alert is raised, and each cell says the n it needs
    assert report.violations == []
    assert all(cell.verdict == "insufficient evidence" for cell in report.cells)
    assert all(cell.required_n is None or cell.required_n > cell.n for cell in report.cells)
    assert all("insufficient evidence" in cell.description for cell in report.cells)
    assert any("needs n ≈ 2" in cell.description or "needs n ≈ " in cell.description for cell in report.cells)


def test_a_model_version_without_a_baseline_is_monitored_for_data_quality_only() -> None:
    # Given a version registered before baselines
    served = ServedModel(model_version="7", variant="champion", baseline=None, reason="registered 2026-01-04")
    report = monitor(41, model=served, unseen_payment=0.2)
    # Then there are no tests, the report says why, and data quality is still described
    assert report.cells == []
    assert report.violations == []
    assert report.models[0].has_baseline is False
    assert any("no baseline (registered 2026-01-04): data quality only" in note for note in report.notes)
    tenure = next(q for q in report.data_quality if q.feature_name == "tenure" and q.window == "last 6 h")
    assert tenure.n == 3000
    assert tenure.null_rate == 0.0
    # And CBPE still estimates performance from the scores (no threshold: no precision/recall)
    assert report.estimates
    assert report.estimates[0].expected_auc is not None
    assert report.estimates[0].expected_precision is None


def test_a_feature_always_null_is_a_data_quality_alert_and_does_not_crash_drift() -> None:
    report = monitor(51, null_feature="tenure")
    alerts = violations_where(report, lambda v: v.constraint_check_type == DATA_QUALITY)
    assert ("tenure", "all") in alerts
    null_alert = next(v for v in report.violations if v.feature_name == "tenure" and v.window == "last 6 h")
    assert null_alert.description.startswith("Null rate of tenure rose from 0% (training holdout, n=5,000) to 100%")
    drift = [c for c in report.cells if c.metric == "psi" and c.feature_name == "tenure"]
    assert drift
    assert all(c.verdict == "insufficient evidence" for c in drift)
    assert any(note.startswith("tenure was null in all 3,000 served rows") for note in report.notes)


def test_an_unseen_category_is_counted_listed_and_alerted_when_its_share_matters() -> None:
    report = monitor(61, unseen_payment=0.15)
    unseen = next(v for v in report.violations if v.window == "last 6 h" and v.feature_name == "payment")
    assert unseen.constraint_check_type == DATA_QUALITY
    assert "'crypto'" in unseen.description
    assert unseen.effect is not None
    assert unseen.effect > 0.1
    quality = next(q for q in report.data_quality if q.feature_name == "payment" and q.window == "last 6 h")
    assert quality.unseen_categories == ["crypto"]
    assert quality.unseen_count > 300
    # And the known categories' drift is not what alerts
    assert ("payment", "all") not in violations_where(report, lambda v: v.constraint_check_type == DATA_DRIFT)


def test_cbpe_estimates_are_close_to_the_realized_values_on_calibrated_scores() -> None:
    report = monitor(71, rows=6000)
    overall = next(e for e in report.estimates if e.window == "last 6 h" and e.segment == "all")
    assert overall.labeled_n == 6000
    assert overall.expected_auc is not None
    assert overall.realized_auc is not None
    assert abs(overall.expected_auc - overall.realized_auc) < 0.02
    assert abs((overall.expected_positive_rate or 0) - (overall.realized_positive_rate or 0)) < 0.02
    assert abs((overall.expected_precision or 0) - (overall.realized_precision or 0)) < 0.04
    assert abs((overall.expected_recall or 0) - (overall.realized_recall or 0)) < 0.04
    assert {e.segment for e in report.estimates} == {"all", *(f"contract={c}" for c in CONTRACTS)}


class _TagBalance(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "input", "link", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


def test_the_html_report_shows_the_sentences_a_reliability_diagram_and_balanced_markup() -> None:
    report = drifted_and_degraded()
    page = render_report(report)
    assert page.startswith("<!DOCTYPE html>")
    auc = next(v for v in report.violations if v.metric == "auc" and v.segment == DEGRADED)
    assert escape(auc.description) in page
    assert page.index(escape(auc.description)) < page.index("Drift per feature")
    assert 'aria-label="Reliability diagram' in page
    assert "Observed positive rate" in page
    assert "perfect calibration" in page
    assert "Mean predicted probability" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    parser = _TagBalance()
    parser.feed(page)
    assert parser.errors == []
    assert parser.open == []


def test_insufficient_cells_are_greyed_with_the_n_they_need_on_the_page() -> None:
    page = render_report(monitor(31, rows=60))
    assert ('class="insufficient"' in page and "needs n ≈" in page) or "insufficient evidence (n ≈" in page


def test_emf_documents_parse_and_carry_their_declared_dimensions() -> None:
    report = drifted_and_degraded()
    lines = telemetry.documents(report)
    documents = [json.loads(line) for line in lines]
    declared = {tuple(s) for s in telemetry.DIMENSION_SETS}
    for document in documents:
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "Sluice"
        for dimensions in directive["Dimensions"]:
            assert tuple(dimensions) in declared
            assert all(isinstance(document[name], str) for name in dimensions)
        assert all(isinstance(document[metric["Name"]], float) for metric in directive["Metrics"])
    per_usecase = next(
        d for d in documents if telemetry.FEATURE_DRIFT_ALERTS in d and d["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        == [list(telemetry.USECASE_DIMENSIONS)]
    )  # fmt: skip
    assert per_usecase[telemetry.FEATURE_DRIFT_ALERTS] == sum(
        v.constraint_check_type == DATA_DRIFT for v in report.violations
    )
    assert per_usecase[telemetry.SEGMENT_DEGRADATION_ALERTS] >= 1
    assert set(telemetry.ALERT_METRICS.values()) <= set(per_usecase)
    drift = {d["feature"]: d[telemetry.FEATURE_DRIFT] for d in documents if telemetry.FEATURE_DRIFT in d}
    assert drift["monthly"] > 0.1 > drift["tenure"]
    segments = {d["segment"] for d in documents if "AUC" in d}  # judged cells only
    assert {"all", DEGRADED} <= segments <= {"all", *(f"contract={c}" for c in CONTRACTS)}
    estimated = {d["segment"] for d in documents if telemetry.ESTIMATED_AUC in d}
    assert estimated == {"all", *(f"contract={c}" for c in CONTRACTS)}


def test_the_window_summary_counts_each_label_with_its_weight() -> None:
    # Given a window's labels: most nobody sampled (weight 1), ten reviewed in the audit slice at P = 0.2
    rng = np.random.default_rng(5)
    rows = draw(rng, 200)
    labeled = window(1.0, rows)
    assert labeled.labels is not None
    probability = np.full(200, np.nan)
    probability[:10] = 0.2
    weights = np.where(np.isnan(probability), 1.0, 1.0 / probability)
    labeled = MonitorWindow(
        hours=1.0,
        predictions=labeled.predictions,
        labels=JoinedColumns(predictions=labeled.labels.predictions, positive=labeled.labels.positive, weight=weights),
    )

    # When the monitor runs
    report = run_monitor(
        usecase(),
        now=NOW,
        models=[ServedModel(model_version="7", variant="champion", baseline=baseline())],
        windows=[labeled],
    )

    # Then the labels count 200 and, weighted, 190 + 10 x 5
    (summary,) = report.windows
    assert summary.labels == {"7": 200}
    assert summary.labels_weighted == {"7": 240.0}
