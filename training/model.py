"""The model of a use case: preprocessing derived from its contract, then its configured estimator.

Numeric columns (int, float): median imputation, then standard scaling. Categorical columns
(category, string, bool): most-frequent imputation, then one-hot encoding that ignores values unseen
in training. The feature frame is what both scikit-learn and the ONNX model see (see
:mod:`training.export`): numeric values as float32-representable floats (NaN for null), text as
``str`` with ``""`` for null, booleans as ``"true"``/``"false"``.

Tree models get no scaling; XGBoost's trees also get the encoded features cast to float32 by the
pipeline itself (:class:`skl2onnx.sklapi.CastTransformer`), so the trained model and its ONNX graph
compare the very same float32 values with the float32 split thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import BaseEnsemble, ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import BaseDecisionTree, DecisionTreeClassifier

from shared.usecase.estimators import RESERVED_HYPERPARAMETERS, SUPPORTED_ESTIMATORS
from shared.usecase.features import MISSING_TEXT, categorical_features, numeric_features, text_value
from shared.usecase.settings import Contract, ModelSettings
from training.exceptions import ModelConfigError, TrainingDataError

XGBOOST = "xgboost"
"""XGBoost's classifier: imported only when a use case names it (the scikit-learn image has no xgboost)."""
XGBOOST_FIXED = MappingProxyType({"tree_method": "hist", "objective": "binary:logistic"})
"""What training sets on every XGBoost model itself (``device`` comes from :mod:`training.device`)."""

ESTIMATOR_CLASSES: Mapping[str, type[ClassifierMixin]] = MappingProxyType(
    {
        "logistic_regression": LogisticRegression,
        "random_forest": RandomForestClassifier,
        "extra_trees": ExtraTreesClassifier,
        "gradient_boosting": GradientBoostingClassifier,
        "decision_tree": DecisionTreeClassifier,
    }
)
"""Estimator name (:data:`shared.usecase.estimators.SUPPORTED_ESTIMATORS`) → its scikit-learn class."""


def estimator_class(name: str) -> type[ClassifierMixin]:
    """The class of estimator ``name``: scikit-learn's, or ``xgboost.XGBClassifier`` (imported now)."""
    if name == XGBOOST:
        from xgboost import XGBClassifier

        return cast(type[ClassifierMixin], XGBClassifier)
    return ESTIMATOR_CLASSES[name]


def is_xgboost(estimator: Any) -> bool:
    return type(estimator).__module__.split(".")[0] == XGBOOST


