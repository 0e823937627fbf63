"""One window's columns read once: each column's nulls, distinct values and masks computed once and reused.

The monitor asks the same questions of a column many times per run: which rows are null (data quality), which
categories were never seen (data quality, twice), how many rows fall in each category (drift), which rows hold a
segment value (one mask per population, for every served model), which rows belong to a model version. Asked of
1M rows of Python strings, each answer was a conversion of the whole column to text; here a column is encoded
once — an integer code per row and its distinct values — and every answer is a small table over the distinct
values, gathered by the codes.

The answers are exactly what the element-wise definitions give: a row is null when it is ``None`` (object and
text columns) or NaN (float columns); a value's text is numpy's ``astype(str)`` spelling; a segment key is
:func:`~shared.monitoring.segments.segment_value`. Object columns holding anything but ``str`` and ``None``
(never what the log reader produces) are encoded from those element-wise definitions directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from shared.monitoring.segments import segment_value, segment_values
from shared.monitoring.window import PredictionColumns

_NONE = np.array(None, dtype=object)
_NUMBER_KINDS = "fiub"


def element_nulls(column: np.ndarray) -> np.ndarray:
    """The null rows of a column by its definition: NaN in a float column, ``None`` in any other, never in ints."""
    values = np.asarray(column)
    if values.dtype.kind in "fc":
        return np.isnan(values)
    if values.dtype.kind in "iub":
        return np.zeros(values.size, dtype=bool)
    return np.asarray(np.equal(values.astype(object), _NONE), dtype=bool)


class EncodedColumn:
    """A column as an integer code per row and a table per distinct value: its text, whether it is null, and its
    segment key (computed on first use: only segment columns need it)."""

    def __init__(self, codes: np.ndarray, keys: list[Any], text: np.ndarray, null: np.ndarray) -> None:
        self.codes = codes
        """int64 per row: the index of its distinct value"""
        self.keys = keys
        """the distinct values (as Python objects)"""
        self.text = text
        """object per distinct value: its ``astype(str)`` spelling"""
        self.null = null
        """bool per distinct value"""
        self._segment: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.keys)

    @property
    def segment(self) -> np.ndarray:
        """object per distinct value: its :func:`segment_value`."""
        if self._segment is None:
            self._segment = np.asarray([segment_value(key) for key in self.keys], dtype=object).reshape(-1)
        return self._segment

    def counts(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Rows per distinct value (among ``rows``, a boolean mask, when given)."""
        codes = self.codes if rows is None else self.codes[rows]
        return np.bincount(codes, minlength=self.size)

    def counts_by_text(self, rows: np.ndarray | None = None) -> dict[str, int]:
        """Non-null rows per text spelling (among ``rows``), in ascending order of the text."""
        totals: dict[str, int] = {}
        for text, null, count in zip(self.text.tolist(), self.null.tolist(), self.counts(rows).tolist(), strict=True):
            if not null and count:
                totals[text] = totals.get(text, 0) + count
        return dict(sorted(totals.items()))


def encode(column: np.ndarray) -> EncodedColumn:
    """Encode a column once (see the module docstring for what each table means)."""
    values = np.asarray(column).reshape(-1)
    if values.dtype.kind in _NUMBER_KINDS:
        found, inverse = np.unique(values, return_inverse=True)  # NaNs collapse to one value
        null = np.isnan(found) if found.dtype.kind == "f" else np.zeros(found.size, dtype=bool)
        return EncodedColumn(
            inverse.reshape(-1).astype(np.int64), found.tolist(), found.astype(str).astype(object), null
        )
    items = values.tolist()
    keys = list(dict.fromkeys(items))  # distinct values in order of appearance (one C-level pass)
    if all(key is None or type(key) is str for key in keys):
        index = {key: i for i, key in enumerate(keys)}
        codes = np.fromiter(map(index.__getitem__, items), dtype=np.int64, count=len(items))
        text = np.asarray(["None" if key is None else key for key in keys], dtype=object).reshape(-1)
        return EncodedColumn(codes, keys, text, np.asarray([key is None for key in keys], dtype=bool))
    return _encode_by_definition(values)


