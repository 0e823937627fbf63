"""Record validation for the API: a fast path compiled from the contract, the contract's own model for reasons.

The contract's pydantic record model (:meth:`Contract.validate_record`) is the definition of a valid
record, but it costs tens of microseconds a record. :class:`RecordChecker` first runs plain checks
compiled from the same columns, which only ever accept what the model accepts (strict JSON types,
allowed values, finite numbers in range, string lengths); a record they do not accept — or a column
they cannot judge (timestamps, dates) — goes to the contract's model, which gives the field-level reasons.

A record to score has no label yet: the label column (and the event time, which is no feature) may be
absent or null; when present, they are checked like the rest (:func:`scoring_record_model`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError, create_model

from shared.usecase.settings import Column, ColumnType, Contract

Check = Callable[[Any], bool]
BatchCheck = Callable[[list[Any]], bool]
NONE_TYPE = type(None)


def unscored_columns(contract: Contract) -> frozenset[str]:
    """Columns a record to score may leave out: the label, and the event time."""
    return frozenset(name for name in (contract.label, contract.event_time) if name is not None)


def scoring_record_model(contract: Contract) -> type[BaseModel]:
    """The contract's strict record model, with the label and event time optional."""
    optional: dict[str, Any] = {
        name: (contract.column(name).python_type(strict=True) | None, None) for name in unscored_columns(contract)
    }
    return create_model("ScoringRecord", __base__=contract.record_model(strict=True), **optional)


def _numeric_in_range(column: Column, *, integer: bool) -> Check:
    low = -math.inf if column.min is None else column.min
    high = math.inf if column.max is None else column.max

    def check(value: Any) -> bool:
        kind = type(value)
        if kind is int:
            return low <= value <= high
        if kind is float and not integer:
            return math.isfinite(value) and low <= value <= high
        return False

    return check


def _column_check(column: Column) -> Check | None:
    """A check that accepts only values the contract's strict model accepts; None: leave it to the model."""
    check: Check | None
    if column.allowed is not None:
        allowed = frozenset((type(v), v) for v in column.allowed)

        def check(value: Any) -> bool:
            return (type(value), value) in allowed

    elif column.type is ColumnType.INT:
        check = _numeric_in_range(column, integer=True)
    elif column.type is ColumnType.FLOAT:
        check = _numeric_in_range(column, integer=False)
    elif column.type is ColumnType.BOOL:

        def check(value: Any) -> bool:
            return type(value) is bool

    elif column.type in (ColumnType.STRING, ColumnType.CATEGORY):
        limit = column.max_length

        def check(value: Any) -> bool:
            return type(value) is str and len(value) <= limit

    else:  # timestamps and dates: their formats are the model's business
        check = None
    if check is not None and column.nullable:
        check = _or_none(check)
    return check


def _batch_check(column: Column, nullable: bool) -> BatchCheck | None:
    """The same check over one column of a batch (``None``: absent or null), with C-level passes where it can.

    True only when every value passes the per-value check; False sends the batch to the per-record path.
    """

    def present(values: list[Any], types: set[type]) -> tuple[list[Any], set[type]] | None:
        if NONE_TYPE in types:
            if not nullable:
                return None
            types.discard(NONE_TYPE)
            values = [v for v in values if v is not None]
        return values, types

    if column.allowed is not None:
        allowed: set[tuple[type, Any]] = {(type(v), v) for v in column.allowed}
        if nullable:
            allowed.add((NONE_TYPE, None))
        frozen = frozenset(allowed)

        def check_allowed(values: list[Any]) -> bool:
            return set(zip(map(type, values), values, strict=True)) <= frozen

        return check_allowed
    if column.type in (ColumnType.INT, ColumnType.FLOAT):
        kinds = {int} if column.type is ColumnType.INT else {int, float}
        low = -math.inf if column.min is None else column.min
        high = math.inf if column.max is None else column.max

        def check_numeric(values: list[Any]) -> bool:
            found = present(values, set(map(type, values)))
            if found is None:
                return False
            numbers, types = found
            if not types <= kinds:
                return False
            if not numbers:
                return True
            try:
                if float in types and not all(map(math.isfinite, numbers)):
                    return False
            except OverflowError:
                return False
            return low <= min(numbers) and max(numbers) <= high

        return check_numeric
    if column.type is ColumnType.BOOL:

        def check_bool(values: list[Any]) -> bool:
            found = present(values, set(map(type, values)))
            return found is not None and found[1] <= {bool}

        return check_bool
    if column.type in (ColumnType.STRING, ColumnType.CATEGORY):
        limit = column.max_length

        def check_text(values: list[Any]) -> bool:
            found = present(values, set(map(type, values)))
            if found is None or not found[1] <= {str}:
                return False
            return not found[0] or max(map(len, found[0])) <= limit

        return check_text
    return None


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """One reason per field (a union type's alternatives, ``tenure.int`` / ``tenure.float``, folded into one)."""
    reasons: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else "<record>"
        reasons.setdefault(field, err["msg"])
    return [{"field": field, "reason": reason} for field, reason in reasons.items()]


