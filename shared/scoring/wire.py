"""The predict body on the wire: decoded and validated in one pass, in C, against types compiled from the contract.

:func:`record_type` compiles the contract into a msgspec ``Struct``: each column's JSON type, allowed
values, range, length and nullability, with the label and the event time optional (a record to score
has no label yet). Decoding a body with it checks every record while parsing: a 1,000-record body
costs about as much as parsing it untyped. The types accept only what the contract's strict pydantic
model (:func:`~shared.scoring.checks.scoring_record_model`) accepts, so a record decoded this way is
valid. A body they refuse is not necessarily bad: it is decoded again untyped, its shape checked by
:class:`~shared.scoring.api.PredictRequest` (400 with reasons), and its records checked one by one
(:class:`~shared.scoring.checks.RecordChecker`) so that the good ones are still scored and the others
get field-level reasons.

Fields are named ``c0``, ``c1``… and renamed to the column names on the wire, so any column name
works (a keyword, a space, a leading underscore).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec
from pydantic import ValidationError

from shared.scoring.checks import unscored_columns
from shared.scoring.exceptions import MalformedRequestError
from shared.usecase.settings import Column, ColumnType, Contract

FLOAT_MAX = sys.float_info.max
"""Finite bounds for float columns without min/max: the contract's model refuses infinities."""

ENCODER = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """JSON bytes of builtins, msgspec Structs and lists of either."""
    return ENCODER.encode(value)


def value_type(column: Column) -> Any | None:  # noqa: PLR0911 - one branch per column type
    """The msgspec type of one non-null value of ``column``; None when it cannot be said exactly."""
    if column.allowed is not None:
        kinds = {type(v) for v in column.allowed}
        if kinds <= {str} or kinds <= {int}:
            return Literal[tuple(column.allowed)]
        return None
    match column.type:
        case ColumnType.INT:
            low = None if column.min is None else math.ceil(column.min)
            high = None if column.max is None else math.floor(column.max)
            return Annotated[int, msgspec.Meta(ge=low, le=high)] if low is not None or high is not None else int
        case ColumnType.FLOAT:
            low_f = -FLOAT_MAX if column.min is None else float(column.min)
            high_f = FLOAT_MAX if column.max is None else float(column.max)
            return Annotated[float, msgspec.Meta(ge=low_f, le=high_f)]
        case ColumnType.BOOL:
            return bool
        case ColumnType.STRING | ColumnType.CATEGORY:
            return Annotated[str, msgspec.Meta(max_length=column.max_length)]
        case ColumnType.TIMESTAMP:
            return datetime
        case ColumnType.DATE:
            return date
    return None


@dataclass(frozen=True)
class RecordType:
    """A contract compiled to a Struct type; ``attribute`` maps a column name to its field name."""

    struct: type[msgspec.Struct]
    attribute: dict[str, str]

    def getter(self, names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
        """A function from a record to the tuple of its values of ``names`` (in C: ``attrgetter``)."""
        fields = [self.attribute[name] for name in names]
        if len(fields) == 1:
            single = attrgetter(fields[0])
            return lambda record: (single(record),)
        return attrgetter(*fields)


def record_type(contract: Contract) -> RecordType | None:
    """The contract's record as a Struct type; None when a column's rule has no exact msgspec type."""
    optional = unscored_columns(contract)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    attribute: dict[str, str] = {}
    for position, column in enumerate(contract.columns):
        exact = value_type(column)
        if exact is None:
            return None
        name = f"c{position}"
        attribute[column.name] = name
        if column.nullable or column.name in optional:
            fields.append((name, exact | None, None))
        else:
            fields.append((name, exact))
    struct = msgspec.defstruct(
        "ScoringRecord",
        fields,
        kw_only=True,
        rename={field[0]: column.name for field, column in zip(fields, contract.columns, strict=True)},
        gc=False,
    )
    return RecordType(struct=struct, attribute=attribute)


@dataclass(frozen=True)
class DecodedBody:
    """The records of a predict body; ``validated``: each passed the contract while being decoded.

    A columnar body (:mod:`shared.scoring.columnar`) decoded valid has ``columns`` (every contract column's
    values, ``None`` where null or left out) and ``count`` instead of records. ``protocol`` names the
    response's shape (``"records"`` or ``"v2"``), ``id`` the v2 request's id.
    """

    records: list[Any]
    validated: bool
    record_type: RecordType | None = None
    columns: dict[str, list[Any]] | None = None
    count: int | None = None
    protocol: str = "records"
    id: str | None = None

    def __len__(self) -> int:
        return self.count if self.count is not None else len(self.records)


class PredictBodyDecoder:
    """``{"record": {...}}`` or ``{"records": [...]}`` → :class:`DecodedBody`, or :class:`MalformedRequestError`."""

    def __init__(self, contract: Contract) -> None:
        self.record_type = record_type(contract)
        self._typed: msgspec.json.Decoder[Any] | None = None
        if self.record_type is not None:
            record = self.record_type.struct
            body = msgspec.defstruct(
                "PredictBody",
                [("record", record | None, None), ("records", list[record] | None, None)],  # type: ignore[valid-type]
                forbid_unknown_fields=True,
                gc=False,
            )
            self._typed = msgspec.json.Decoder(body)

    def decode(self, body: bytes | str) -> DecodedBody:
        if self._typed is not None:
            try:
                decoded = self._typed.decode(body)
            except msgspec.MsgspecError:
                pass  # not necessarily bad: the untyped path below says what is wrong, record by record
            else:
                one, many = decoded.record, decoded.records
                if (one is None) != (many is None) and (one is not None or many):
                    return DecodedBody([one] if one is not None else many, validated=True, record_type=self.record_type)
        return DecodedBody(untyped_records(body), validated=False)


def untyped_records(body: bytes | str) -> list[Any]:
    """The records of a body the typed decoder refused, with the reasons why the body itself is malformed."""
    try:
        document = json.loads(body or "null")  # stdlib: NaN and Infinity parse, and get field-level reasons later
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedRequestError("the request body is not JSON", [{"field": "<body>", "reason": str(exc)}]) from exc
    from shared.scoring.api import PredictRequest  # the slow path only: its pydantic models are not built at cold start

    try:
        request = PredictRequest.model_validate(document)
    except ValidationError as exc:
        raise malformed(exc) from exc
    return request.all_records()


def malformed(exc: ValidationError) -> MalformedRequestError:
    """A body that does not have the route's shape (400), with pydantic's reasons by field."""
    reasons = [
        {"field": ".".join(str(p) for p in error.get("loc", ())) or "<body>", "reason": error.get("msg")}
        for error in exc.errors(include_url=False)
    ]
    return MalformedRequestError("the request body is malformed", reasons)
