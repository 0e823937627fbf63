"""Reviewed labels weigh 1 / inclusion probability: weighted statistics against scikit-learn and numpy, the
label join keeping the provenance's probability, and a planted population where only the weighted estimate is
unbiased.

Planted example (one run, seed 7, 400 simulations of 20,000 predictions; mean true error rate 0.3143): the review
routes the uncertain band [0.35, 0.65] at P = 1 and audits the rest at 5%. The weighted (Hájek) estimate of the
error rate averaged 0.3145 (bias 0.0002); the unweighted rate of the reviewed labels averaged 0.4145 (bias +0.100),
because the band, where the model errs most, is over-represented among reviewed items.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from shared.monitoring.join import feedback_label
from shared.monitoring.labels import joined_columns
from shared.monitoring.statistics import (
    effective_n,
    weighted_auc,
    weighted_brier,
    weighted_mean,
    weighted_proportion,
)
from shared.monitoring.window import NUMERIC
from shared.review.routing import audit_draw
from shared.scoring.feedback import INCLUSION_PROBABILITY, PROVENANCE
from shared.usecase.settings import load_usecase

ROOT = Path(__file__).resolve().parents[2]
TELCO = load_usecase(ROOT / "usecases" / "telco_churn.toml")


def _sample(seed: int, n: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.uniform(0, 1, n), 2)  # rounded: ties between classes
    labels = (rng.uniform(0, 1, n) < scores).astype(int)
    weights = rng.choice([1.0, 20.0, 2.5], size=n)
    return scores, labels, weights


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_auc_and_brier_match_scikit_learn_sample_weight(seed: int) -> None:
    scores, labels, weights = _sample(seed)
    assert weighted_auc(scores, labels, weights) == pytest.approx(
        roc_auc_score(labels, scores, sample_weight=weights), abs=1e-12
    )
    assert weighted_brier(scores, labels, weights).mean == pytest.approx(
        brier_score_loss(labels, scores, sample_weight=weights), abs=1e-12
    )
    assert weighted_mean(labels, weights) == pytest.approx(np.average(labels, weights=weights))
    assert weighted_auc(scores, labels, np.ones_like(weights)) == pytest.approx(roc_auc_score(labels, scores))


def test_effective_n_and_weighted_proportion_count_what_the_sample_is_worth() -> None:
    assert effective_n(np.ones(100)) == pytest.approx(100)
    assert effective_n([1.0, 1.0, 20.0]) == pytest.approx(22.0**2 / 402.0)
    summary = weighted_proportion([1, 0, 0, 0], [1.0, 1.0, 1.0, 1.0])
    assert (summary.successes, summary.n) == (1, 4)


def test_a_reviewed_label_joins_with_its_weight() -> None:
    # Given a reviewed label with inclusion probability 0.05 and a label from a client
    base = {"request_id": "r", "entity_id": 1, "label": "Yes", "received_at": "2026-12-01T10:00:00+00:00"}
    reviewed = feedback_label("a", {**base, PROVENANCE: {INCLUSION_PROBABILITY: 0.05}}, TELCO.contract)
    client = feedback_label("b", base, TELCO.contract)
    # Then the first carries its probability, the second none; an impossible probability makes it invalid
    assert reviewed is not None
    assert reviewed.inclusion_probability == 0.05
    assert client is not None
    assert client.inclusion_probability is None
    assert feedback_label("c", {**base, PROVENANCE: {INCLUSION_PROBABILITY: 0}}, TELCO.contract) is None
    assert feedback_label("c", {**base, PROVENANCE: {INCLUSION_PROBABILITY: 1.5}}, TELCO.contract) is None


def test_joined_columns_weigh_reviewed_labels_by_the_inverse_probability() -> None:
    from shared.monitoring.join import JoinedLabel

    def joined(probability: float | None) -> JoinedLabel:
        at = datetime(2026, 12, 1, tzinfo=UTC)
        return JoinedLabel(
            request_id="r", index=0, entity_id="1", variant="champion", model_version=1, score=0.5, threshold=0.5,
            features={"tenure": 3.0}, predicted_at=at, label="Yes", positive=True, observed_at=at,
            joined_by="request_id", feedback_id="f", inclusion_probability=probability,
        )  # fmt: skip

    columns = joined_columns([joined(0.05), joined(None), joined(1.0)], {"tenure": NUMERIC})
    assert columns.weight.tolist() == pytest.approx([20.0, 1.0, 1.0])
    restored = JoinedLabel.from_document(joined(0.25).document())
    assert restored.weight == pytest.approx(4.0)
    assert date(2026, 12, 1) == restored.predicted_at.date()


def _simulate(
    rng: np.random.Generator, n: int, band: tuple[float, float], audit_rate: float
) -> tuple[float, float, float]:
    """(truth, weighted estimate, unweighted estimate) of the model's error rate at threshold 0.5."""
    scores = rng.beta(2, 2, n)
    truth_probability = np.clip(scores + rng.normal(0, 0.1, n), 0, 1)
    positive = rng.uniform(0, 1, n) < truth_probability
    error = (scores >= 0.5) != positive
    in_band = (scores >= band[0]) & (scores <= band[1])
    draws = rng.uniform(0, 1, n)
    reviewed = in_band | (draws < audit_rate)
    probability = np.where(in_band, 1.0, audit_rate)
    weights = 1.0 / probability[reviewed]
    return float(error.mean()), weighted_mean(error[reviewed], weights), float(error[reviewed].mean())


def test_the_weighted_error_rate_is_unbiased_where_the_unweighted_one_is_not() -> None:
    # Given a planted population: the band [0.35, 0.65] reviewed at P = 1, the rest audited at 5%
    rng = np.random.default_rng(7)
    runs = np.array([_simulate(rng, 20_000, (0.35, 0.65), 0.05) for _ in range(400)])
    truth, weighted, unweighted = runs.mean(axis=0)
    # Then the weighted estimate's mean is within 0.003 of the truth (its standard error over 400 runs is ~0.0003)
    assert abs(weighted - truth) < 0.003
    # And the unweighted rate is far off (the band, where the model errs most, is over-represented)
    assert unweighted - truth > 0.05
    print(f"truth {truth:.4f} weighted {weighted:.4f} unweighted {unweighted:.4f}")


def test_the_audit_draw_reaches_its_rate_on_request_ids() -> None:
    share = np.mean([audit_draw(f"req-{n}", 0) < 0.05 for n in range(40_000)])
    assert abs(share - 0.05) < 0.004