REFUSAL_MISSING = "missing"
REFUSAL_NOT_ALLOWED = "not allowed"
REFUSAL_OUT_OF_RANGE = "out of range"
REFUSAL_WRONG_TYPE = "wrong type"
REFUSAL_UNEXPECTED = "unexpected field"
REFUSAL_MALFORMED = "malformed"
"""Reason kinds of a refused field: few and fixed (the monitor counts refusals by field and kind), never a value."""
_KIND_OF_ERROR = {
    "missing": REFUSAL_MISSING,
    "literal_error": REFUSAL_NOT_ALLOWED,
    "enum": REFUSAL_NOT_ALLOWED,
    "extra_forbidden": REFUSAL_UNEXPECTED,
    "greater_than": REFUSAL_OUT_OF_RANGE,
    "greater_than_equal": REFUSAL_OUT_OF_RANGE,
    "less_than": REFUSAL_OUT_OF_RANGE,
    "less_than_equal": REFUSAL_OUT_OF_RANGE,
    "finite_number": REFUSAL_OUT_OF_RANGE,
    "string_too_long": REFUSAL_OUT_OF_RANGE,
    "string_too_short": REFUSAL_OUT_OF_RANGE,
    "too_long": REFUSAL_OUT_OF_RANGE,
    "too_short": REFUSAL_OUT_OF_RANGE,
    "int_from_float": REFUSAL_WRONG_TYPE,
}


def reason_kind(error_type: str) -> str:
    """The reason kind of one pydantic error type (``missing``, ``literal_error``, ``int_type``...)."""
    kind = _KIND_OF_ERROR.get(error_type)
    if kind is not None:
        return kind
    if error_type.endswith("_type"):
        return REFUSAL_WRONG_TYPE
    return REFUSAL_MALFORMED


def refusal_reasons(exc: ValidationError) -> list[tuple[str, str]]:
    """One (field, reason kind) per refused field, as :func:`field_errors` folds them."""
    kinds: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else "<record>"
        kinds.setdefault(field, reason_kind(str(err["type"])))
    return list(kinds.items())


def _or_none(check: Check) -> Check:
    def nullable(value: Any) -> bool:
        return value is None or check(value)

    return nullable


class RecordChecker:
    """Field-level errors of one JSON record against the contract (empty when it is valid)."""

    def __init__(self, contract: Contract) -> None:
        self._model = scoring_record_model(contract)
        self._checks: list[tuple[str, Check, bool]] = []
        self._batch_checks: list[tuple[str, BatchCheck]] = []
        self._complete = True
        optional = unscored_columns(contract)
        for column in contract.columns:
            check = _column_check(column)
            if check is None:
                self._complete = False
                continue
            if column.name in optional:
                check = _or_none(check)
            nullable = column.nullable or column.name in optional
            self._checks.append((column.name, check, nullable))
            batch = _batch_check(column, nullable)
            if batch is None:
                self._complete = False
            else:
                self._batch_checks.append((column.name, batch))

    def passes_fast(self, record: Mapping[str, Any]) -> bool:
        """True only when the contract's model is certain to accept the record."""
        if not self._complete:
            return False
        for name, check, nullable in self._checks:
            if name in record:
                if not check(record[name]):
                    return False
            elif not nullable:
                return False
        return True

    def columns(self, records: Sequence[Any]) -> dict[str, list[Any]] | None:
        """Every column's values over the batch (``None`` where absent or null) when every record passes the
        fast checks, checked column by column; ``None`` when any might not (then check record by record)."""
        if not self._complete or not all(isinstance(r, dict) for r in records):
            return None
        columns: dict[str, list[Any]] = {}
        for name, check in self._batch_checks:
            values = [r.get(name) for r in records]
            if not check(values):
                return None
            columns[name] = values
        return columns

    def errors(self, record: Any) -> list[dict[str, str]]:
        return self.refused(record)[0]

    def refused(self, record: Any) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
        """The record's field-level errors, and its (field, reason kind) pairs (both empty when it is valid)."""
        if not isinstance(record, dict):
            problem = {"field": "<record>", "reason": "a record must be a JSON object"}
            return [problem], [("<record>", REFUSAL_WRONG_TYPE)]
        if self.passes_fast(record):
            return [], []
        try:
            self._model.model_validate(record)
        except ValidationError as exc:
            return field_errors(exc), refusal_reasons(exc)
        return [], []
