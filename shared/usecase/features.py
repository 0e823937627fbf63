"""The model's inputs, derived from the contract: the one definition training and scoring share.

The ONNX model takes one input per feature column, each of shape ``[N, 1]``: numeric columns as
``float32`` (a null is NaN), category, string and bool columns as strings (a null is ``""``,
booleans are ``"true"``/``"false"``). Timestamps and dates are not model features. Only numpy is
needed here, so the scoring path and the SageMaker inference code use it without scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shared.usecase.settings import NUMERIC_TYPES, ColumnType, Contract

MISSING_TEXT = ""
TEXT_TYPES = (ColumnType.CATEGORY, ColumnType.STRING, ColumnType.BOOL)


def numeric_features(contract: Contract) -> list[str]:
    return [c.name for c in contract.features if c.type in NUMERIC_TYPES]


def categorical_features(contract: Contract) -> list[str]:
    """Category, string and bool feature columns (timestamps and dates are not features of this model)."""
    return [c.name for c in contract.features if c.type in TEXT_TYPES]


def text_value(value: Any) -> str:
    """One categorical value as the model reads it: null → ``""``, booleans → ``"true"``/``"false"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_TEXT
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def numeric_value(value: Any) -> float:
    """One numeric value as the model reads it: null → NaN."""
    return math.nan if value is None else float(value)


def onnx_feed(records: Sequence[Mapping[str, Any]], contract: Contract) -> dict[str, np.ndarray]:
    """The ONNX inputs for a batch of records (JSON objects already validated against the contract)."""
    feed: dict[str, np.ndarray] = {
        name: np.array([numeric_value(r.get(name)) for r in records], dtype=np.float32).reshape(-1, 1)
        for name in numeric_features(contract)
    }
    for name in categorical_features(contract):
        feed[name] = np.array([text_value(r.get(name)) for r in records], dtype=object).reshape(-1, 1)
    return feed


def onnx_feed_from_columns(columns: Mapping[str, Sequence[Any]], contract: Contract) -> dict[str, np.ndarray]:
    """:func:`onnx_feed` from a validated batch's columns (``None`` where a record has no value), built per column."""
    feed: dict[str, np.ndarray] = {}
    for column in contract.features:
        if column.type in NUMERIC_TYPES:
            whole = column.type is ColumnType.INT and all(type(v) is int for v in column.allowed or ())
            feed[column.name] = _numeric_input(columns[column.name], whole=whole)
    for column in contract.features:
        if column.type not in TEXT_TYPES:
            continue
        name, values = column.name, columns[column.name]
        # validated: a category or string column holds str or None, a bool column bool or None
        if column.type is ColumnType.BOOL or (column.nullable and None in values):
            values = [text_value(v) for v in values]
        feed[name] = np.array(values, dtype=object).reshape(-1, 1)
    return feed


def _numeric_input(values: Sequence[Any], *, whole: bool) -> np.ndarray:
    """One numeric column as the model reads it: float64 first, as ``float(value)`` does, then float32 (the same
    rounding as :func:`onnx_feed`; numpy reads None as NaN). A ``whole`` column (validated: Python ints only)
    without nulls goes through int64, which numpy fills faster than float64 from Python ints (int64 → float64
    rounds as ``float(int)`` does)."""
    if whole:
        try:
            return np.array(values, dtype=np.int64).astype(np.float64).astype(np.float32).reshape(-1, 1)
        except (TypeError, OverflowError):
            pass  # a null, or an int past int64: the float64 path below reads both as float(value) would
    return np.array(values, dtype=np.float64).astype(np.float32).reshape(-1, 1)
