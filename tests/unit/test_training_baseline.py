"""baseline.json's builder on small synthetic holdouts: profiles, bins, nulls, metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_auc_score

from shared.monitoring import statistics as stats
from shared.monitoring.baseline import Baseline, CategoricalProfile, NumericProfile
from shared.monitoring.segments import segment_value
from shared.usecase.settings import UseCase
from training.baseline import SAMPLE_SIZE, build_baseline, numeric_profile

THRESHOLD = 0.4


def _usecase() -> UseCase:
    return UseCase.model_validate(
        {
            "name": "loan_default",
            "contract": {
                "version": "2.1.0",
                "entity_id": "id",
                "label": "defaulted",
                "positive_class": "yes",
                "segments": ["region", "small"],
                "columns": [
                    {"name": "id", "type": "int"},
                    {"name": "defaulted", "type": "category", "allowed": ["no", "yes"]},
                    {"name": "income", "type": "float", "nullable": True},
                    {"name": "age", "type": "int"},
                    {"name": "region", "type": "category", "allowed": ["north", "south", "west"], "nullable": True},
                    {"name": "owner", "type": "bool"},
                    {"name": "small", "type": "string"},
                    {"name": "applied_at", "type": "timestamp", "nullable": True},
                ],
            },
        }
    )


def _holdout(rows: int = 1_500, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    """A holdout with nulls in income and region, a segment column with a tiny value, and scores tied to labels."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "west"], size=rows, p=[0.5, 0.3, 0.2]).astype(object)
    region[rng.random(rows) < 0.05] = None
    income = rng.lognormal(10, 0.5, size=rows)
    income[rng.random(rows) < 0.1] = np.nan
    risk = rng.random(rows)
    labels = rng.random(rows) < risk * 0.6
    scores = np.clip(risk * 0.6 + rng.normal(0, 0.1, size=rows), 0.001, 0.999)
    small = np.where(np.arange(rows) < 10, "tiny", "big")  # 10 rows: too few for metrics of their own
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "defaulted": np.where(labels, "yes", "no"),
            "income": income,
            "age": rng.integers(18, 90, size=rows),
            "region": region,
            "owner": rng.random(rows) < 0.4,
            "small": small,
            "applied_at": pd.NaT,
        }
    )
    return frame, scores


def test_the_baseline_profiles_every_model_input_as_the_onnx_feed_sees_it() -> None:
    # Given a holdout with nulls in a numeric and a categorical feature
    holdout, scores = _holdout()
    # When its baseline is built
    baseline = build_baseline(holdout, scores, _usecase(), THRESHOLD)
    # Then every model input is profiled (the timestamp is no model input), by its kind
    assert set(baseline.features) == {"income", "age", "region", "owner", "small"}
    income, region, owner = baseline.features["income"], baseline.features["region"], baseline.features["owner"]
    assert isinstance(income, NumericProfile)
    assert isinstance(region, CategoricalProfile)
    assert isinstance(owner, CategoricalProfile)
    # And nulls are counted apart: NaN for numerics, "" (the model's null) for categoricals
    assert income.count == region.count == len(holdout)
    assert income.null_count == int(holdout["income"].isna().sum()) > 0
    assert region.null_count == int(holdout["region"].isna().sum()) > 0
    assert region.counts == holdout["region"].value_counts().sort_index().to_dict()
    # And booleans are the text the model reads
    assert set(owner.counts) == {"true", "false"}
    assert sum(owner.counts.values()) == len(holdout)


def test_numeric_bins_hold_every_non_null_value_with_a_bounded_seeded_sample() -> None:
    holdout, scores = _holdout(rows=2_500)
    baseline = build_baseline(holdout, scores, _usecase(), THRESHOLD)
    income = baseline.features["income"]
    assert isinstance(income, NumericProfile)
    # The bins (one more than the edges) hold every non-null value
    assert len(income.counts) == len(income.edges) + 1 == 10
    assert sum(income.counts) == income.count - income.null_count
    # The edges are the monitor's quantile edges of the float32-rounded values, as ONNX reads them
    values = holdout["income"].to_numpy(np.float32).astype(np.float64)
    assert income.edges == pytest.approx(stats.quantile_edges(values, 10).tolist())
    # The sample is bounded, drawn from the non-null values, and the same at every build
    assert len(income.sample) == SAMPLE_SIZE
    assert set(income.sample) <= set(values[~np.isnan(values)].tolist())
    assert build_baseline(holdout, scores, _usecase(), THRESHOLD).features["income"] == income
    # And the score distribution is profiled likewise
    assert baseline.score.count == len(holdout)
    assert sum(baseline.score.counts) == len(holdout)
    assert baseline.score.mean == pytest.approx(scores.mean())


