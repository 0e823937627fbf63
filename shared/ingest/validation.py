"""The contract compiled into vectorized column checks (pyarrow.compute).

:class:`CompiledContract` is built once per contract. :meth:`CompiledContract.start_object` gives an
:class:`ObjectValidator` that holds what one object needs across batches: its columns, the entity
ids seen, and per-column parse statistics (to tell a changed type from a few bad values).

A batch comes in as read (text columns as raw bytes or strings; JSON and Parquet columns in their
own types) and leaves as a typed table of valid rows plus quarantined rows, each with the line
number, the raw values and a reason per failed field. Reasons are built only for failing rows.

Checks per column, in order (a field fails at the first that applies): valid UTF-8; null (a null
value or one of the contract's ``null_values`` tokens) in a non-nullable column; the type parse;
a finite number (float); min/max; allowed values; max_length (string). Then across the object:
duplicate entity ids (the first valid row wins; later ones are quarantined).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared.ingest.formats import MalformedRow, RawBatch, quote
from shared.usecase.settings import Column, ColumnType, Contract

TYPE_CHANGE_MIN_VALUES = 10
"""A text column changed type when at least this many non-null values all fail the type parse."""
NOT_FINITE = "not a finite number"
BLANK_LINE = "blank line"
ROW_FIELD = "<row>"

ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.INT: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOL: pa.bool_(),
    ColumnType.STRING: pa.string(),
    ColumnType.CATEGORY: pa.string(),
    ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    ColumnType.DATE: pa.date32(),
}
_NAIVE_TIMESTAMP = pa.timestamp("us")
_CODED_TYPES = (ColumnType.STRING, ColumnType.CATEGORY)
"""Column types whose dictionary-encoded text is checked value by distinct value (no parse: never unparsed)."""
_INT_PATTERN = r"^[+-]?[0-9]+$"
_FLOAT_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^[+-]?(?i:nan|inf|infinity)$"
_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ZONE_PATTERN = r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_TRUE_TOKENS = ("true", "1", "t", "yes", "y")
_FALSE_TOKENS = ("false", "0", "f", "no", "n")
_PARSED_TYPES = frozenset({ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL, ColumnType.TIMESTAMP, ColumnType.DATE})
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)

Reason = Callable[[int, Any], str]
"""Builds the reason of one failed field from the row's index in the batch and the raw value."""


def _is_text(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def _is_bytes(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type))


def physical_type_fits(column_type: ColumnType, data_type: pa.DataType) -> bool:
    """Whether values of a typed format's ``data_type`` can be cast to ``column_type`` at all."""
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_null(data_type) or _is_text(data_type) or _is_bytes(data_type):
        return True
    is_number = pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type)
    match column_type:
        case ColumnType.INT | ColumnType.FLOAT:
            return bool(is_number)
        case ColumnType.BOOL:
            return bool(pa.types.is_boolean(data_type))
        case ColumnType.STRING | ColumnType.CATEGORY:
            return bool(pa.types.is_integer(data_type))
        case ColumnType.TIMESTAMP | ColumnType.DATE:
            return bool(pa.types.is_timestamp(data_type) or pa.types.is_date(data_type))
    return False  # pragma: no cover - every ColumnType is matched above