def _encode_by_definition(values: np.ndarray) -> EncodedColumn:
    """Any other column: one distinct value per (null, text, segment key) of the element-wise definitions."""
    triples = zip(
        element_nulls(values).tolist(), values.astype(str).tolist(), segment_values(values).tolist(), strict=True
    )
    items = list(triples)
    keys = list(dict.fromkeys(items))
    index = {key: i for i, key in enumerate(keys)}
    codes = np.fromiter(map(index.__getitem__, items), dtype=np.int64, count=len(items))
    encoded = EncodedColumn(
        codes,
        [key[1] for key in keys],
        np.asarray([key[1] for key in keys], dtype=object).reshape(-1),
        np.asarray([key[0] for key in keys], dtype=bool),
    )
    encoded._segment = np.asarray([key[2] for key in keys], dtype=object).reshape(-1)
    return encoded


class WindowColumns:
    """The columns of one set of rows (a window's predictions, or the predictions its labels answer), each
    encoded once and every mask asked of them kept: model-version rows, null rows, segment rows."""

    def __init__(self, data: PredictionColumns) -> None:
        self.data = data
        self.rows = len(data)
        self._encoded: dict[str, EncodedColumn] = {}
        self._nulls: dict[str, np.ndarray] = {}
        self._versions: dict[str, np.ndarray] = {}
        self._segments: dict[tuple[str, str], np.ndarray] = {}

    @property
    def features(self) -> Mapping[str, np.ndarray]:
        return self.data.features

    def column(self, name: str) -> np.ndarray:
        """The feature's column; a feature absent from the log (an older log format) reads as all null."""
        column = self.data.features.get(name)
        if column is None:
            return np.full(self.rows, None, dtype=object)
        return np.asarray(column)

    def encoded(self, name: str) -> EncodedColumn:
        if name not in self._encoded:
            self._encoded[name] = encode(self.column(name))
        return self._encoded[name]

    def nulls(self, name: str) -> np.ndarray:
        """The feature's null rows (:func:`element_nulls`)."""
        if name not in self._nulls:
            column = self.column(name)
            if column.dtype.kind in "fciub":
                self._nulls[name] = element_nulls(column)
            else:
                encoded = self.encoded(name)
                self._nulls[name] = encoded.null[encoded.codes]
        return self._nulls[name]

    @cached_property
    def _version_codes(self) -> EncodedColumn:
        return encode(np.asarray(self.data.model_version))

    def version_rows(self, model_version: str) -> np.ndarray:
        """The rows of a model version (versions compared as text)."""
        key = str(model_version)
        if key not in self._versions:
            if self.rows == 0:
                self._versions[key] = np.zeros(0, dtype=bool)
            else:
                versions = self._version_codes
                self._versions[key] = np.asarray(versions.text == key, dtype=bool)[versions.codes]
        return self._versions[key]

    def version_counts(self) -> dict[str, int]:
        """Rows per model version, as text, in ascending order."""
        if self.rows == 0:
            return {}
        versions = self._version_codes
        totals: dict[str, int] = {}
        for text, count in zip(versions.text.tolist(), versions.counts().tolist(), strict=True):
            if count:
                totals[text] = totals.get(text, 0) + count
        return dict(sorted(totals.items()))

    def segment_rows(self, column: str, value: str) -> np.ndarray:
        """The rows whose ``column`` is spelled ``value`` (:func:`segment_value`); none when the column is absent."""
        if (column, value) not in self._segments:
            if column not in self.data.features:
                rows = np.zeros(self.rows, dtype=bool)
            else:
                encoded = self.encoded(column)
                rows = np.asarray(encoded.segment == value, dtype=bool)[encoded.codes]
            self._segments[column, value] = rows
        return self._segments[column, value]
