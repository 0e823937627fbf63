"""A column encoded once answers exactly what the element-wise definitions answer, whatever the column holds."""

from __future__ import annotations

import numpy as np
import pytest

from shared.monitoring.columns import WindowColumns, element_nulls, encode
from shared.monitoring.segments import segment_values
from shared.monitoring.window import PredictionColumns

COLUMNS = {
    "text with nulls": np.array(["a", None, "b", "a", None, "c"], dtype=object),
    "fixed-width text": np.array(["x", "y", "x", "z", "x", "y"]),
    "floats with NaN": np.array([1.0, np.nan, 2.5, 1.0, 3.0, np.nan]),
    "ints": np.array([3, 1, 3, 2, 2, 1]),
    "booleans": np.array([True, False, True, True, False, False]),
    "mixed objects": np.array([1, True, 1.0, "1", None, float("nan")], dtype=object),
    "empty": np.empty(0, dtype=object),
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_an_encoded_column_gives_each_row_its_null_text_and_segment_key(name: str) -> None:
    # Given a column
    column = COLUMNS[name]

    # When it is encoded once
    encoded = encode(column)

    # Then gathering the per-value tables by the codes gives the element-wise definitions
    assert encoded.null[encoded.codes].tolist() == element_nulls(column).tolist()
    assert encoded.segment[encoded.codes].tolist() == segment_values(column).tolist()
    present = ~element_nulls(column)
    assert encoded.text[encoded.codes][present].tolist() == column[present].astype(str).tolist()


def test_window_columns_count_versions_and_mask_segments_as_text() -> None:
    # Given traffic of two model versions logged as ints, with a segment column holding nulls
    data = PredictionColumns(
        score=np.array([0.1, 0.2, 0.3, 0.4]),
        model_version=np.array([7, 8, 7, 7]),
        variant=np.array(["champion", "challenger", "champion", "champion"], dtype=object),
        features={"plan": np.array(["basic", None, "plus", "basic"], dtype=object)},
    )

    # When its columns are read once
    columns = WindowColumns(data)

    # Then versions compare as text, segments by their key, and an absent column selects nothing
    assert columns.version_rows("7").tolist() == [True, False, True, True]
    assert columns.version_counts() == {"7": 3, "8": 1}
    assert columns.segment_rows("plan", "basic").tolist() == [True, False, False, True]
    assert columns.segment_rows("plan", "null").tolist() == [False, True, False, False]
    assert columns.segment_rows("region", "north").tolist() == [False] * 4
    assert columns.nulls("plan").tolist() == [False, True, False, False]
    assert columns.nulls("region").tolist() == [True] * 4
