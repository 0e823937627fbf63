"""File formats ingest reads: detection from the key, and streaming readers of record batches.

Every reader yields :class:`RawBatch` es: the rows as read (CSV: every column as raw bytes, so a
value that fails the contract survives byte for byte into quarantine; JSON Lines and Parquet:
their own types), each row's line number, and the rows that could not be parsed into fields.

Line numbers: CSV, the physical line (the header is line 1), exact unless a quoted value spans
lines; JSON Lines, the line; Parquet, the 1-based row number. Nothing is ever loaded whole: CSV
and JSON Lines stream in blocks of ``block_size`` bytes; Parquet (which needs random access) is
downloaded to a file in the workdir and read a row group at a time.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import shutil
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from shared.ingest.exceptions import ObjectRejectedError, UnsupportedFormatError

if TYPE_CHECKING:
    from shared.lake.adapters import ByteStream, ObjectStore

BLOCK_SIZE = 16 * 1024 * 1024
"""Bytes read at a time; also the longest line a reader accepts."""
PARQUET_BATCH_ROWS = 65_536
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 8192
_PEEK_STEP = 64 * 1024
_MAX_QUOTED_TEXT = 2000


class DataFormat(StrEnum):
    CSV = "csv"
    JSON_LINES = "jsonl"
    PARQUET = "parquet"


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"


_FORMAT_OF_EXTENSION = {
    ".csv": DataFormat.CSV,
    ".jsonl": DataFormat.JSON_LINES,
    ".ndjson": DataFormat.JSON_LINES,
    ".json": DataFormat.JSON_LINES,
    ".parquet": DataFormat.PARQUET,
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(ext + gz for ext in _FORMAT_OF_EXTENSION for gz in ("", ".gz"))


@dataclass(frozen=True)
class ObjectFormat:
    """The format an object's key names. Gzip is also detected from the bytes (magic number)."""

    data_format: DataFormat
    compression: Compression
    extension: str


def file_extension(key: str) -> str:
    """The extension(s) of a key's file name, e.g. ``.csv.gz``; empty when it has none."""
    name = key.rsplit("/", 1)[-1]
    suffixes = Path(name).suffixes[-2:]
    if len(suffixes) == 2 and suffixes[-1].lower() != ".gz":
        suffixes = suffixes[-1:]
    return "".join(suffixes)


def detect_format(key: str) -> ObjectFormat:
    """The format of an object from its key; raise :class:`UnsupportedFormatError` when unknown."""
    name = key.rsplit("/", 1)[-1].lower()
    compression = Compression.NONE
    if name.endswith(".gz"):
        compression, name = Compression.GZIP, name[: -len(".gz")]
    for extension, data_format in _FORMAT_OF_EXTENSION.items():
        if name.endswith(extension):
            suffix = extension + (".gz" if compression is Compression.GZIP else "")
            return ObjectFormat(data_format, compression, suffix)
    found = file_extension(key) or "(none)"
    raise UnsupportedFormatError(f"unsupported file extension {found!r}; supported: {', '.join(SUPPORTED_EXTENSIONS)}")


@dataclass(frozen=True)
class MalformedRow:
    """A row that could not be split into fields (wrong field count, invalid JSON)."""

    line: int
    text: str
    reason: str


