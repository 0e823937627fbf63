"""Segment values as text: the one spelling training's baseline and the monitor key segments by.

A declared segment column (``contract.segments``) holds ints, floats, booleans or text; the baseline and the
monitor's report key its values by :func:`segment_value`, whichever way the value arrived (a holdout Parquet
column, where a nullable int column reads as floats; or a JSON prediction log record).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NULL_SEGMENT = "null"
"""The segment of rows whose segment column is null."""


def segment_value(value: Any) -> str:
    """``None``/NaN → ``"null"``, booleans → ``"true"``/``"false"``, integral floats → ``"1"`` (not ``"1.0"``)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # a numpy scalar
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NULL_SEGMENT
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def segment_values(column: Any) -> np.ndarray:
    """:func:`segment_value` of every entry of a column (an object array of ``str``), computed once per distinct
    value: a float column's NaN is ``"null"``, ``3.0`` is ``"3"``; an object column's None is ``"null"``."""
    values = np.asarray(column)
    if values.size == 0:
        return np.empty(0, dtype=object)
    if values.dtype.kind in "fiub":
        found, inverse = np.unique(values, return_inverse=True)  # NaNs collapse to one value (numpy >= 1.21)
        keys = np.asarray([segment_value(v) for v in found], dtype=object)
        return keys[inverse.reshape(-1)]
    spell = np.frompyfunc(segment_value, 1, 1)
    return np.asarray(spell(values.astype(object)), dtype=object)