def test_a_feature_always_null_and_a_constant_feature_have_one_bin() -> None:
    always_null = numeric_profile(np.full(40, np.nan))
    assert (always_null.count, always_null.null_count, always_null.edges, always_null.counts) == (40, 40, [], [0])
    constant = numeric_profile(np.full(40, 3.0))
    assert (constant.edges, constant.counts) == ([3.0], [40, 0])


def test_holdout_metrics_agree_with_scikit_learn() -> None:
    # Given a holdout, its scores and the deployed threshold
    holdout, scores = _holdout()
    labels = (holdout["defaulted"] == "yes").to_numpy().astype(int)
    # When its baseline is built
    overall = build_baseline(holdout, scores, _usecase(), THRESHOLD).overall
    # Then AUC and Brier are scikit-learn's, and the confusion counts are at ``score >= threshold``
    assert overall.auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert overall.brier == pytest.approx(brier_score_loss(labels, scores), abs=1e-12)
    assert overall.brier_variance == pytest.approx(np.var((scores - labels) ** 2, ddof=1))
    assert overall.auc_variance == pytest.approx(stats.delong_auc_variance(scores, labels))
    assert overall.ece == pytest.approx(stats.expected_calibration_error(scores, labels))
    tn, fp, fn, tp = confusion_matrix(labels, (scores >= THRESHOLD).astype(int)).ravel()
    assert (overall.true_negatives, overall.false_positives, overall.false_negatives, overall.true_positives) == (
        tn,
        fp,
        fn,
        tp,
    )
    assert (overall.n, overall.positives) == (len(holdout), labels.sum())
    assert overall.positive_rate == pytest.approx(labels.mean())
    assert overall.mean_score == pytest.approx(scores.mean())
    assert overall.threshold == THRESHOLD


def test_segment_values_with_enough_rows_get_their_metrics_and_small_ones_are_left_out() -> None:
    # Given a holdout whose "small" segment has a 10-row value, and whose region has nulls
    holdout, scores = _holdout()
    labels = (holdout["defaulted"] == "yes").to_numpy().astype(int)
    # When its baseline is built
    segments = build_baseline(holdout, scores, _usecase(), THRESHOLD).segments
    # Then each declared segment has its values, nulls as "null", the tiny value left out
    assert set(segments) == {"region", "small"}
    assert set(segments["region"]) == {"north", "south", "west", "null"}
    assert set(segments["small"]) == {"big"}
    north = (holdout["region"] == "north").to_numpy()
    assert segments["region"]["north"].n == north.sum()
    assert segments["region"]["north"].auc == pytest.approx(roc_auc_score(labels[north], scores[north]))


def test_a_single_class_segment_value_is_left_out() -> None:
    holdout, scores = _holdout()
    holdout.loc[holdout["region"] == "west", "defaulted"] = "no"
    segments = build_baseline(holdout, scores, _usecase(), THRESHOLD).segments
    assert "west" not in segments["region"]
    assert "north" in segments["region"]


def test_the_baseline_round_trips_through_json() -> None:
    holdout, scores = _holdout(rows=300)
    baseline = build_baseline(holdout, scores, _usecase(), THRESHOLD)
    assert Baseline.model_validate_json(baseline.model_dump_json()) == baseline
    assert (baseline.usecase, baseline.contract_version, baseline.rows) == ("loan_default", "2.1.0", 300)


def test_scores_must_match_the_holdout_rows() -> None:
    holdout, scores = _holdout(rows=100)
    with pytest.raises(ValueError, match="99 scores for 100"):
        build_baseline(holdout, scores[:99], _usecase(), THRESHOLD)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "null"), (float("nan"), "null"), (True, "true"), (np.bool_(False), "false"), (1.0, "1"), (1, "1"),
     (np.int64(2), "2"), (0.5, "0.5"), ("Month-to-month", "Month-to-month")],
)  # fmt: skip
def test_segment_values_have_one_spelling_whichever_way_they_arrive(value: object, text: str) -> None:
    assert segment_value(value) == text
