"""JSON Lines built column by column: each column's values encoded once, the lines joined by Arrow.

A line is a template of constant parts (keys, shared values) and columns, each column encoded to one JSON
text per row (:func:`json_texts`): numbers and booleans as msgspec encodes their list (the texts cut at the
commas, vectorized), strings as msgspec encodes each distinct value (dictionary-encoded, then taken), other
types value by value. ``pyarrow.compute.binary_join_element_wise`` then writes every line in one pass, so no
Python object is made per row and the bytes are the ones msgspec writes for the same row as a dict.

A column of few distinct values (:func:`column_texts`) stays coded (:class:`Coded`: the texts of its
distinct values and each row's index into them) until :func:`join_lines`, which folds the constants around it
into its texts and merges neighbouring coded columns (their texts' products, while at most
:data:`MERGE_LIMIT`), so a line of twenty columns is joined from a handful of parts: the join costs about the
same per part, whatever the part holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_COMMA = ord(",")
_ENCODER = msgspec.json.Encoder()

MERGE_LIMIT = 1024
"""Neighbouring coded columns are merged while the product of their distinct texts is at most this, and at most
one text per :data:`MERGE_SHARE` rows (a text made costs about what a join part costs for that many rows)."""
MERGE_SHARE = 16
CODED_SHARE = 4
"""A number or bool column is coded when it holds at most one distinct value per this many rows."""


@dataclass(frozen=True)
class Coded:
    """A column's JSON texts as its distinct texts and, per row, the index of its text."""

    texts: list[str]
    indices: np.ndarray
    """int64, one a row."""

    def around(self, before: bytes, after: bytes) -> Coded:
        """The same column with constants before and after each text."""
        first, last = before.decode(), after.decode()
        return Coded([first + text + last for text in self.texts], self.indices)

    def then(self, other: Coded) -> Coded:
        """This column's text followed by ``other``'s, as one coded column (their texts' product)."""
        width = len(other.texts)
        texts = [first + second for first in self.texts for second in other.texts]
        return Coded(texts, self.indices * width + other.indices)

    def array(self) -> pa.Array:
        return pa.array(self.texts, pa.large_string()).take(pa.array(self.indices))


Part: TypeAlias = bytes | pa.Array | Coded
"""A part of a line: a constant (the same bytes on every line), a column of JSON texts (one per line), or a
coded column."""


def constant(value: object) -> bytes:
    """The JSON text of one value (a key, a shared field)."""
    return _ENCODER.encode(value)


def json_texts(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each value's JSON text, as ``msgspec.json.encode`` writes it (a null as ``null``), as a large string array."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    kind = array.type
    if pa.types.is_integer(kind):  # Arrow writes an integer as JSON does
        return pc.cast(array, pa.large_string()).fill_null("null")
    if pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return _cut_list(_ENCODER.encode(array.to_pylist()), len(array))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        encoded = array if pa.types.is_dictionary(kind) else array.dictionary_encode()
        distinct = [_ENCODER.encode(v) for v in encoded.dictionary.to_pylist()]
        texts = pa.array([*distinct, b"null"], pa.binary()).cast(pa.large_string())
        return texts.take(encoded.indices.fill_null(len(distinct)))
    return pa.array([_ENCODER.encode(v) for v in array.to_pylist()], pa.binary()).cast(pa.large_string())


def column_texts(values: pa.Array | pa.ChunkedArray) -> pa.Array | Coded:
    """:func:`json_texts` of a column, kept coded when it is text or holds few distinct numbers or bools."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        encoded = array if pa.types.is_dictionary(kind) else array.dictionary_encode()
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_float64(kind):
        # floats as their bits: the hash of 0.0 and -0.0 (written differently) must differ
        bits = array.view(pa.int64()) if pa.types.is_float64(kind) else array
        encoded = bits.dictionary_encode()
        if len(encoded.dictionary) * CODED_SHARE > len(array):
            return json_texts(array)
        if bits is not array:
            encoded = pa.DictionaryArray.from_arrays(encoded.indices, encoded.dictionary.view(kind))
    else:
        return json_texts(array)
    distinct = [_ENCODER.encode(v).decode() for v in encoded.dictionary.to_pylist()]
    indices = encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False).astype(np.int64)
    return Coded([*distinct, "null"], indices)


def numbers_texts(values: np.ndarray) -> pa.Array:
    """The JSON text of each number of a numpy array (NaN as ``null``, as msgspec writes it)."""
    return _cut_list(_ENCODER.encode(values.tolist()), len(values))


def _cut_list(encoded: bytes, count: int) -> pa.Array:
    """``[a,b,c]`` (texts without commas) → the string array ``a``, ``b``, ``c`` (no copy per value)."""
    if count == 0:
        return pa.array([], pa.large_string())
    data = np.frombuffer(encoded, dtype=np.uint8)
    commas = np.flatnonzero(data == _COMMA)
    if len(commas) != count - 1:
        raise ValueError(f"{count} values encoded with {len(commas)} commas: a text holds a comma")
    keep = np.ones(len(data), dtype=bool)
    keep[0] = keep[-1] = False
    keep[commas] = False
    starts = np.empty(count + 1, dtype=np.int64)
    starts[0] = 1
    starts[1:count] = commas + 1
    # value i starts after the "[" and the i commas before it; the last ends before the "]"
    offsets = starts - 1 - np.arange(count + 1, dtype=np.int64)
    offsets[count] = len(data) - 2 - (count - 1)
    texts = np.ascontiguousarray(data[keep])
    return pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(texts))


def join_lines(parts: Sequence[Part], rows: int) -> bytes | memoryview:
    """The lines ``parts[0] + parts[1] + ...`` for each of ``rows`` rows (constants repeated on every line).

    The lines are a view of Arrow's buffer (no copy); ``b"".join`` them, or ``bytes()`` one.
    """
    if rows == 0:
        return b""
    merged: list[Part] = []
    limit = min(MERGE_LIMIT, rows // MERGE_SHARE)
    for part in parts:
        last = merged[-1] if merged else None
        if isinstance(part, bytes) and isinstance(last, bytes):
            merged[-1] = last + part
        elif isinstance(part, bytes) and isinstance(last, Coded):
            merged[-1] = last.around(b"", part)
        elif isinstance(part, Coded) and isinstance(last, bytes):
            merged[-1] = part.around(last, b"")
        elif isinstance(part, Coded) and isinstance(last, Coded) and len(last.texts) * len(part.texts) <= limit:
            merged[-1] = last.then(part)
        else:
            merged.append(part)
    if not any(isinstance(p, pa.Array | Coded) for p in merged):
        return b"".join(p for p in merged if isinstance(p, bytes)) * rows
    arguments = [
        pa.scalar(p.decode(), pa.large_string()) if isinstance(p, bytes) else p.array() if isinstance(p, Coded) else p
        for p in merged
    ]
    if len(arguments) == 1:
        (lines,) = arguments
        return _view(lines, rows)
    return _view(pc.binary_join_element_wise(*arguments, pa.scalar("", pa.large_string())), rows)


def _view(lines: pa.Array, rows: int) -> memoryview:
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64, count=rows + 1, offset=8 * lines.offset)
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
