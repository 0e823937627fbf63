"""The monitoring statistics core against scipy / scikit-learn (test-only references) and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from shared.monitoring.exceptions import InsufficientDataError
from shared.monitoring.statistics import (
    AucSummary,
    MeanSummary,
    ProportionSummary,
    auc,
    auc_estimate,
    benjamini_hochberg,
    bin_counts,
    brier_estimate,
    brier_score,
    chi2_homogeneity,
    chi2_sf,
    compare_auc,
    compare_means,
    compare_proportions,
    delong_auc_variance,
    ece_estimate,
    expected_auc,
    expected_calibration_error,
    expected_confusion,
    fdr_rejections,
    hanley_mcneil_variance,
    kolmogorov_sf,
    ks_2samp,
    normal_cdf,
    normal_quantile,
    normal_sf,
    positive_rate,
    psi,
    quantile_edges,
    regularized_gamma_q,
    required_n_auc,
    required_n_chi2,
    required_n_mean_difference,
    required_n_psi,
    required_n_two_proportions,
    spiegelhalter_z,
    summarize_auc,
    summarize_brier,
    threshold_rates,
    two_sided_p,
    wilson_interval,
)


def _calibrated(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.beta(2.0, 3.0, size=n)
    return scores, (rng.uniform(size=n) < scores).astype(int)


# --- special functions -------------------------------------------------------------------------------------------


def test_upper_incomplete_gamma_matches_scipy_over_a_grid() -> None:
    # Given shapes from 1/2 (one degree of freedom) to 1000 and x across both algorithms' ranges
    for a in (0.5, 1.0, 1.5, 2.5, 4.5, 10.0, 49.5, 200.0, 1000.0):
        for x in (1e-4, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0, 500.0, 1200.0):
            # When Q(a, x) is computed, Then it equals gammaincc to 1e-12 relative (or 1e-300 absolute)
            assert regularized_gamma_q(a, x) == pytest.approx(special.gammaincc(a, x), rel=1e-12, abs=1e-300)


def test_chi2_survival_matches_scipy() -> None:
    for dof in (1, 2, 3, 9, 30, 99):
        for statistic in (0.0, 0.5, 3.84, 10.0, 50.0, 150.0):
            assert chi2_sf(statistic, dof) == pytest.approx(stats.chi2.sf(statistic, dof), rel=1e-11, abs=1e-300)


def test_normal_functions_match_scipy() -> None:
    for z in (-8.0, -3.0, -1.96, -0.5, 0.0, 0.7, 1.96, 4.0, 9.0):
        assert normal_cdf(z) == pytest.approx(stats.norm.cdf(z), rel=1e-13)
        assert normal_sf(z) == pytest.approx(stats.norm.sf(z), rel=1e-13)
        assert two_sided_p(z) == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-13)
    for p in (1e-12, 1e-5, 0.01, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999, 1 - 1e-9):
        assert normal_quantile(p) == pytest.approx(stats.norm.ppf(p), rel=1e-12, abs=1e-14)


def test_kolmogorov_distribution_matches_scipy_kstwo() -> None:
    # Given sample sizes where scipy uses its large-n algorithms, and statistics across the distribution
    for n in (150, 400, 2000, 20000):
        for z in (0.3, 0.6, 0.9, 1.2, 1.5, 2.0, 3.0):
            d = z / math.sqrt(n)
            # Then the survival function agrees to 2e-3 relative (5 % below p = 1e-4, where no verdict hinges on it)
            expected = stats.kstwo.sf(d, n)
            assert kolmogorov_sf(d, n) == pytest.approx(expected, rel=2e-3 if expected > 1e-4 else 0.05)
    assert kolmogorov_sf(1.0, 10) == 0.0
    assert kolmogorov_sf(0.01, 10) == 1.0


# --- distribution drift ------------------------------------------------------------------------------------------


def test_psi_matches_a_hand_computation_and_smooths_empty_bins() -> None:
    # Given shares (0.5, 0.5) then (0.8, 0.2), unsmoothed
    value = psi([50, 50], [80, 20], epsilon=0.0)
    # Then PSI is (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5)
    assert value == pytest.approx(0.3 * math.log(1.6) - 0.3 * math.log(0.4))
    # And a bin empty in the window is smoothed, not infinite
    assert math.isfinite(psi([5, 5], [10, 0]))
    assert psi([3, 7, 1], [30, 70, 10]) == pytest.approx(0.0)


def test_quantile_edges_drop_nulls_and_collapse_duplicates() -> None:
    # Given a feature with nulls and one heavy value
    values = np.array([np.nan, 1, 1, 1, 1, 1, 1, 2, 3, 4, np.nan])
    # When deciles are taken
    edges = quantile_edges(values, bins=10)
    # Then the edges are unique and sorted, and every non-null value lands in a bin
    assert np.all(np.diff(edges) > 0)
    assert bin_counts(values, edges).sum() == 9
    # And a constant feature is a single bin
    assert quantile_edges([5.0, 5.0, 5.0]).tolist() == [5.0]
    assert bin_counts([5.0, 5.0, 7.0], [5.0]).tolist() == [2, 1]


def test_bins_are_open_at_both_ends_and_closed_on_the_right() -> None:
    counts = bin_counts([-100, 1.0, 1.5, 2.0, 2.5, 100, np.nan], [1.0, 2.0])
    assert counts.tolist() == [2, 2, 2]


def test_deciles_of_a_continuous_sample_hold_a_tenth_each() -> None:
    values = np.random.default_rng(3).normal(size=10_000)
    counts = bin_counts(values, quantile_edges(values))
    assert counts.tolist() == [1000] * 10


def test_chi2_homogeneity_matches_scipy_and_drops_bins_empty_in_both() -> None:
    # Given counts with a bin empty in both samples
    reference = np.array([10, 20, 0, 30, 5])
    current = np.array([12, 15, 0, 40, 1])
    # When tested
    statistic, dof, p_value = chi2_homogeneity(reference, current)
    # Then it is chi2_contingency without continuity correction on the non-empty bins
    expected = stats.chi2_contingency(np.vstack([reference, current])[:, [0, 1, 3, 4]], correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert dof == expected.dof == 3
    assert p_value == pytest.approx(expected.pvalue, rel=1e-10)
    # And a single occupied bin leaves nothing to test
    assert chi2_homogeneity([4, 0], [9, 0]) == (0.0, 0, 1.0)


def test_chi2_homogeneity_matches_scipy_on_large_random_tables() -> None:
    rng = np.random.default_rng(11)
    for _ in range(5):
        reference, current = rng.integers(0, 500, size=12), rng.integers(0, 500, size=12)
        expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
        statistic, _, p_value = chi2_homogeneity(reference, current)
        assert statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [(300, 400, 0.1), (1000, 2000, 0.05), (5000, 5000, 0.02), (2000, 3000, 0.2), (10000, 800, 0.0)],
)
def test_ks_2samp_matches_scipy_asymptotic(n1: int, n2: int, shift: float) -> None:
    # Given two normal samples, the second shifted
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
    # When tested
    statistic, p_value = ks_2samp(a, b)
    # Then statistic and p-value are scipy's (method="asymp")
    expected = stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(expected.statistic, abs=1e-15)
    assert p_value == pytest.approx(expected.pvalue, rel=2e-3, abs=1e-10)


def test_ks_2samp_handles_ties_and_nulls() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 5, size=300).astype(float)
    b = rng.integers(0, 6, size=500).astype(float)
    expected = stats.ks_2samp(a, b, method="asymp")
    statistic, p_value = ks_2samp(np.append(a, np.nan), b)
    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue, rel=2e-3)
    with pytest.raises(InsufficientDataError):
        ks_2samp([np.nan], b)


# --- metrics with labels -----------------------------------------------------------------------------------------


def test_auc_and_brier_match_sklearn_with_ties() -> None:
    # Given rounded (so heavily tied) calibrated scores
    scores, labels = _calibrated(seed=1, n=2000)
    scores = np.round(scores, 2)
    # Then AUC is roc_auc_score and Brier is brier_score_loss
    assert auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), rel=1e-12)
    assert brier_score(scores, labels) == pytest.approx(brier_score_loss(labels, scores), rel=1e-12)


def test_delong_variance_matches_a_bootstrap_estimate() -> None:
    # Given a sample of 600 rows
    scores, labels = _calibrated(seed=2, n=600)
    # When the AUC is bootstrapped 1000 times
    rng = np.random.default_rng(7)
    replicates = []
    for _ in range(1000):
        rows = rng.integers(0, labels.size, size=labels.size)
        replicates.append(auc(scores[rows], labels[rows]))
    # Then DeLong's variance is the bootstrap's within 20 %
    assert delong_auc_variance(scores, labels) == pytest.approx(np.var(replicates, ddof=1), rel=0.2)


def test_delong_variance_matches_a_hand_computation_on_a_tiny_sample() -> None:
    # Given positives (0.9, 0.6) and negatives (0.7, 0.2): V10 = (1/2, 1/2)... by definition
    # V10_i = share of negatives below positive i: (1, 0.5); V01_j = share of positives above negative j: (0.5, 1)
    scores, labels = [0.9, 0.6, 0.7, 0.2], [1, 1, 0, 0]
    # Then var = var(V10)/2 + var(V01)/2 = 0.125/2 + 0.125/2
    assert delong_auc_variance(scores, labels) == pytest.approx(0.125)
    assert auc(scores, labels) == pytest.approx(0.75)


def test_auc_interval_covers_the_value_and_stays_in_the_unit_interval() -> None:
    scores, labels = _calibrated(seed=3, n=300)
    estimate = auc_estimate(scores, labels)
    assert 0.0 <= estimate.low < estimate.value < estimate.high <= 1.0
    assert estimate.standard_error == pytest.approx(math.sqrt(delong_auc_variance(scores, labels)))
    with pytest.raises(InsufficientDataError):
        auc([0.1, 0.2], [1, 1])


def test_brier_interval_is_a_wald_interval_on_squared_errors() -> None:
    scores, labels = _calibrated(seed=4, n=500)
    errors = (scores - labels) ** 2
    estimate = brier_estimate(scores, labels)
    se = errors.std(ddof=1) / math.sqrt(errors.size)
    assert estimate.standard_error == pytest.approx(se)
    assert estimate.low == pytest.approx(errors.mean() - stats.norm.ppf(0.975) * se)


def test_ece_is_the_weighted_gap_over_ten_equal_width_bins() -> None:
    # Given two bins' worth of rows: scores 0.15 (labels 0, 1) and 0.95 (labels 1, 1)
    scores, labels = [0.15, 0.15, 0.95, 1.0], [0, 1, 1, 1]
    # Then ECE = 2/4 |0.5 - 0.15| + 2/4 |1 - 0.975| (1.0 falls in the last bin)
    assert expected_calibration_error(scores, labels) == pytest.approx(0.5 * 0.35 + 0.5 * 0.025)


def test_ece_bootstrap_interval_is_seeded_and_brackets_the_value() -> None:
    scores, labels = _calibrated(seed=5, n=1000)
    first = ece_estimate(scores, labels, seed=1)
    assert first == ece_estimate(scores, labels, seed=1)
    assert first.low <= first.value <= first.high
    assert first.high - first.low < 0.1


def test_wilson_interval_matches_the_closed_form_and_scipy() -> None:
    for successes, n in ((0, 10), (3, 10), (17, 80), (400, 1000), (50, 50)):
        # Given scipy's Wilson interval and the closed form
        reference = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
        z = stats.norm.ppf(0.975)
        rate = successes / n
        center = (rate + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
        low, high = wilson_interval(successes, n, 0.95)
        # Then all three agree
        assert low == pytest.approx(reference.low, abs=1e-12)
        assert high == pytest.approx(reference.high, abs=1e-12)
        assert low == pytest.approx(max(center - half, 0.0), abs=1e-12)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_threshold_rates_count_positive_rate_precision_and_recall() -> None:
    # Given scores and labels with 2 TP, 1 FP, 1 FN, 1 TN at threshold 0.5
    rates = threshold_rates([0.9, 0.6, 0.5, 0.2, 0.1], [1, 1, 0, 1, 0], threshold=0.5)
    assert (rates.positive_rate.successes, rates.positive_rate.n) == (3, 5)
    assert (rates.precision.successes, rates.precision.n) == (2, 3)
    assert (rates.recall.successes, rates.recall.n) == (2, 3)
    estimates = rates.estimates()
    assert estimates["precision"].value == pytest.approx(2 / 3)
    assert (estimates["recall"].low, estimates["recall"].high) == wilson_interval(2, 3)
    assert positive_rate([0.9, 0.6, 0.5, 0.2, np.nan], 0.5).value == pytest.approx(0.75)


def test_spiegelhalter_accepts_calibrated_and_rejects_overconfident_scores() -> None:
    scores, labels = _calibrated(seed=6, n=5000)
    _, calibrated_p = spiegelhalter_z(scores, labels)
    overconfident = np.clip(0.5 + 1.8 * (scores - 0.5), 0.01, 0.99)
    _, overconfident_p = spiegelhalter_z(overconfident, labels)
    assert calibrated_p > 0.01
    assert overconfident_p < 1e-6


def test_spiegelhalter_matches_a_hand_computation() -> None:
    # Given p = (0.2, 0.7) and y = (0, 1): numerator (0-0.2)(0.6) + (0.3)(-0.4), variance 0.36*0.16 + 0.16*0.21
    z, p_value = spiegelhalter_z([0.2, 0.7], [0, 1])
    expected = (-0.12 - 0.12) / math.sqrt(0.36 * 0.16 + 0.16 * 0.21)
    assert z == pytest.approx(expected)
    assert p_value == pytest.approx(2 * stats.norm.sf(abs(expected)))


# --- window against baseline -------------------------------------------------------------------------------------


def test_auc_difference_uses_both_delong_variances() -> None:
    # Given the holdout of the issue: AUC 0.755 (n=612), and a window at 0.61 (n=812)
    baseline = AucSummary(value=0.755, variance=0.02**2, positives=250, negatives=362)
    window = AucSummary(value=0.61, variance=0.021**2, positives=300, negatives=512)
    # When compared
    result = compare_auc(baseline, window)
    # Then the effect is window - baseline and z divides it by the combined standard error
    z = (0.61 - 0.755) / math.sqrt(0.02**2 + 0.021**2)
    assert result.effect == pytest.approx(-0.145)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert result.window.low < 0.61 < result.window.high


def test_pooled_two_proportion_test_matches_chi2_on_the_two_by_two_table() -> None:
    baseline, window = ProportionSummary(successes=120, n=600), ProportionSummary(successes=210, n=800)
    result = compare_proportions(baseline, window)
    expected = stats.chi2_contingency([[120, 480], [210, 590]], correction=False)
    assert result.effect == pytest.approx(210 / 800 - 0.2)
    assert result.z**2 == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert (result.window.low, result.window.high) == wilson_interval(210, 800)


def test_welch_test_of_brier_matches_scipy_large_sample() -> None:
    # Given per-row squared errors of a baseline and a worse window
    rng = np.random.default_rng(8)
    scores, labels = _calibrated(seed=9, n=3000)
    noisy = np.clip(scores + rng.normal(0, 0.15, size=scores.size), 0, 1)
    baseline, window = summarize_brier(scores[:1500], labels[:1500]), summarize_brier(noisy[1500:], labels[1500:])
    # When compared
    result = compare_means(baseline, window)
    # Then z is Welch's t, read on the normal distribution
    welch = stats.ttest_ind((noisy[1500:] - labels[1500:]) ** 2, (scores[:1500] - labels[:1500]) ** 2, equal_var=False)
    assert result.z == pytest.approx(welch.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(welch.statistic)), rel=1e-9)
    assert result.effect > 0
    assert compare_means(MeanSummary(mean=0.2, variance=0.0, n=5), MeanSummary(mean=0.2, variance=0.0, n=5)).z == 0


# --- multiplicity ------------------------------------------------------------------------------------------------


def test_benjamini_hochberg_matches_scipy() -> None:
    rng = np.random.default_rng(10)
    for size in (1, 2, 7, 50, 300):
        p_values = rng.uniform(size=size) ** 3
        q_values = benjamini_hochberg(p_values)
        assert np.allclose(q_values, stats.false_discovery_control(p_values, method="bh"), rtol=1e-12, atol=0)
        order = np.argsort(p_values)
        assert np.all(np.diff(q_values[order]) >= 0)
    assert fdr_rejections([0.01, 0.05, 0.2], 0.05).tolist() == [True, True, False]
    assert benjamini_hochberg([]).size == 0


# --- sample size -------------------------------------------------------------------------------------------------


def test_two_proportion_sample_size_matches_the_textbook_value() -> None:
    # Given p0 = 0.5 against 0.6, alpha 0.05 two-sided, power 0.8: the classic answer is 388 per group
    assert required_n_two_proportions(0.5, 0.1) == 388
    # And with a fixed baseline the window needs more, or cannot be enough
    assert required_n_two_proportions(0.5, 0.1, baseline_n=1000) > 194
    assert math.isinf(required_n_two_proportions(0.5, 0.01, baseline_n=100))


def test_auc_sample_size_reaches_the_power_it_promises() -> None:
    # Given an AUC of 0.755 and a declared drop of 0.1 with 40 % positives
    n = required_n_auc(0.755, -0.1, prevalence=0.4)

    # Then at n the power formula reaches 0.8 and at n - 1 it does not
    def power(rows: float) -> float:
        v0 = hanley_mcneil_variance(0.755, 0.4 * rows, 0.6 * rows)
        v1 = hanley_mcneil_variance(0.655, 0.4 * rows, 0.6 * rows)
        return normal_cdf((0.1 - normal_quantile(0.975) * math.sqrt(2 * v0)) / math.sqrt(v0 + v1))

    assert power(n) >= 0.8 > power(n - 1)
    assert 100 < n < 1000
    # And a baseline noisier than an equal one (a small holdout) raises it, a hopeless one makes it infinite
    assert required_n_auc(0.755, -0.1, prevalence=0.4, baseline_variance=0.035**2) > n
    assert math.isinf(required_n_auc(0.755, -0.05, baseline_variance=0.03**2))


def test_hanley_mcneil_variance_is_close_to_delong_on_binormal_scores() -> None:
    scores, labels = _calibrated(seed=12, n=4000)
    summary = summarize_auc(scores, labels)
    approximation = hanley_mcneil_variance(summary.value, summary.positives, summary.negatives)
    assert approximation == pytest.approx(summary.variance, rel=0.3)


def test_chi2_sample_size_gives_the_declared_power_under_the_noncentral_chi2() -> None:
    # Given a PSI of 0.1 to detect on 10 bins against a reference as large as the window
    n = required_n_psi(0.1, 10)
    # Then the noncentral chi-square (lambda = n_eff * w2, n_eff = n/2) has power 0.8 within 0.03
    critical = stats.chi2.ppf(0.95, 9)
    assert stats.ncx2.sf(critical, 9, n / 2 * 0.1) == pytest.approx(0.8, abs=0.03)
    assert required_n_psi(0.1, 10, reference_n=10**6) == pytest.approx(n / 2, rel=0.02)
    assert math.isinf(required_n_chi2(0.01, 4, reference_n=200))


def test_chi2_sample_size_holds_by_simulation_for_a_planted_psi() -> None:
    # Given a planted shift of the shares of 10 bins with w2 = 0.1, and a large reference
    reference = np.full(10, 0.1)
    current = reference + math.sqrt(0.001) * np.array([1, -1] * 5)
    assert np.sum((current - reference) ** 2 / reference) == pytest.approx(0.1)
    n = int(required_n_psi(0.1, 10, reference_n=10**6))
    # When 400 windows of n rows are tested against the exact reference counts
    rng = np.random.default_rng(13)
    rejected = [chi2_homogeneity(reference * 10**6, rng.multinomial(n, current))[2] < 0.05 for _ in range(400)]
    # Then about 80 % are rejected
    assert np.mean(rejected) == pytest.approx(0.8, abs=0.07)


def test_mean_difference_sample_size() -> None:
    assert required_n_mean_difference(0.04, 0.02) == math.ceil(2 * 0.04 * (1.959964 + 0.841621) ** 2 / 0.02**2)
    assert math.isinf(required_n_mean_difference(0.04, 0.02, baseline_n=10))


# --- CBPE --------------------------------------------------------------------------------------------------------


def test_cbpe_estimates_the_realized_metrics_of_calibrated_scores() -> None:
    # Given 40 seeds of perfectly calibrated scores and their realized labels
    estimated, realized = [], []
    for seed in range(40):
        scores, labels = _calibrated(seed=100 + seed, n=2000)
        confusion = expected_confusion(scores, threshold=0.5)
        rates = threshold_rates(scores, labels, threshold=0.5)
        estimated.append([confusion.precision, confusion.recall, confusion.positive_rate, expected_auc(scores)])
        realized.append(
            [rates.precision.rate, rates.recall.rate, rates.positive_rate.rate, roc_auc_score(labels, scores)]
        )
    # Then the estimates equal the realized metrics on average within 0.005
    assert np.allclose(np.mean(estimated, axis=0), np.mean(realized, axis=0), atol=0.005)


def test_expected_confusion_adds_the_probabilities() -> None:
    confusion = expected_confusion([0.9, 0.6, 0.3, 0.1], threshold=0.5)
    assert confusion.true_positives == pytest.approx(1.5)
    assert confusion.false_positives == pytest.approx(0.5)
    assert confusion.false_negatives == pytest.approx(0.4)
    assert confusion.true_negatives == pytest.approx(1.6)
    assert confusion.precision == pytest.approx(0.75)
    assert confusion.positive_rate == pytest.approx(0.5)


def test_expected_auc_matches_its_pairwise_definition_with_ties() -> None:
    # Given a few tied scores
    p = np.array([0.2, 0.2, 0.5, 0.7, 0.7, 0.9])
    # When the pairwise sum over i != j is spelt out
    numerator = denominator = 0.0
    for i in range(p.size):
        for j in range(p.size):
            if i != j:
                weight = p[i] * (1 - p[j])
                denominator += weight
                numerator += weight * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    # Then the O(n log n) version agrees
    assert expected_auc(p) == pytest.approx(numerator / denominator)
