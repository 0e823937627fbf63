"""ONNX export of a trained pipeline, gated by parity with the trained model (scikit-learn or XGBoost).

scikit-learn's steps convert with skl2onnx; an XGBoost classifier with onnxmltools' converter,
registered into skl2onnx's pipeline conversion (:func:`register_xgboost_converter`).

The ONNX input signature — what the scoring function (onnxruntime only) feeds — is one named input
per contract feature column, each of shape ``[N, 1]``:

* numeric columns (int, float): ``tensor(float)``; a null is ``NaN`` (imputed by the model);
* categorical columns (category, string, bool): ``tensor(string)``; a null is ``""``, booleans are
  ``"true"`` / ``"false"``.

So a JSON record ``r`` becomes ``{name: np.array([[float(r[name]) if r[name] is not None else nan]],
np.float32)}`` for a numeric column and ``{name: np.array([[str(r[name]) or ""]], object)}`` for a
categorical one. Outputs: ``label`` (int64, 1 for the positive class) and ``probabilities``
(float32, ``[N, 2]``; column 1 is the positive class's probability; no ZipMap). The signature is
recorded as ``onnx_inputs`` in metrics.json and lineage.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.pipeline import Pipeline

from shared.usecase.settings import Contract
from training.exceptions import ParityError
from training.model import categorical_features, is_xgboost, numeric_features

PARITY_TOLERANCE = 1e-5
"""Largest absolute difference allowed between ONNX and scikit-learn probabilities on the holdout."""
PROBABILITIES_OUTPUT = "probabilities"
LABEL_OUTPUT = "label"
ONNX_ML_DOMAIN = "ai.onnx.ml"
XGBOOST_ONNX_ML_OPSET = 3
"""onnxmltools' XGBoost converter writes ``TreeEnsembleClassifier`` of ``ai.onnx.ml`` 3 (skl2onnx refuses to
mix it with its newer default)."""


class OnnxInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    """``tensor(float)`` or ``tensor(string)``."""
    shape: tuple[str | int, ...] = ("N", 1)


class OnnxExport(BaseModel):
    """A model exported to ONNX that passed the parity gate."""

    model_config = ConfigDict(frozen=True)

    model: bytes
    inputs: tuple[OnnxInput, ...]
    parity_max_abs_diff: float
    parity_rows: int
    tolerance: float


def onnx_inputs(contract: Contract) -> tuple[OnnxInput, ...]:
    numeric = [OnnxInput(name=n, type="tensor(float)") for n in numeric_features(contract)]
    return (*numeric, *(OnnxInput(name=n, type="tensor(string)") for n in categorical_features(contract)))


def onnx_feed(features: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """The ONNX inputs of a feature frame (:func:`training.model.feature_frame`)."""
    feed = {n: features[n].to_numpy(np.float32).reshape(-1, 1) for n in numeric_features(contract)}
    feed.update({n: features[n].to_numpy(object).reshape(-1, 1) for n in categorical_features(contract)})
    return feed


def register_xgboost_converter() -> None:
    """Teach skl2onnx's pipeline converter ``xgboost.XGBClassifier``, with onnxmltools' converter (the
    documented pattern: ``update_registered_converter`` with the linear classifier's output shapes)."""
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from xgboost import XGBClassifier

    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


def to_onnx(pipeline: Pipeline, contract: Contract) -> bytes:
    """The fitted pipeline as a serialized ONNX model with :func:`onnx_inputs` (no ZipMap)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types: list[tuple[str, Any]] = [(n, FloatTensorType([None, 1])) for n in numeric_features(contract)]
    initial_types += [(n, StringTensorType([None, 1])) for n in categorical_features(contract)]
    estimator = pipeline.steps[-1][1]
    target_opset: dict[str, int] | None = None
    if is_xgboost(estimator):
        from skl2onnx import get_latest_tested_opset_version

        register_xgboost_converter()
        target_opset = {"": get_latest_tested_opset_version(), ONNX_ML_DOMAIN: XGBOOST_ONNX_ML_OPSET}
    model = convert_sklearn(
        pipeline,
        initial_types=initial_types,
        options={id(estimator): {"zipmap": False}},
        target_opset=target_opset,
    )
    return model.SerializeToString()


def onnx_probabilities(model: bytes, feed: dict[str, np.ndarray]) -> np.ndarray:
    """The positive-class probabilities ONNX Runtime gives (``[N, 2]``)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (probabilities,) = session.run([PROBABILITIES_OUTPUT], feed)
    return np.asarray(probabilities, dtype=np.float64)


def parity_max_abs_diff(pipeline: Pipeline, model: bytes, features: pd.DataFrame, contract: Contract) -> float:
    """The largest absolute difference between scikit-learn's and ONNX Runtime's probabilities."""
    expected = pipeline.predict_proba(features)
    actual = onnx_probabilities(model, onnx_feed(features, contract))
    if actual.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(actual - expected))) if len(features) else 0.0


def check_parity(
    pipeline: Pipeline, model: bytes, features: pd.DataFrame, contract: Contract, *, tolerance: float = PARITY_TOLERANCE
) -> float:
    """The parity figure; raises :class:`ParityError` (carrying it) when it exceeds ``tolerance``."""
    difference = parity_max_abs_diff(pipeline, model, features, contract)
    if not difference <= tolerance:  # NaN fails too
        raise ParityError(difference, tolerance)
    return difference


def export_model(
    pipeline: Pipeline, contract: Contract, holdout: pd.DataFrame, *, tolerance: float = PARITY_TOLERANCE
) -> OnnxExport:
    """Export to ONNX and check parity on the holdout features; raise :class:`ParityError` if it fails."""
    model = to_onnx(pipeline, contract)
    difference = check_parity(pipeline, model, holdout, contract, tolerance=tolerance)
    return OnnxExport(
        model=model,
        inputs=onnx_inputs(contract),
        parity_max_abs_diff=difference,
        parity_rows=len(holdout),
        tolerance=tolerance,
    )
