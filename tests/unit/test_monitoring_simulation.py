"""The monitor's family of tests on simulated windows: false alarms under the null, power, localization, small n.

A use case with 10 features (6 numeric, 4 categorical; the first categorical is the contract, which makes the
3 segments) and a calibrated model. The baseline is a 5,000-row reference (drift) that doubles as the training
holdout (performance); each window is tested as one family: 10 drift cells (Kolmogorov-Smirnov for numeric
features, chi-square for categorical ones) + 3 segments x 3 metrics (AUC, Brier, positive rate), with
Benjamini-Hochberg at FDR 0.05 over the whole family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.monitoring.cells import ALERT, INSUFFICIENT_EVIDENCE, CellEvidence, CellKey, CellResult, judge_family
from shared.monitoring.statistics import (
    ProportionSummary,
    bin_counts,
    chi2_homogeneity,
    compare_auc,
    compare_means,
    compare_proportions,
    ks_2samp,
    psi,
    quantile_edges,
    required_n_auc,
    required_n_mean_difference,
    required_n_psi,
    required_n_two_proportions,
    summarize_auc,
    summarize_brier,
)

SEGMENTS = ("contract=Month-to-month", "contract=One year", "contract=Two year")
SEGMENT_SHARES = (0.5, 0.3, 0.2)
CATEGORY_SHARES = (SEGMENT_SHARES, (0.25, 0.25, 0.25, 0.25), (0.6, 0.4), (0.4, 0.2, 0.2, 0.1, 0.1))
NUMERIC = 6
THRESHOLD = 0.5
FDR = 0.05
REFERENCE_ROWS = 5000
DECLARED_PSI, DECLARED_AUC_DROP, DECLARED_BRIER_RISE, DECLARED_RATE_CHANGE = 0.1, -0.1, 0.04, 0.1


@dataclass(frozen=True)
class Sample:
    numeric: np.ndarray  # rows x NUMERIC
    categorical: np.ndarray  # rows x len(CATEGORY_SHARES), codes
    scores: np.ndarray
    labels: np.ndarray

    @property
    def segment(self) -> np.ndarray:
        return self.categorical[:, 0]


def draw(rng: np.random.Generator, rows: int, *, shift: float = 0.0, degraded_segment: int | None = None) -> Sample:
    """Rows of the use case; ``shift`` moves the last numeric feature (not a model input) by that many sd."""
    numeric = rng.normal(size=(rows, NUMERIC))
    numeric[:, -1] += shift
    categorical = np.column_stack([rng.choice(len(shares), size=rows, p=shares) for shares in CATEGORY_SHARES])
    logit = -0.3 + 1.2 * numeric[:, 0] - 0.8 * numeric[:, 1] + 0.5 * numeric[:, 2] + 0.6 * (categorical[:, 0] == 1)
    probability = 1.0 / (1.0 + np.exp(-logit))
    labels = (rng.uniform(size=rows) < probability).astype(int)
    scores = probability.copy()
    if degraded_segment is not None:
        inside = categorical[:, 0] == degraded_segment
        noisy = 0.35 * logit[inside] + rng.normal(0.0, 0.9, size=int(inside.sum()))
        scores[inside] = 1.0 / (1.0 + np.exp(-noisy))
    return Sample(numeric=numeric, categorical=categorical, scores=scores, labels=labels)


def family(reference: Sample, window: Sample, name: str = "last 6 h") -> list[CellEvidence]:
    """Every cell of one window, before multiplicity."""
    cells = []
    rows = window.scores.size
    for j in range(NUMERIC):
        edges = quantile_edges(reference.numeric[:, j])
        _, p_value = ks_2samp(reference.numeric[:, j], window.numeric[:, j])
        drift = psi(bin_counts(reference.numeric[:, j], edges), bin_counts(window.numeric[:, j], edges))
        needed = required_n_psi(DECLARED_PSI, edges.size + 1, reference_n=REFERENCE_ROWS)
        key = CellKey(window=name, segment="all", subject=f"x{j}", statistic="ks")
        cells.append(CellEvidence(key=key, n=rows, effect=drift, p_value=p_value, required_n=needed))
    for j, shares in enumerate(CATEGORY_SHARES):
        before = np.bincount(reference.categorical[:, j], minlength=len(shares))
        after = np.bincount(window.categorical[:, j], minlength=len(shares))
        _, _, p_value = chi2_homogeneity(before, after)
        needed = required_n_psi(DECLARED_PSI, len(shares), reference_n=REFERENCE_ROWS)
        key = CellKey(window=name, segment="all", subject=f"c{j}", statistic="chi2")
        cells.append(CellEvidence(key=key, n=rows, effect=psi(before, after), p_value=p_value, required_n=needed))
    for s, segment in enumerate(SEGMENTS):
        base, now = reference.segment == s, window.segment == s
        cells.extend(
            _performance_cells(
                reference, base, window, now, CellKey(window=name, segment=segment, subject="", statistic="")
            )
        )
    return cells


def _performance_cells(
    reference: Sample, base: np.ndarray, window: Sample, now: np.ndarray, where: CellKey
) -> list[CellEvidence]:
    rows = int(now.sum())

    def key(subject: str, statistic: str) -> CellKey:
        return CellKey(window=where.window, segment=where.segment, subject=subject, statistic=statistic)

    cells = []
    baseline_auc = summarize_auc(reference.scores[base], reference.labels[base])
    prevalence = baseline_auc.positives / baseline_auc.n
    needed = required_n_auc(
        baseline_auc.value, DECLARED_AUC_DROP, prevalence=prevalence, baseline_variance=baseline_auc.variance
    )
    if rows >= needed:
        result = compare_auc(baseline_auc, summarize_auc(window.scores[now], window.labels[now]))
        cells.append(_cell(key("auc", "delong z"), rows, result.effect, result.p_value, needed, baseline_auc.value))
    else:
        cells.append(_cell(key("auc", "delong z"), rows, math.nan, 1.0, needed, baseline_auc.value))
    baseline_brier = summarize_brier(reference.scores[base], reference.labels[base])
    needed = required_n_mean_difference(
        baseline_brier.variance,
        DECLARED_BRIER_RISE,
        baseline_variance=baseline_brier.variance,
        baseline_n=baseline_brier.n,
    )
    result = compare_means(baseline_brier, summarize_brier(window.scores[now], window.labels[now]))
    cells.append(_cell(key("brier", "welch z"), rows, result.effect, result.p_value, needed, baseline_brier.mean))
    baseline_rate = ProportionSummary(successes=int((reference.scores[base] >= THRESHOLD).sum()), n=int(base.sum()))
    needed = required_n_two_proportions(baseline_rate.rate, DECLARED_RATE_CHANGE, baseline_n=baseline_rate.n)
    window_rate = ProportionSummary(successes=int((window.scores[now] >= THRESHOLD).sum()), n=rows)
    result = compare_proportions(baseline_rate, window_rate)
    cells.append(
        _cell(key("positive rate", "pooled z"), rows, result.effect, result.p_value, needed, baseline_rate.rate)
    )
    return cells


def _cell(key: CellKey, rows: int, effect: float, p_value: float, needed: float, baseline: float) -> CellEvidence:  # noqa: PLR0917
    return CellEvidence(key=key, n=rows, effect=effect, p_value=p_value, required_n=needed, baseline=baseline)


def judge(seed: int, rows: int, **window_options: float | int | None) -> list[CellResult]:
    rng = np.random.default_rng(seed)
    reference = draw(rng, REFERENCE_ROWS)
    window = draw(rng, rows, **window_options)  # type: ignore[arg-type]
    return judge_family(family(reference, window), fdr=FDR)


def alerts(results: list[CellResult]) -> set[tuple[str, str]]:
    return {(r.key.segment, r.key.subject) for r in results if r.verdict == ALERT}


def test_null_windows_raise_an_alert_in_at_most_five_percent() -> None:
    # Given 200 windows of 3,000 rows drawn from the baseline's own distribution (a fresh baseline each)
    windows = [judge(seed, 3000) for seed in range(200)]
    # Then every one of the 19 cells is tested (none set aside) ...
    assert all(sum(r.verdict != INSUFFICIENT_EVIDENCE for r in results) == 19 for results in windows)
    # ... and the share of windows with any alert is at most 5 % plus a one-sided 99 % binomial margin
    false_alarm_rate = np.mean([bool(alerts(results)) for results in windows])
    margin = 2.33 * math.sqrt(0.05 * 0.95 / len(windows))
    assert false_alarm_rate <= 0.05 + margin, f"false alarm rate {false_alarm_rate:.3f}"


def test_a_planted_shift_of_a_quarter_sd_is_found_and_nothing_else_is() -> None:
    # Given 50 windows of 2,000 rows where the last numeric feature's mean moved by 0.25 sd
    windows = [judge(1000 + seed, 2000, shift=0.25) for seed in range(50)]
    shifted = ("all", f"x{NUMERIC - 1}")
    # Then the shift is alerted in at least 90 % of them
    power = np.mean([shifted in alerts(results) for results in windows])
    assert power >= 0.9, f"power {power:.2f}"
    # And the false discoveries among all alerts stay within the FDR (plus sampling margin)
    false_share = np.mean([len(alerts(results) - {shifted}) / max(len(alerts(results)), 1) for results in windows])
    assert false_share <= FDR + 0.03, f"false discovery share {false_share:.3f}"


def test_an_auc_drop_in_one_segment_is_localized_to_that_segment() -> None:
    # Given 30 windows where only month-to-month contracts get noisier scores
    windows = [judge(2000 + seed, 3000, degraded_segment=0) for seed in range(30)]
    # Then that segment's AUC alerts in at least 90 % of them, with a drop as effect
    degraded = [r for results in windows for r in results if r.key.segment == SEGMENTS[0] and r.key.subject == "auc"]
    assert np.mean([r.verdict == ALERT for r in degraded]) >= 0.9
    assert all(r.effect < -0.05 for r in degraded)
    # And the other segments' AUC stays quiet in at least 90 % of windows
    other_auc = [any(r.key.subject == "auc" and r.key.segment != SEGMENTS[0] for r in results if r.verdict == ALERT)
                 for results in windows]  # fmt: skip
    assert np.mean(other_auc) <= 0.1
    # And anything outside the segment alerts in at most a quarter of windows: with 2-3 true discoveries
    # Benjamini-Hochberg tests the 16 null cells at about 0.05 * 3 / 19 each, so ~15 % of windows is expected
    elsewhere = [bool({a for a in alerts(results) if a[0] != SEGMENTS[0]}) for results in windows]
    assert np.mean(elsewhere) <= 0.25


def test_a_small_window_reports_insufficient_evidence_with_the_n_it_needs() -> None:
    # Given a window of 120 rows (about 24 in the smallest segment), its scores badly degraded
    results = judge(3000, 120, degraded_segment=2)
    # Then the segments' AUC cells give no verdict: insufficient evidence, and the n they would need
    auc_cells = [r for r in results if r.key.subject == "auc"]
    assert all(r.verdict == INSUFFICIENT_EVIDENCE for r in auc_cells)
    assert all(r.q_value is None and r.required_n > r.n for r in auc_cells)
    # And the description says so in words
    assert "insufficient evidence" in auc_cells[2].describe()
    assert "needs n ≈" in auc_cells[2].describe()
    # And they took no share of the FDR budget: the others were adjusted among themselves
    tested = [r for r in results if r.q_value is not None]
    assert len(tested) == sum(r.n >= r.required_n for r in results)
