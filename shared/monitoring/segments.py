"""Segment values as text: the one spelling training's baseline and the monitor key segments by.

A declared segment column (``contract.segments``) holds ints, floats, booleans or text; the baseline and the
monitor's report key its values by :func:`segment_value`, whichever way the value arrived (a holdout Parquet
column, where a nullable int column reads as floats; or a JSON prediction log record).
"""

from __future__ import annotations

import math
from typing import Any

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
