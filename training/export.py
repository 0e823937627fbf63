"""ONNX export of a trained pipeline, gated by parity with scikit-learn.

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
from training.model import categorical_features, numeric_features

PARITY_TOLERANCE = 1e-5
"""Largest absolute difference allowed between ONNX and scikit-learn probabilities on the holdout."""
PROBABILITIES_OUTPUT = "probabilities"
LABEL_OUTPUT = "label"


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


def to_onnx(pipeline: Pipeline, contract: Contract) -> bytes:
    """The fitted pipeline as a serialized ONNX model with :func:`onnx_inputs` (no ZipMap)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types: list[tuple[str, Any]] = [(n, FloatTensorType([None, 1])) for n in numeric_features(contract)]
    initial_types += [(n, StringTensorType([None, 1])) for n in categorical_features(contract)]
    estimator = pipeline.steps[-1][1]
    model = convert_sklearn(pipeline, initial_types=initial_types, options={id(estimator): {"zipmap": False}})
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
