"""Per-feature contributions of a linear model: what training writes, redone per record, adds up to the logit."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.review import page
from shared.review.adapters import RegistryExplanations
from shared.review.explanation import EXPLANATION, LinearExplanation, contributions, explanation_of, logit
from shared.review.routing import Reason
from shared.review.types import ReviewItem
from shared.usecase.settings import ModelSettings, UseCase
from tests.fakes import InMemoryObjectStore
from tests.unit.conftest import telco_frame
from training.model import build_pipeline, feature_frame, label_vector, linear_explanation, make_estimator


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return telco_frame().sample(600, random_state=11)


def _fit(usecase: UseCase, rows: pd.DataFrame, estimator: str) -> object:
    settings = ModelSettings.model_validate(
        {**usecase.model.model_dump(), "estimator": estimator, "hyperparameters": {}}
    )
    pipeline = build_pipeline(usecase.contract, make_estimator(settings))
    return pipeline.fit(feature_frame(rows, usecase.contract), label_vector(rows, usecase.contract))


def test_contributions_plus_the_intercept_are_the_models_logit(telco: UseCase, rows: pd.DataFrame) -> None:
    # Given a logistic regression trained on Telco rows, and its explanation as metrics.json carries it
    pipeline = _fit(telco, rows, "logistic_regression")
    written = json.loads(json.dumps({"linear_explanation": linear_explanation(pipeline, "logistic_regression")}))
    explanation = explanation_of(written)
    assert isinstance(explanation, LinearExplanation)
    # And records as the review queue holds them (plain JSON values), one with a missing number and an unseen
    # category
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in json.loads(rows.head(40).to_json(orient="records"))
    ]
    numeric_column = explanation.numeric[0].column
    categorical_column = explanation.categorical[0].column
    records.append({**records[0], numeric_column: None, categorical_column: "never seen in training"})
    # When each record's contributions are computed
    expected = pipeline.decision_function(feature_frame(pd.DataFrame(records), telco.contract))
    computed = np.array([logit(explanation, record) for record in records])
    # Then the intercept plus their sum is scikit-learn's own decision_function, record by record
    np.testing.assert_allclose(computed, expected, rtol=0, atol=1e-6)
    # And there is one contribution per input column, a categorical one named by its value
    one = contributions(explanation, records[0])
    assert len(one) == len(explanation.numeric) + len(explanation.categorical)
    assert f"{categorical_column}={records[0][categorical_column]}" in one
    assert contributions(explanation, records[-1])[f"{categorical_column}=never seen in training"] == 0.0


def test_trees_carry_no_explanation(telco: UseCase, rows: pd.DataFrame) -> None:
    # Given a random forest, When its explanation is asked, Then there is none to write
    assert linear_explanation(_fit(telco, rows, "random_forest"), "random_forest") is None
    assert explanation_of({"auc": 0.8}) is None


class _Registry:
    """Two registered versions of the group, as ListModelPackages and DescribeModelPackage answer them."""

    def __init__(self) -> None:
        self.described: list[str] = []

    def packages(self, group_name: str) -> list[dict[str, Any]]:
        return [
            {"ModelPackageVersion": v, "ModelPackageArn": f"arn:aws:sagemaker:::model-package/{group_name}/{v}"}
            for v in (2, 1)
        ]

    def describe(self, package_arn: str) -> dict[str, Any]:
        self.described.append(package_arn)
        version = package_arn.rsplit("/", 1)[1]
        uri = f"s3://lake/models/telco_churn/run-{version}/metrics.json"
        return {"ModelPackageArn": package_arn, "ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": uri}}}}


def _item(version: int, features: dict[str, Any]) -> ReviewItem:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return ReviewItem(
        usecase="telco_churn", item_id="i1", request_id="r1", index=0, variant="champion", model_version=version,
        score=0.5, threshold=0.45, features=features, predicted_at=now, created_at=now, reasons=(Reason.IN_BAND,),
        inclusion_probability=1.0, priority=1,
    )  # fmt: skip


def test_the_page_shows_a_linear_versions_contributions_largest_first(telco: UseCase, rows: pd.DataFrame) -> None:
    # Given version 1, a logistic regression, and version 2, a random forest, as the registry and lake hold them
    linear = _fit(telco, rows, "logistic_regression")
    store = InMemoryObjectStore()
    store.put_json("lake", "models/telco_churn/run-1/metrics.json", {
        "estimator": "logistic_regression", EXPLANATION: linear_explanation(linear, "logistic_regression"),
    })  # fmt: skip
    store.put_json("lake", "models/telco_churn/run-2/metrics.json", {"estimator": "random_forest"})
    registry = _Registry()
    explanations = RegistryExplanations(registry, store, "sluice-telco-churn")
    record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rows.iloc[0].to_dict().items()}
    # When the reviewer's page shows an item of each version
    found = explanations(_item(1, record))
    assert found is not None
    html = page.item_page(
        usecase="telco_churn", base="/api/v1/telco_churn/review", reviewer="ana", item=_item(1, record),
        now=datetime(2026, 12, 1, tzinfo=UTC), labels=["No", "Yes"], taxonomy=["correct"], contributions=found,
        estimator="logistic_regression",
    )  # fmt: skip
    forest = explanations(_item(2, record))
    # Then version 1's contributions are listed largest (in absolute value) first, and add up to the logit
    ordered = sorted(found, key=lambda name: -abs(found[name]))
    positions = [html.index(f"<td>{escape(name)}</td>") for name in ordered]
    assert positions == sorted(positions)
    expected_logit = linear.decision_function(feature_frame(pd.DataFrame([record]), telco.contract))[0]
    intercept = linear.named_steps["estimator"].intercept_[0]
    assert sum(found.values()) + intercept == pytest.approx(expected_logit, abs=1e-6)
    # And version 2 has none (the page says "not available for random_forest"); each version is read once
    assert forest is None
    explanations(_item(1, record))
    assert len(registry.described) == 2