@dataclass
class RawBatch:
    table: pa.Table
    lines: pa.Array
    malformed: list[MalformedRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.table.num_rows + len(self.malformed)


class RecordReader(ABC):
    """A stream of record batches of one object."""

    columns: list[str]
    """Column names in the object's order (JSON Lines: the keys of the first block)."""
    column_types: dict[str, pa.DataType] | None = None
    """Physical column types, for formats that declare them for the whole object (Parquet)."""

    @abstractmethod
    def batches(self) -> Iterator[RawBatch]: ...

    def count_rest(self) -> int:
        """Rows left unread, counted as far as they can be read (for an object rejected whole)."""
        counted = 0
        with contextlib.suppress(ObjectRejectedError):
            for batch in self.batches():
                counted += batch.rows
        return counted


class _PeekableStream:
    """A read-only stream that can look ahead without consuming."""

    def __init__(self, raw: ByteStream) -> None:
        self._raw = raw
        self._buffer = b""
        self.closed = False

    def peek(self, size: int) -> bytes:
        while len(self._buffer) < size:
            data = self._raw.read(max(size - len(self._buffer), _PEEK_STEP))
            if not data:
                break
            self._buffer += data
        return self._buffer[:size]

    def peek_line(self, limit: int) -> bytes:
        """The first line (with its newline), or ``limit + 1`` bytes when no newline comes that soon."""
        searched = 0
        while True:
            cut = self._buffer.find(b"\n", searched)
            if cut >= 0:
                return self._buffer[: cut + 1]
            searched = len(self._buffer)
            if searched > limit or not self.peek(searched + _PEEK_STEP)[searched:]:
                return self._buffer[: limit + 1]

    def read(self, size: int = -1, /) -> bytes:
        if self._buffer:
            if size < 0:
                data, self._buffer = self._buffer + self._raw.read(), b""
                return data
            data, self._buffer = self._buffer[:size], self._buffer[size:]
            return data
        return self._raw.read(size)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _line_too_long(block_size: int) -> ObjectRejectedError:
    return ObjectRejectedError(
        f"a line is longer than the reader's block size of {block_size // (1024 * 1024) or block_size} "
        f"{'MiB' if block_size >= 1024 * 1024 else 'bytes'}; split the record or fix the line endings"
    )


@contextlib.contextmanager
def _read_errors_rejected(block_size: int) -> Iterator[None]:
    """Turn decompression and parse failures in the middle of a stream into a whole-object rejection."""
    try:
        yield
    except EOFError as exc:
        raise ObjectRejectedError(f"gzip stream is truncated: {exc}") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise ObjectRejectedError(f"gzip stream is corrupt: {exc}") from exc
    except pa.ArrowInvalid as exc:
        if "straddl" in str(exc):
            raise _line_too_long(block_size) from exc
        raise ObjectRejectedError(f"cannot parse the object: {exc}") from exc


def _reject_binary(head: bytes, what: str) -> None:
    if not head:
        raise ObjectRejectedError("the object is empty (0 bytes)")
    if b"\x00" in head[:_SNIFF_BYTES]:
        raise ObjectRejectedError(f"not {what}: the object holds binary data (NUL bytes)")


def quote(text: str | bytes, limit: int = _MAX_QUOTED_TEXT) -> str:
    """Text for a report: decoded leniently and cut to ``limit`` characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class CsvRecordReader(RecordReader):
    """CSV with a header line, comma-separated, every column read as raw bytes."""

    def __init__(self, stream: ByteStream, *, block_size: int = BLOCK_SIZE) -> None:
        self._stream = _PeekableStream(stream)
        self._block_size = block_size
        _reject_binary(self._stream.peek(_SNIFF_BYTES), "CSV text")
        header = self._stream.peek_line(block_size)
        if len(header) > block_size:
            raise _line_too_long(block_size)
        self._header_bytes = len(header)
        header = header.removeprefix(UTF8_BOM)
        try:
            text = header.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ObjectRejectedError(f"not CSV text: the header line is not UTF-8 ({exc.reason})") from exc
        self.header_text = text.rstrip("\r\n")
        self.columns = next(csv.reader([self.header_text]), [])
        self._started = False

    def batches(self) -> Iterator[RawBatch]:
        if self._started:
            return
        self._started = True
        self._stream.read(self._header_bytes)
        internal = [f"f{i}" for i in range(len(self.columns))]
        convert_options = pa_csv.ConvertOptions(
            column_types={name: pa.binary() for name in internal},
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        with _read_errors_rejected(self._block_size):
            for first_line, chunk in _read_line_blocks(self._stream, self._block_size, first_line=2, csv_quotes=True):
                malformed: list[MalformedRow] = []

                def on_invalid_row(
                    row: Any, first_line: int = first_line, malformed: list[MalformedRow] = malformed
                ) -> str:
                    line = first_line + int(row.number) - 1 if row.number is not None else -1
                    reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
                    malformed.append(MalformedRow(line=line, text=quote(row.text), reason=reason))
                    return "skip"

                table = pa_csv.read_csv(
                    io.BytesIO(chunk),
                    read_options=pa_csv.ReadOptions(
                        use_threads=False, block_size=len(chunk) + 1, column_names=internal
                    ),
                    parse_options=pa_csv.ParseOptions(
                        invalid_row_handler=on_invalid_row, newlines_in_values=True, ignore_empty_lines=False
                    ),
                    convert_options=convert_options,
                ).rename_columns(self.columns)
                lines = _csv_lines(first_line, table.num_rows, [m.line for m in malformed])
                yield RawBatch(table=table, lines=lines, malformed=malformed)


def _read_line_blocks(
    stream: ByteStream, block_size: int, *, first_line: int, csv_quotes: bool = False
) -> Iterator[tuple[int, bytes]]:
    """Blocks of whole lines of about ``block_size`` bytes, each with the number of its first line.

    ``csv_quotes``: never cut inside a quoted CSV value (a newline within quotes is not a row's end).
    Reads one block at a time, so at most about two blocks are held.
    """
    carry = b""
    line = first_line
    while True:
        data = stream.read(block_size)
        if not data:
            break
        buffer = carry + data if carry else data
        cut = buffer.rfind(b"\n")
        while csv_quotes and cut >= 0 and buffer.count(b'"', 0, cut) % 2:
            cut = buffer.rfind(b"\n", 0, cut)
        if cut < 0:
            if len(buffer) > block_size:
                raise _line_too_long(block_size)
            carry = buffer
            continue
        chunk, carry = buffer[: cut + 1], buffer[cut + 1 :]
        if len(carry) > block_size:
            raise _line_too_long(block_size)
        yield line, chunk
        line += chunk.count(b"\n")
    if carry.strip():
        yield line, carry + b"\n"


def _csv_lines(first_line: int, rows: int, skipped_lines: Sequence[int]) -> pa.Array:
    """Line numbers of a block's parsed rows, given its first line and the lines skipped as malformed."""
    index = np.arange(rows, dtype=np.int64)
    lines = index + first_line
    if skipped_lines:
        skipped = np.sort(np.asarray(skipped_lines, dtype=np.int64))
        rows_before_skip = skipped - first_line - np.arange(len(skipped))
        lines += np.searchsorted(rows_before_skip, index, side="right")
    return pa.array(lines)


def guess_delimiter(header: str) -> str | None:
    """The delimiter a one-column header seems to use instead of a comma, if any."""
    for candidate in (";", "\t", "|"):
        if candidate in header and len(header.split(candidate)) > 1:
            return candidate
    return None


class JsonLinesRecordReader(RecordReader):
    """JSON Lines: one JSON object per line, read a block of whole lines at a time.

    A block parses with pyarrow's JSON reader; one that does not (a malformed line, a value whose
    JSON type varies, a blank line, invalid UTF-8) is parsed line by line, its values kept as
    text, so that each bad line is quarantined alone.
    """

    def __init__(self, stream: ByteStream, *, block_size: int = BLOCK_SIZE, text_columns: Sequence[str] = ()) -> None:
        self._stream = _PeekableStream(stream)
        self._block_size = block_size
        self._text_schema = pa.schema([(name, pa.string()) for name in text_columns])
        _reject_binary(self._stream.peek(_SNIFF_BYTES), "JSON Lines text")
        self._chunks = _read_line_blocks(self._stream, block_size, first_line=1)
        self._first: RawBatch | None = None
        with _read_errors_rejected(block_size):
            for first_line, chunk in self._chunks:
                self._first = self._parse(first_line, chunk)
                if self._first.table.num_rows:
                    break
                if self._first.malformed:
                    bad = self._first.malformed[0]
                    raise ObjectRejectedError(f"not JSON Lines: line {bad.line}: {bad.reason}")
        self.columns = self._first.table.column_names if self._first else []
        self._started = False

    def batches(self) -> Iterator[RawBatch]:
        if self._started:
            return
        self._started = True
        if self._first is not None:
            yield self._first
        with _read_errors_rejected(self._block_size):
            for first_line, chunk in self._chunks:
                yield self._parse(first_line, chunk)

    def _parse(self, first_line: int, chunk: bytes) -> RawBatch:
        lines = chunk.count(b"\n")
        if b"\n\n" not in chunk and not chunk.startswith(b"\n"):
            try:
                table = pa_json.read_json(
                    io.BytesIO(chunk),
                    read_options=pa_json.ReadOptions(use_threads=False, block_size=len(chunk) + 1),
                    parse_options=pa_json.ParseOptions(
                        explicit_schema=self._text_schema, unexpected_field_behavior="infer"
                    ),
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            else:
                if table.num_rows == lines:
                    # explicit (text) columns come back all null when the block lacks them: drop those
                    absent = [n for n in self._text_schema.names if table[n].null_count == table.num_rows]
                    table = table.drop_columns(absent)
                    return RawBatch(table=table, lines=pa.array(np.arange(first_line, first_line + lines)))
        return self._parse_line_by_line(first_line, chunk)

    def _parse_line_by_line(self, first_line: int, chunk: bytes) -> RawBatch:
        records: list[dict[str, Any]] = []
        line_numbers: list[int] = []
        malformed: list[MalformedRow] = []
        for offset, raw in enumerate(chunk.split(b"\n")):
            if not raw.strip():
                continue
            line = first_line + offset
            text = raw.decode("utf-8", "surrogateescape")
            try:
                record = json.loads(text)
            except ValueError as exc:
                malformed.append(MalformedRow(line=line, text=quote(raw), reason=f"not valid JSON: {exc}"))
                continue
            if not isinstance(record, dict):
                reason = f"not a JSON object but a {type(record).__name__}"
                malformed.append(MalformedRow(line=line, text=quote(raw), reason=reason))
                continue
            records.append(record)
            line_numbers.append(line)
        names: dict[str, None] = {}
        for record in records:
            names.update(dict.fromkeys(record))
        columns = {name: pa.array([_json_value_as_bytes(r.get(name)) for r in records], pa.binary()) for name in names}
        table = pa.table(columns) if columns else pa.table({"": pa.nulls(len(records))}).drop_columns([""])
        return RawBatch(table=table, lines=pa.array(line_numbers, pa.int64()), malformed=malformed)


def _json_value_as_bytes(value: Any) -> bytes | None:
    """One JSON value as the text a CSV would hold (UTF-8 bytes; invalid UTF-8 survives as is)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int | float):
        return json.dumps(value).encode()
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogateescape")


class ParquetRecordReader(RecordReader):
    """Parquet, from a local file, one batch of rows at a time."""

    def __init__(self, path: Path, *, batch_rows: int = PARQUET_BATCH_ROWS) -> None:
        if path.stat().st_size == 0:
            raise ObjectRejectedError("the object is empty (0 bytes)")
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ObjectRejectedError(f"not a Parquet file: {exc}") from exc
        schema = self._file.schema_arrow
        self.columns = list(schema.names)
        self.column_types = {f.name: f.type for f in schema}
        self._batch_rows = batch_rows
        self._consumed = 0
        self._started = False

    def batches(self) -> Iterator[RawBatch]:
        if self._started:
            return
        self._started = True
        with _read_errors_rejected(BLOCK_SIZE):
            for record_batch in self._file.iter_batches(batch_size=self._batch_rows):
                first = self._consumed + 1
                self._consumed += record_batch.num_rows
                lines = pa.array(np.arange(first, first + record_batch.num_rows, dtype=np.int64))
                yield RawBatch(table=pa.Table.from_batches([record_batch]), lines=lines)

    def count_rest(self) -> int:
        return int(self._file.metadata.num_rows) - self._consumed


@contextlib.contextmanager
def open_records(
    store: ObjectStore,
    bucket: str,
    key: str,
    version_id: str | None,
    object_format: ObjectFormat,
    *,
    workdir: Path,
    block_size: int = BLOCK_SIZE,
    text_columns: Sequence[str] = (),
) -> Iterator[tuple[RecordReader, Compression]]:
    """Open a streaming reader of one object; also say whether it was gzip (by its bytes, not its key).

    ``text_columns``: declared columns whose JSON values should be read as text.
    """
    if object_format.data_format is DataFormat.PARQUET:
        downloaded = workdir / "source.download"
        store.download(bucket, key, version_id, downloaded)
        with downloaded.open("rb") as file:
            compressed = file.read(2) == GZIP_MAGIC
        path = downloaded
        if compressed:
            path = workdir / "source.parquet"
            with _read_errors_rejected(block_size), gzip.open(downloaded, "rb") as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            downloaded.unlink()
        yield ParquetRecordReader(path), Compression.GZIP if compressed else Compression.NONE
        return

    with store.open(bucket, key, version_id) as body:
        stream = _PeekableStream(body)
        compressed = stream.peek(2) == GZIP_MAGIC
        text: ByteStream = stream
        if compressed:
            text = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[call-overload]
        reader: RecordReader
        with _read_errors_rejected(block_size):
            if object_format.data_format is DataFormat.CSV:
                reader = CsvRecordReader(text, block_size=block_size)
            else:
                reader = JsonLinesRecordReader(text, block_size=block_size, text_columns=text_columns)
        yield reader, Compression.GZIP if compressed else Compression.NONE