def estimator_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters the estimator takes (reserved ones, such as ``code_version``, removed)."""
    return {k: v for k, v in hyperparameters.items() if k not in RESERVED_HYPERPARAMETERS}


DEFAULT_RANDOM_STATE = 0
"""Seed of estimators that take one, unless the use case sets ``random_state``: training is reproducible."""


def make_estimator(settings: ModelSettings, *, device: str = "cpu") -> ClassifierMixin:
    """The configured estimator, its hyperparameters checked now (configuration time), not at fit.

    ``device`` is where an XGBoost model trains (``cuda`` or ``cpu``, :mod:`training.device`); other
    estimators ignore it. Raises :class:`ModelConfigError` for an unsupported estimator, an unknown
    hyperparameter or an invalid value (``C = -1``, ``n_estimators = "many"``, ``max_depth = -1``).
    """
    if settings.estimator not in SUPPORTED_ESTIMATORS:
        raise ModelConfigError(
            f"estimator {settings.estimator!r} is not supported; choose one of {sorted(SUPPORTED_ESTIMATORS)}"
        )
    params = estimator_hyperparameters(settings.hyperparameters)
    unknown = sorted(set(params) - SUPPORTED_ESTIMATORS[settings.estimator])
    if unknown:
        raise ModelConfigError(f"hyperparameters {unknown} are not accepted by {settings.estimator!r}")
    cls = estimator_class(settings.estimator)
    if "random_state" in cls().get_params():
        params.setdefault("random_state", DEFAULT_RANDOM_STATE)  # the same data and settings give the same model
    if settings.estimator == XGBOOST:
        return _xgboost(params, device)
    try:
        estimator = cls(**params)
        estimator._validate_params()  # scikit-learn's own constraint check
    except (TypeError, ValueError) as exc:
        raise ModelConfigError(f"{settings.estimator} hyperparameters {params} are invalid: {exc}") from exc
    return estimator


def _xgboost(params: dict[str, Any], device: str) -> ClassifierMixin:
    """An ``XGBClassifier`` on ``device``; its values proven by a one-tree fit on four rows on the CPU, since
    XGBoost checks them only when it trains."""
    from xgboost import XGBClassifier
    from xgboost.core import XGBoostError

    fixed = {**XGBOOST_FIXED, "validate_parameters": True}
    try:
        probe = XGBClassifier(**{**params, **fixed, "n_estimators": 1, "device": "cpu"})
        probe.fit(np.arange(8, dtype=np.float32).reshape(4, 2), np.array([0, 1, 0, 1]))
    except (TypeError, ValueError, XGBoostError) as exc:
        reason = " ".join(str(exc).split())[:500]
        raise ModelConfigError(f"{XGBOOST} hyperparameters {params} are invalid: {reason}") from exc
    return cast(ClassifierMixin, XGBClassifier(**params, **fixed, device=device))


def build_pipeline(contract: Contract, estimator: ClassifierMixin) -> Pipeline:
    """Preprocessing derived from the contract, then ``estimator``."""
    numeric, categorical = numeric_features(contract), categorical_features(contract)
    if not numeric and not categorical:
        raise ModelConfigError("the contract declares no numeric or categorical feature column")
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if not isinstance(estimator, BaseDecisionTree | BaseEnsemble) and not is_xgboost(estimator):
            # Trees need no scaling, and must not get it: they compare features in float32, and a scaled
            # value computed in float32 (ONNX) and in float64 (scikit-learn) can fall on either side of a
            # split threshold — the parity gate then fails at random.
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        encoded = Pipeline(
            [
                ("impute", SimpleImputer(missing_values=MISSING_TEXT, strategy="most_frequent")),
                ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", encoded, categorical))
    stages: list[tuple[str, Any]] = [("features", ColumnTransformer(transformers))]
    if is_xgboost(estimator):
        from skl2onnx.sklapi import CastTransformer

        stages.append(("float32", CastTransformer(dtype=np.float32)))
    return Pipeline([*stages, ("estimator", estimator)])


def feature_frame(rows: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The model's input: the feature columns of ``rows``, typed as the ONNX model receives them."""
    columns: dict[str, Any] = {}
    for name in numeric_features(contract):
        values = rows[name] if name in rows else pd.Series(np.nan, index=rows.index)
        columns[name] = pd.to_numeric(values, errors="coerce").astype(np.float32).astype(np.float64)
    for name in categorical_features(contract):
        values = rows[name] if name in rows else pd.Series(None, index=rows.index, dtype=object)
        columns[name] = [text_value(v) for v in values.to_numpy(dtype=object)]
    return pd.DataFrame(columns, index=rows.index).astype(dict.fromkeys(categorical_features(contract), object))


def label_vector(rows: pd.DataFrame, contract: Contract) -> np.ndarray:
    """1 where the label is the contract's positive class, else 0."""
    if contract.label not in rows:
        raise TrainingDataError(f"the label column {contract.label!r} is missing")
    labels = rows[contract.label]
    if labels.isna().any():
        raise TrainingDataError(f"the label column {contract.label!r} has nulls")
    return (labels.to_numpy(dtype=object) == contract.positive_class).astype(np.int64)


def linear_explanation(pipeline: Pipeline, estimator: str) -> dict[str, Any] | None:
    """What :mod:`shared.review.explanation` needs to split a linear model's logit per input column: the intercept,
    and per column its imputed value, its scaler's mean and scale (numeric) or its one-hot categories (categorical),
    with their coefficients. None for other estimators (no additive decomposition)."""
    model = pipeline.named_steps["estimator"]
    if not isinstance(model, LogisticRegression):
        return None
    features: ColumnTransformer = pipeline.named_steps["features"]
    coefficients = iter(float(c) for c in model.coef_[0])
    numeric: list[dict[str, Any]] = []
    categorical: list[dict[str, Any]] = []
    for name, transformer, columns in features.transformers_:
        if name == "numeric":
            impute, scale = transformer.named_steps["impute"], transformer.named_steps["scale"]
            numeric += [
                {
                    "column": column,
                    "coefficient": next(coefficients),
                    "fill": float(impute.statistics_[i]),
                    "mean": float(scale.mean_[i]),
                    "scale": float(scale.scale_[i]),
                }
                for i, column in enumerate(columns)
            ]
        elif name == "categorical":
            impute, one_hot = transformer.named_steps["impute"], transformer.named_steps["one_hot"]
            categorical += [
                {
                    "column": column,
                    "fill": str(impute.statistics_[i]),
                    "coefficients": {str(category): next(coefficients) for category in one_hot.categories_[i]},
                }
                for i, column in enumerate(columns)
            ]
    if next(coefficients, None) is not None:
        raise ModelConfigError("the model has more coefficients than its encoded features")
    return {
        "kind": "linear",
        "estimator": estimator,
        "intercept": float(model.intercept_[0]),
        "numeric": numeric,
        "categorical": categorical,
    }