def _bisect_cast(values: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast what can be cast; values that cannot become null (found by halving; failures are rare)."""
    try:
        return pc.cast(values, target)
    except _CAST_ERRORS:
        if len(values) == 1:
            return pa.nulls(1, target)
        middle = len(values) // 2
        return pa.concat_arrays(
            [_bisect_cast(values.slice(0, middle), target), _bisect_cast(values.slice(middle), target)]
        )


def _cast_lenient(values: pa.Array, target: pa.DataType, pattern: str | None = None) -> pa.Array:
    """Fast path: cast the whole column. Slow path (it failed): null out what ``pattern`` rejects, retry."""
    try:
        return pc.cast(values, target)
    except _CAST_ERRORS:
        pass
    if pattern is not None and (_is_text(values.type)):
        shaped = pc.match_substring_regex(values, pattern)
        values = pc.if_else(shaped, values, pa.scalar(None, values.type))
    return _bisect_cast(values, target)


def _decode_utf8(raw: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """Bytes as text; a mask of values that are not valid UTF-8 (None when all are), nulled in the text."""
    try:
        return raw.cast(pa.string()), None
    except pa.ArrowInvalid:
        pass
    decoded: list[str | None] = []
    invalid: list[bool] = []
    for value in raw.to_pylist():
        try:
            decoded.append(None if value is None else value.decode("utf-8"))
            invalid.append(False)
        except UnicodeDecodeError:
            decoded.append(None)
            invalid.append(True)
    return pa.array(decoded, pa.string()), pa.array(invalid, pa.bool_())


def _no_nulls(mask: pa.Array) -> pa.Array:
    return mask.fill_null(False) if mask.null_count else mask


@dataclass
class _ColumnStats:
    non_null: int = 0
    unparsed: int = 0
    example: Any = None


@dataclass
class _ColumnResult:
    typed: pa.Array
    failures: list[tuple[pa.Array, Reason]]
    non_null: int
    unparsed: int
    example: Any


class _ColumnRule:
    """One declared column, compiled."""

    def __init__(self, column: Column, null_values: Sequence[str]) -> None:
        self.column = column
        self.name = column.name
        self.target = ARROW_TYPES[column.type]
        self._null_tokens = pa.array(list(null_values), pa.string())
        self._allowed: pa.Array | None = None
        if column.allowed is not None:
            kind = pa.int64() if column.type is ColumnType.INT else pa.string()
            self._allowed = pa.array(list(column.allowed), kind)
        self._allowed_text = sorted(str(v) for v in column.allowed or ())

    # --- reasons -------------------------------------------------------------------------------
    def _missing(self, _: int, __: Any) -> str:
        return "missing value: the column is not nullable"

    def _unparsed(self, _: int, value: Any) -> str:
        return f"expected {self.column.type.value}, found {quote(_display(value), 200)!r}"

    def _not_utf8(self, _: int, __: Any) -> str:
        return "not valid UTF-8 text"

    def _not_finite(self, _: int, value: Any) -> str:
        return f"{NOT_FINITE}: {_display(value)!r}"

    def _below(self, _: int, value: Any) -> str:
        return f"value {_display(value)} is below the minimum {_number(self.column.min)}"

    def _above(self, _: int, value: Any) -> str:
        return f"value {_display(value)} is above the maximum {_number(self.column.max)}"

    def _not_allowed(self, _: int, value: Any) -> str:
        return f"value {quote(_display(value), 200)!r} is not one of {self._allowed_text}"

    def _too_long(self, _: int, value: Any) -> str:
        return f"longer than max_length {self.column.max_length}: {len(_display(value))} characters"

    # --- checks --------------------------------------------------------------------------------
    def check(self, raw: pa.Array, *, keep_dictionary: bool = False) -> _ColumnResult:
        failures: list[tuple[pa.Array, Reason]] = []
        if pa.types.is_dictionary(raw.type):
            if self.column.type in _CODED_TYPES and _is_text(raw.type.value_type) and len(raw.dictionary) <= len(raw):
                return self._check_coded(raw, keep_dictionary)
            raw = raw.dictionary_decode()
        if _is_bytes(raw.type):
            text, not_utf8 = _decode_utf8(raw)
            if not_utf8 is not None:
                failures.append((not_utf8, self._not_utf8))
            return self._check_text(text, failures, not_utf8)
        if _is_text(raw.type):
            return self._check_text(raw.cast(pa.string()), failures, None)
        return self._check_typed(raw, failures)

    def _check_coded(self, raw: pa.DictionaryArray, keep_dictionary: bool) -> _ColumnResult:
        """A dictionary-encoded text column: each distinct value checked once (a null as one more), the masks
        taken by the rows' indices; the same failures and reasons as the decoded column's checks.

        The typed column stays dictionary-encoded when ``keep_dictionary`` (a value the checks nulled, as a
        null token, becomes a null index).
        """
        distinct, indices = raw.dictionary.cast(pa.string()), raw.indices
        if raw.null_count:
            distinct = pa.concat_arrays([distinct, pa.nulls(1, pa.string())])
            indices = indices.fill_null(len(raw.dictionary))
        result = self._check_text(distinct, [], None)
        failures = [(_no_nulls(mask.take(indices)), reason) for mask, reason in result.failures if mask.true_count]
        row_valid = result.typed.is_valid().take(indices)
        if keep_dictionary:
            kept = pc.if_else(row_valid, indices, pa.scalar(None, indices.type))
            typed: pa.Array = pa.DictionaryArray.from_arrays(kept, result.typed)
        else:
            typed = result.typed.take(indices)
        return _ColumnResult(typed, failures, row_valid.true_count, 0, None)

    def _nulls(self, is_null: pa.Array, failures: list[tuple[pa.Array, Reason]]) -> int:
        count = is_null.true_count
        if count and not self.column.nullable:
            failures.append((is_null, self._missing))
        return int(count)

    def _check_text(
        self, text: pa.Array, failures: list[tuple[pa.Array, Reason]], not_utf8: pa.Array | None
    ) -> _ColumnResult:
        is_null = pc.is_in(text, value_set=self._null_tokens)
        if text.null_count:
            real_nulls = pc.is_null(text)
            if not_utf8 is not None:
                real_nulls = pc.and_not(real_nulls, not_utf8)
            is_null = pc.or_(is_null, real_nulls)
        null_count = self._nulls(is_null, failures)
        values = pc.if_else(is_null, pa.scalar(None, pa.string()), text) if null_count else text
        typed = self._parse(values)
        return self._finish(values, typed, failures)

    def _check_typed(self, raw: pa.Array, failures: list[tuple[pa.Array, Reason]]) -> _ColumnResult:
        self._nulls(pc.is_null(raw), failures)
        if not physical_type_fits(self.column.type, raw.type) or pa.types.is_null(raw.type):
            typed = pa.nulls(len(raw), self.target)
        elif self.column.type is ColumnType.TIMESTAMP and pa.types.is_timestamp(raw.type) and raw.type.tz is None:
            typed = _cast_lenient(_cast_lenient(raw, _NAIVE_TIMESTAMP), self.target)
        else:
            typed = _cast_lenient(raw, self.target)
        return self._finish(raw, typed, failures)

    def _parse(self, values: pa.Array) -> pa.Array:  # noqa: PLR0911 - one return per column type
        match self.column.type:
            case ColumnType.STRING | ColumnType.CATEGORY:
                return values
            case ColumnType.INT:
                return _cast_lenient(values, self.target, _INT_PATTERN)
            case ColumnType.FLOAT:
                return _cast_lenient(values, self.target, _FLOAT_PATTERN)
            case ColumnType.BOOL:
                lower = pc.utf8_lower(values)
                known = pc.is_in(lower, value_set=pa.array(_TRUE_TOKENS + _FALSE_TOKENS))
                return pc.if_else(known, pc.is_in(lower, value_set=pa.array(_TRUE_TOKENS)), None)
            case ColumnType.DATE:
                if self.column.format:
                    parsed = pc.strptime(values, format=self.column.format, unit="s", error_is_null=True)
                    return pc.cast(parsed, pa.date32())
                return _cast_lenient(values, self.target, _DATE_PATTERN)
            case ColumnType.TIMESTAMP:
                return self._parse_timestamp(values)
        raise AssertionError(self.column.type)  # pragma: no cover

    def _parse_timestamp(self, values: pa.Array) -> pa.Array:
        """ISO 8601 (or the column's strptime format); a timestamp without a zone offset is UTC."""
        if self.column.format:
            parsed = pc.strptime(values, format=self.column.format, unit="us", error_is_null=True)
            return pc.cast(parsed, self.target)
        try:
            return pc.cast(values, self.target)
        except _CAST_ERRORS:
            pass
        try:
            return pc.cast(pc.cast(values, _NAIVE_TIMESTAMP), self.target)
        except _CAST_ERRORS:
            pass
        zoned = _no_nulls(pc.match_substring_regex(values, _ZONE_PATTERN))
        none = pa.scalar(None, pa.string())
        with_zone = _bisect_cast(pc.if_else(zoned, values, none), self.target)
        naive = _bisect_cast(pc.if_else(zoned, none, values), _NAIVE_TIMESTAMP)
        return pc.coalesce(with_zone, pc.cast(naive, self.target))

    def _finish(self, values: pa.Array, typed: pa.Array, failures: list[tuple[pa.Array, Reason]]) -> _ColumnResult:
        non_null = len(values) - values.null_count
        unparsed_count = 0
        example = None
        if typed.null_count > values.null_count:
            unparsed = pc.and_(pc.is_valid(values), pc.is_null(typed))
            unparsed_count = unparsed.true_count
            failures.append((unparsed, self._unparsed))
            example = _display(values[pc.index(unparsed, True).as_py()].as_py())
        typed = self._value_checks(typed, non_null, failures)
        return _ColumnResult(typed, failures, non_null, unparsed_count, example)

    def _value_checks(self, typed: pa.Array, non_null: int, failures: list[tuple[pa.Array, Reason]]) -> pa.Array:
        """Finite numbers, min/max, allowed values, max_length; return ``typed`` with non-finite nulled."""
        column = self.column
        if column.type is ColumnType.FLOAT and typed.null_count < len(typed):
            not_finite = _no_nulls(pc.invert(pc.is_finite(typed)))
            if not_finite.true_count:
                failures.append((not_finite, self._not_finite))
                typed = pc.if_else(not_finite, pa.scalar(None, typed.type), typed)
        if column.min is not None:
            below = _no_nulls(pc.less(pc.cast(typed, pa.float64()), column.min))
            if below.true_count:
                failures.append((below, self._below))
        if column.max is not None:
            above = _no_nulls(pc.greater(pc.cast(typed, pa.float64()), column.max))
            if above.true_count:
                failures.append((above, self._above))
        if self._allowed is not None:
            outside = pc.invert(pc.is_in(typed, value_set=self._allowed))
            if typed.null_count:
                outside = pc.and_(outside, pc.is_valid(typed))
            if outside.true_count:
                failures.append((outside, self._not_allowed))
        if column.type is ColumnType.STRING and non_null:
            longest = pc.max(pc.binary_length(typed)).as_py() or 0
            if longest > column.max_length:
                too_long = _no_nulls(pc.greater(pc.utf8_length(typed), column.max_length))
                if too_long.true_count:
                    failures.append((too_long, self._too_long))
        return typed


def _number(value: float | None) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else str(value))


def _display(value: Any) -> Any:
    """A raw value as a report shows it: text as is, bytes decoded leniently, other values as JSON would."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return value


@dataclass(frozen=True)
class SchemaCheck:
    """How an object's columns differ from the contract."""

    added: tuple[str, ...] = ()
    """Undeclared columns (kept in curated as strings)."""
    absent_optional: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    """Every difference, in words."""
    rejection: str | None = None
    """Why the object is rejected whole, when a difference is one that rejects it."""


@dataclass(frozen=True)
class QuarantinedRow:
    """A row that failed the contract: where it was, what it held, and what was wrong with each field."""

    line: int
    errors: list[dict[str, str]]
    row: dict[str, Any] | None = None
    text: str | None = None
    """The raw text of a row that could not be split into fields."""

    def as_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"line": self.line}
        if self.row is not None:
            document["row"] = self.row
        if self.text is not None:
            document["text"] = self.text
        document["errors"] = self.errors
        return document


