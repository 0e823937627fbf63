"""What drove a linear model's score: per-feature contributions, coefficient times standardized value.

Training writes a :class:`LinearExplanation` into a linear model's ``metrics.json`` (key :data:`EXPLANATION`;
see :func:`training.model.linear_explanation`): the intercept and, per input column after encoding, what the
model's preprocessing does to it. A numeric column is imputed (``fill``: the training median), then standardized
(``(x - mean) / scale``); a categorical column is imputed (``fill``: the most frequent value) and one-hot encoded
(a value unseen in training encodes to zeros). :func:`contributions` redoes that for one record and multiplies
by the coefficients: one contribution per input column, in log-odds, so that the intercept plus their sum is
the model's logit (``decision_function``). A categorical column's contribution is its one category's
coefficient, named ``column=value``.

Other estimators have no such additive decomposition here: their ``metrics.json`` has no explanation, and the
page says "not available for <estimator>".
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

EXPLANATION = "linear_explanation"
"""The key of a linear model's explanation in its ``metrics.json``."""


class NumericTerm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    coefficient: float
    fill: float
    """The imputed value of a missing input (the training median)."""
    mean: float
    scale: float


class CategoricalTerm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    fill: str
    """The imputed value of a missing input (the most frequent training value)."""
    coefficients: dict[str, float]
    """Each category seen in training → the coefficient of its one-hot column."""


class LinearExplanation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["linear"] = "linear"
    estimator: str
    intercept: float
    numeric: tuple[NumericTerm, ...] = ()
    categorical: tuple[CategoricalTerm, ...] = ()


def explanation_of(metrics: Mapping[str, Any]) -> LinearExplanation | None:
    """The explanation a ``metrics.json`` document carries, or None (a non-linear estimator, an older model)."""
    document = metrics.get(EXPLANATION)
    return None if document is None else LinearExplanation.model_validate(document)


MISSING_TEXT = ""


def _text(value: Any) -> str:
    """A categorical value as the model reads it (:func:`shared.usecase.features.text_value` on JSON values, without
    importing numpy into the review functions): null → ``""``, booleans → ``"true"``/``"false"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_float32(value: Any) -> float:
    """The value as the model receives it: float32-representable (NaN for null or unreadable)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    if math.isnan(number) or math.isinf(number):
        return number
    return float(struct.unpack("f", struct.pack("f", number))[0])


def contributions(explanation: LinearExplanation, features: Mapping[str, Any]) -> dict[str, float]:
    """One record's contribution per input column (see the module); ``intercept + sum`` is its logit."""
    found: dict[str, float] = {}
    for term in explanation.numeric:
        value = _as_float32(features.get(term.column))
        if math.isnan(value):
            value = term.fill
        found[term.column] = term.coefficient * (value - term.mean) / term.scale
    for categorical in explanation.categorical:
        text = _text(features.get(categorical.column))
        if text == MISSING_TEXT:
            text = categorical.fill
        found[f"{categorical.column}={text}"] = categorical.coefficients.get(text, 0.0)
    return found


def logit(explanation: LinearExplanation, features: Mapping[str, Any]) -> float:
    return explanation.intercept + sum(contributions(explanation, features).values())
