"""JSON Lines built column by column: each column's values encoded once, the lines joined by Arrow.

A line is a template of constant parts (keys, shared values) and columns, each column encoded to one JSON
text per row (:func:`json_texts`): numbers and booleans as msgspec encodes their list (the texts cut at the
commas, vectorized), strings as msgspec encodes each distinct value (dictionary-encoded, then taken), other
types value by value. ``pyarrow.compute.binary_join_element_wise`` then writes every line in one pass, so no
Python object is made per row and the bytes are the ones msgspec writes for the same row as a dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_COMMA = ord(",")
_ENCODER = msgspec.json.Encoder()

Part: TypeAlias = bytes | pa.Array
"""A part of a line: a constant (the same bytes on every line) or a column of JSON texts (one per line)."""


def constant(value: object) -> bytes:
    """The JSON text of one value (a key, a shared field)."""
    return _ENCODER.encode(value)


def json_texts(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each value's JSON text, as ``msgspec.json.encode`` writes it (a null as ``null``), as a large string array."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return _cut_list(_ENCODER.encode(array.to_pylist()), len(array))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        encoded = array if pa.types.is_dictionary(kind) else array.dictionary_encode()
        distinct = [_ENCODER.encode(v) for v in encoded.dictionary.to_pylist()]
        texts = pa.array([*distinct, b"null"], pa.binary()).cast(pa.large_string())
        return texts.take(encoded.indices.fill_null(len(distinct)))
    return pa.array([_ENCODER.encode(v) for v in array.to_pylist()], pa.binary()).cast(pa.large_string())


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
    for part in parts:  # adjacent constants become one
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    if not any(isinstance(p, pa.Array) for p in merged):
        return b"".join(p for p in merged if isinstance(p, bytes)) * rows
    arguments = [pa.scalar(p.decode(), pa.large_string()) if isinstance(p, bytes) else p for p in merged]
    lines = pc.binary_join_element_wise(*arguments, pa.scalar("", pa.large_string()))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64, count=rows + 1, offset=8 * lines.offset)
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
