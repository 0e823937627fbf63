"""Reading one part of an object through ranged GETs: lines of a byte range, a CSV header, Parquet row groups.

A text chunk ``[start, end)`` owns every line that *starts* in it (a line starts at 0 or right after a
``\\n``): it skips the partial line it begins in (the previous chunk owns it) and reads past ``end`` until
the line it ends in is complete. So every line of an object is owned by exactly one chunk, whatever the
chunk size. A CSV header is read apart (the first bytes of the object) and given to every chunk; the chunk
at offset 0 owns the header line and drops it.

Parquet is read through :class:`RangedFile`, a seekable file over ranged GETs: pyarrow reads the footer
(two small GETs) and then only the column chunks of the row groups asked for.

Known limit: a CSV value quoted across a newline may be cut at a chunk border when the object is larger than
``chunk_bytes`` (the halves are rejected as malformed rows, never scored); such files want JSON Lines or
Parquet, or a ``chunk_bytes`` above their size.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shared.batch.exceptions import ChunkFailedError

READ_AHEAD = 64 * 1024
"""Bytes read at a time past a chunk's end (to finish its last line) and to find a CSV header's end."""
MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest line read past a chunk's end or as a header (as ingest's reader block)."""


class RangedReader(Protocol):
    """What reading a part of an object needs (:class:`~shared.lake.adapters.S3ObjectStore` on AWS)."""

    def get_range(self, bucket: str, key: str, start: int, end: int) -> bytes: ...


@dataclass(frozen=True)
class OwnedLines:
    """The lines a byte range owns: their bytes, and where they start in the object."""

    data: bytes
    offset: int
    """The object offset of ``data[0]``."""

    def line_starts(self) -> np.ndarray:
        """The object offset of each line's first byte (1-based line ``n`` is at index ``n - 1``)."""
        if not self.data:
            return np.zeros(0, dtype=np.int64)
        ends = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == ord("\n"))
        starts = np.concatenate(([0], ends + 1))
        if starts[-1] == len(self.data):
            starts = starts[:-1]
        return starts.astype(np.int64) + self.offset

    @property
    def lines(self) -> int:
        return len(self.line_starts())


def owned_lines(reader: RangedReader, bucket: str, key: str, *, start: int, end: int, size: int) -> OwnedLines:
    """The lines starting in ``[start, end)`` of an object of ``size`` bytes, each complete."""
    end = min(end, size)
    if start >= end:
        return OwnedLines(b"", start)
    window_start = max(start - 1, 0)
    window = reader.get_range(bucket, key, window_start, end)
    if start == 0:
        first = 0
    else:
        cut = window.find(b"\n")
        if cut < 0 or window_start + cut + 1 >= end:
            return OwnedLines(b"", end)  # no line starts in this range
        first = cut + 1
    data = window[first:]
    position = end
    while data and not data.endswith(b"\n") and position < size:
        more = reader.get_range(bucket, key, position, min(position + READ_AHEAD, size))
        if not more:
            break
        cut = more.find(b"\n")
        if cut >= 0:
            data += more[: cut + 1]
            break
        data += more
        position += len(more)
        if len(data) > MAX_LINE_BYTES + (end - start):
            raise ChunkFailedError(f"a line at offset {end} runs past {MAX_LINE_BYTES} bytes")
    return OwnedLines(data, window_start + first)


def header_line(reader: RangedReader, bucket: str, key: str, size: int) -> bytes:
    """The object's first line, with its newline (a CSV header)."""
    data = b""
    while len(data) < size:
        more = reader.get_range(bucket, key, len(data), min(len(data) + READ_AHEAD, size))
        if not more:
            break
        cut = more.find(b"\n")
        if cut >= 0:
            return data + more[: cut + 1]
        data += more
        if len(data) > MAX_LINE_BYTES:
            raise ChunkFailedError(f"the header line runs past {MAX_LINE_BYTES} bytes")
    return data


class RangedFile(io.RawIOBase):
    """A read-only, seekable file over one object's ranged GETs (for pyarrow's Parquet reader)."""

    def __init__(self, reader: RangedReader, bucket: str, key: str, size: int) -> None:
        super().__init__()
        self._reader = reader
        self._bucket = bucket
        self._key = key
        self._size = size
        self._position = 0
        self.gets = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        data = self._reader.get_range(self._bucket, self._key, self._position, self._position + wanted)
        self.gets += 1
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def size(self) -> int:
        return self._size


def parquet_file(
    reader: RangedReader, bucket: str, key: str, size: int, *, dictionaries: Collection[str] = ()
) -> pq.ParquetFile:
    """A Parquet file read through ranged GETs; :class:`ChunkFailedError` when it is not Parquet.

    The text columns named in ``dictionaries`` are read dictionary-encoded, as Parquet mostly stores them
    (each distinct value decoded once; the rows are indices).
    """
    if size == 0:
        raise ChunkFailedError("the object is empty (0 bytes)")
    try:
        found = pq.ParquetFile(pa.PythonFile(RangedFile(reader, bucket, key, size), mode="r"))
        coded = [f.name for f in found.schema_arrow if f.name in dictionaries and pa.types.is_string(f.type)]
        if not coded:
            return found
        return pq.ParquetFile(
            pa.PythonFile(RangedFile(reader, bucket, key, size), mode="r"),
            metadata=found.metadata,
            read_dictionary=coded,
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise ChunkFailedError(f"not a Parquet file: {exc}") from exc


def parquet_row_groups(reader: RangedReader, bucket: str, key: str, size: int) -> list[int]:
    """The rows of each row group of a Parquet object, from its footer alone."""
    metadata = parquet_file(reader, bucket, key, size).metadata
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