@dataclass
class ValidatedBatch:
    valid: pa.Table
    """Rows that passed: declared columns typed, in contract order, then added columns as strings."""
    valid_lines: pa.Array
    quarantined: list[QuarantinedRow] = field(default_factory=list)


class CompiledContract:
    """A contract compiled once into column rules."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.rules = [_ColumnRule(column, contract.null_values) for column in contract.columns]
        self.schema = pa.schema([(rule.name, rule.target) for rule in self.rules])

    def check_columns(
        self, found: Sequence[str], physical_types: Mapping[str, pa.DataType] | None = None
    ) -> SchemaCheck:
        """Compare an object's columns with the contract: missing, renamed, added, retyped, repeated."""
        declared = list(self.contract.names)
        rejecting: list[str] = []
        repeated = sorted({name for name in found if list(found).count(name) > 1})
        rejecting += [f"column {name!r} appears more than once" for name in repeated]
        added = [name for name in found if name not in declared]
        renamed_to: set[str] = set()
        for column in self.contract.columns:
            if column.name in found or not column.required:
                continue
            position = self._expected_position(column.name, found)
            if position is not None and found[position] in added and found[position] not in renamed_to:
                renamed_to.add(found[position])
                rejecting.append(
                    f"column {column.name!r} missing; unexpected column {found[position]!r} "
                    "at the same position: looks renamed"
                )
            else:
                rejecting.append(f"column {column.name!r} missing")
        for name, data_type in (physical_types or {}).items():
            if name in declared and not physical_type_fits(self.contract.column(name).type, data_type):
                expected = self.contract.column(name).type.value
                rejecting.append(f"column {name!r} changed type: expected {expected}, found {data_type}")
        absent = tuple(c.name for c in self.contract.columns if not c.required and c.name not in found)
        kept = [name for name in added if name not in renamed_to]
        changes = (
            rejecting
            + [f"column {name!r} added (kept as a string column)" for name in kept]
            + [f"optional column {name!r} absent (curated as null)" for name in absent]
        )
        return SchemaCheck(
            added=tuple(added),
            absent_optional=absent,
            changes=tuple(changes),
            rejection="; ".join(rejecting) or None,
        )

    def _expected_position(self, name: str, found: Sequence[str]) -> int | None:
        declared = list(self.contract.names)
        index = declared.index(name)
        position = index
        for previous in reversed(declared[:index]):
            if previous in found:
                position = list(found).index(previous) + 1
                break
        return position if position < len(found) else None

    def start_object(self, schema_check: SchemaCheck, *, keep_dictionaries: bool = False) -> ObjectValidator:
        """A validator of one object; ``keep_dictionaries``: dictionary-encoded string and category columns stay
        encoded in the valid table (for a caller that encodes by distinct value too, as the batch worker)."""
        return ObjectValidator(self, schema_check, keep_dictionaries=keep_dictionaries)


