"""The model: estimators configured from the use case, rejected at configuration time; ONNX parity gate."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from pydantic import ValidationError

from shared.usecase.estimators import SUPPORTED_ESTIMATORS
from shared.usecase.settings import ModelSettings, UseCase
from tests.unit.conftest import telco_frame
from training.exceptions import ModelConfigError, ParityError
from training.export import check_parity, export_model, onnx_feed, onnx_probabilities, to_onnx
from training.model import (
    ESTIMATOR_CLASSES,
    XGBOOST,
    build_pipeline,
    estimator_class,
    feature_frame,
    label_vector,
    make_estimator,
)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return telco_frame().sample(800, random_state=3)


def _fit(usecase: UseCase, rows: pd.DataFrame, settings: ModelSettings | None = None) -> Any:
    pipeline = build_pipeline(usecase.contract, make_estimator(settings or usecase.model))
    return pipeline.fit(feature_frame(rows, usecase.contract), label_vector(rows, usecase.contract))


def test_the_training_registry_and_the_shared_constant_agree() -> None:
    # Given the names Lambda code validates use cases against, and the classes training builds
    # Then they name the same estimators, and every accepted hyperparameter is the class's own
    assert set(ESTIMATOR_CLASSES) | {XGBOOST} == set(SUPPORTED_ESTIMATORS)
    for name in SUPPORTED_ESTIMATORS:
        assert SUPPORTED_ESTIMATORS[name] <= set(estimator_class(name)().get_params()), name


@pytest.mark.parametrize("estimator", sorted(SUPPORTED_ESTIMATORS))
def test_every_supported_estimator_trains_and_exports_within_parity(
    estimator: str, telco: UseCase, sample: pd.DataFrame
) -> None:
    # Given the Telco use case configured with each supported estimator (small, to stay fast)
    small = {"n_estimators": 5, "max_depth": 4} if "n_estimators" in SUPPORTED_ESTIMATORS[estimator] else {}
    settings = ModelSettings(estimator=estimator, hyperparameters=small)
    pipeline = _fit(telco, sample, settings)

    # When it is exported to ONNX
    exported = export_model(pipeline, telco.contract, feature_frame(sample, telco.contract))

    # Then ONNX agrees with scikit-learn within the tolerance
    assert exported.parity_max_abs_diff <= 1e-5


def test_an_unknown_estimator_is_rejected_when_the_use_case_is_read() -> None:
    # When / Then a use case naming an estimator Sluice cannot export fails validation, listing the choices
    with pytest.raises(ValidationError, match="not supported; choose one of"):
        ModelSettings(estimator="xgboost_magic")


def test_an_unknown_hyperparameter_is_rejected_when_the_use_case_is_read() -> None:
    with pytest.raises(ValidationError, match=r"\['n_trees'\] are not accepted by 'random_forest'"):
        ModelSettings(estimator="random_forest", hyperparameters={"n_trees": 10})


@pytest.mark.parametrize(
    ("estimator", "hyperparameters"),
    [("logistic_regression", {"C": -1.0}), ("random_forest", {"n_estimators": "many"})],
)
def test_an_invalid_hyperparameter_value_is_rejected_before_training(
    estimator: str, hyperparameters: dict[str, Any]
) -> None:
    # Given settings whose names are right but whose values are not
    settings = ModelSettings(estimator=estimator, hyperparameters=hyperparameters)
    # When / Then building the estimator (configuration time) refuses them
    with pytest.raises(ModelConfigError, match="invalid"):
        make_estimator(settings)


def test_parity_fails_against_a_different_model(telco: UseCase, sample: pd.DataFrame) -> None:
    # Given an ONNX export of one model and a second model trained with a much stronger penalty
    model = to_onnx(_fit(telco, sample), telco.contract)
    other = _fit(telco, sample, ModelSettings(hyperparameters={"C": 0.001}))

    # When parity is checked against the other model
    # Then the gate fails, carrying the largest difference
    with pytest.raises(ParityError) as failure:
        check_parity(other, model, feature_frame(sample, telco.contract), telco.contract)
    assert failure.value.max_abs_diff > 1e-3
    assert "parity failed" in str(failure.value)


def test_parity_fails_when_the_onnx_weights_are_perturbed(telco: UseCase, sample: pd.DataFrame) -> None:
    # Given a model's ONNX graph with one coefficient nudged by 0.01
    pipeline = _fit(telco, sample)
    graph = onnx.load_from_string(to_onnx(pipeline, telco.contract))
    linear = next(n for n in graph.graph.node if n.op_type == "LinearClassifier")
    coefficients = next(a for a in linear.attribute if a.name == "coefficients")
    coefficients.floats[1] += 0.01
    features = feature_frame(sample, telco.contract)

    # When / Then parity fails, though the perturbed model still runs
    with pytest.raises(ParityError) as failure:
        check_parity(pipeline, graph.SerializeToString(), features, telco.contract)
    assert 1e-5 < failure.value.max_abs_diff < 0.1


def test_the_onnx_model_takes_one_named_input_per_feature_and_reads_nulls(telco: UseCase, sample: pd.DataFrame) -> None:
    # Given an exported model
    pipeline = _fit(telco, sample)
    exported = export_model(pipeline, telco.contract, feature_frame(sample, telco.contract))
    # Then its inputs are the contract's features, float or string
    session_inputs = {i.name: i.type for i in exported.inputs}
    assert set(session_inputs) == {c.name for c in telco.contract.features}
    assert session_inputs["tenure"] == "tensor(float)"
    assert session_inputs["contract"] == "tensor(string)"
    # And a record with a null number and a null category scores like scikit-learn scores it
    record = sample.head(1).copy()
    record["total_charges"] = np.nan
    record["payment_method"] = None
    features = feature_frame(record, telco.contract)
    onnx_p = onnx_probabilities(exported.model, onnx_feed(features, telco.contract))
    assert np.max(np.abs(onnx_p - pipeline.predict_proba(features))) <= 1e-5