class ObjectValidator:
    """Validates the batches of one object, in order."""

    def __init__(
        self, compiled: CompiledContract, schema_check: SchemaCheck, *, keep_dictionaries: bool = False
    ) -> None:
        self._compiled = compiled
        self._keep_dictionaries = keep_dictionaries
        self._added = list(schema_check.added)
        self._stats = {rule.name: _ColumnStats() for rule in compiled.rules}
        self._entity_id = compiled.contract.entity_id
        self._first_line_of_id: dict[Any, int] = {}

    @property
    def columns_added(self) -> list[str]:
        return list(self._added)

    def validate(self, batch: RawBatch) -> ValidatedBatch:
        table = batch.table
        rows = table.num_rows
        quarantined = [_malformed(row) for row in batch.malformed]
        if rows == 0:
            return ValidatedBatch(self._empty(), pa.array([], pa.int64()), quarantined)
        typed: dict[str, pa.Array] = {}
        failures: list[tuple[str, pa.Array, Reason]] = []
        for rule in self._compiled.rules:
            if rule.name not in table.column_names:
                typed[rule.name] = pa.nulls(rows, rule.target)
                if not rule.column.nullable:
                    failures.append((rule.name, pa.array(np.ones(rows, dtype=bool)), rule._missing))
                continue
            result = rule.check(table[rule.name].combine_chunks(), keep_dictionary=self._keep_dictionaries)
            typed[rule.name] = result.typed
            failures += [(rule.name, mask, reason) for mask, reason in result.failures]
            stats = self._stats[rule.name]
            stats.non_null += result.non_null
            stats.unparsed += result.unparsed
            if stats.example is None:
                stats.example = result.example
        for name in table.column_names:
            if name not in self._compiled.contract.names and name not in self._added:
                self._added.append(name)
        bad = None
        for _, mask, _ in failures:
            bad = mask if bad is None else pc.or_(bad, mask)
        duplicate = self._duplicates(typed[self._entity_id], batch.lines, bad)
        if duplicate is not None:
            mask, reason = duplicate
            failures.append((self._entity_id, mask, reason))
            bad = mask if bad is None else pc.or_(bad, mask)
        valid = self._typed_table(typed, table)
        lines = batch.lines
        if bad is not None and bad.true_count:
            quarantined += self._quarantine(table, batch.lines, bad, failures)
            keep = pc.invert(bad)
            valid, lines = valid.filter(keep), lines.filter(keep)
        return ValidatedBatch(valid, lines, quarantined)

    def _duplicates(self, ids: pa.Array, lines: pa.Array, bad: pa.Array | None) -> tuple[pa.Array, Reason] | None:
        """Entity ids already seen in a valid row of this object (the first one wins)."""
        candidates = np.arange(len(ids))
        if bad is not None and bad.true_count:
            keep = pc.invert(bad)
            ids, lines = ids.filter(keep), lines.filter(keep)
            candidates = candidates[np.asarray(keep.to_numpy(zero_copy_only=False))]
        id_values = ids.to_pylist()
        line_values = lines.to_pylist()
        seen = self._first_line_of_id
        if len(set(id_values)) == len(id_values) and seen.keys().isdisjoint(id_values):
            seen.update(zip(id_values, line_values, strict=True))
            return None
        first_lines: dict[int, int] = {}
        for position, value, line in zip(candidates.tolist(), id_values, line_values, strict=True):
            first = seen.setdefault(value, line)
            if first != line:
                first_lines[position] = first
        if not first_lines:
            return None
        mask = np.zeros(len(bad) if bad is not None else len(candidates), dtype=bool)
        mask[list(first_lines)] = True

        def reason(index: int, _value: Any) -> str:
            return f"duplicate entity id, first seen at line {first_lines[index]}"

        return pa.array(mask), reason

    def _typed_table(self, typed: dict[str, pa.Array], table: pa.Table) -> pa.Table:
        arrays = list(typed.values())
        names = list(typed)
        for name in self._added:
            if name in table.column_names:
                arrays.append(_as_text(table[name].combine_chunks()))
            else:
                arrays.append(pa.nulls(table.num_rows, pa.string()))
            names.append(name)
        return pa.Table.from_arrays(arrays, names=names)

    def _empty(self) -> pa.Table:
        schema = self._compiled.schema
        for name in self._added:
            schema = schema.append(pa.field(name, pa.string()))
        return schema.empty_table()

    def _quarantine(
        self, table: pa.Table, lines: pa.Array, bad: pa.Array, failures: list[tuple[str, pa.Array, Reason]]
    ) -> list[QuarantinedRow]:
        indices = pc.indices_nonzero(bad)
        positions = indices.to_pylist()
        raw_rows = table.take(indices).to_pylist()
        errors: list[list[dict[str, str]]] = [[] for _ in positions]
        for name, mask, reason in failures:
            flags = mask.take(indices).to_pylist()
            for slot, flagged in enumerate(flags):
                if flagged:
                    row_errors = errors[slot]
                    if not any(e["field"] == name for e in row_errors):
                        row_errors.append({"field": name, "reason": reason(positions[slot], raw_rows[slot].get(name))})
        line_values = lines.take(indices).to_pylist()
        quarantined = []
        for slot, raw in enumerate(raw_rows):
            row = {name: _display(value) for name, value in raw.items()}
            row_errors = errors[slot]
            if len(row) > 1 and all(value in (b"", "") for value in raw.values()):
                row_errors = [{"field": ROW_FIELD, "reason": BLANK_LINE}]
            quarantined.append(QuarantinedRow(line=line_values[slot], errors=row_errors, row=row))
        return quarantined

    def type_changes(self) -> list[str]:
        """Columns whose every value (of at least :data:`TYPE_CHANGE_MIN_VALUES`) failed the type parse."""
        changes = []
        for rule in self._compiled.rules:
            stats = self._stats[rule.name]
            if (
                rule.column.type in _PARSED_TYPES
                and stats.non_null >= TYPE_CHANGE_MIN_VALUES
                and stats.unparsed == stats.non_null
            ):
                changes.append(
                    f"column {rule.name!r} changed type: expected {rule.column.type.value}, "
                    f"found values like {quote(str(stats.example), 100)!r} (100% of {stats.non_null} values)"
                )
        return changes


def _malformed(row: MalformedRow) -> QuarantinedRow:
    return QuarantinedRow(line=row.line, errors=[{"field": ROW_FIELD, "reason": row.reason}], text=row.text)


def _as_text(values: pa.Array) -> pa.Array:
    """An undeclared column as strings; nothing is dropped (bad UTF-8 is backslash-escaped)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    try:
        return pc.cast(values, pa.string())
    except _CAST_ERRORS:
        return pa.array(
            [None if v is None else (v if isinstance(v, str) else str(_display(v))) for v in values.to_pylist()],
            pa.string(),
        )
