"""The prediction log as columns: what one monitoring window served and scored, ready for numpy.

:func:`prediction_columns` reads one prediction-log object (JSON Lines, as
:func:`~shared.scoring.prediction_log_lake.write_prediction_log` writes it) with ``pyarrow.json`` — one C++
pass, no per-line pydantic — into :class:`PredictionColumns`. An object pyarrow cannot read as one table
(lines of an older format: a block of columns, ids typed differently from line to line, a torn line) is read
line by line instead: a line that is not JSON or not a prediction is counted in ``unreadable``, never raised.
A line of kind ``refusal`` (a request's refused records for one field and reason kind) is no prediction: it
is read into ``ParsedObject.refusals``; a line of a kind this version does not know is unreadable.
Fields older lines lack take :class:`~shared.scoring.prediction_log_lake.PredictionLogRecord`'s defaults
(``index`` 0, ``degraded`` false, no entity id, no features).

Features are typed by the contract: a numeric column without ``allowed`` values (int, float) is ``float64``
with NaN for null; any other column (category, string, bool, int with ``allowed`` values, dates) is an object
array of ``str(value)`` with ``None`` for null — the keys of a baseline's category counts. Entity ids are
their ``str()`` (a label's ``42`` matches a logged ``"42"``). Times are UTC ``datetime64[us]``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shared.lake.layout import LOG_LINE_KIND, REFUSAL_KIND
from shared.usecase.settings import NUMERIC_TYPES, Column, Contract

TIME_UNIT = "datetime64[us]"
NUMERIC = "numeric"
CATEGORICAL = "categorical"


def feature_kind(column: Column) -> str:
    """``numeric`` (float64 columns) or ``categorical`` (object columns of ``str``)."""
    return NUMERIC if column.type in NUMERIC_TYPES and column.allowed is None else CATEGORICAL


def feature_kinds(contract: Contract) -> dict[str, str]:
    return {column.name: feature_kind(column) for column in contract.features}


def to_time(at: datetime) -> np.datetime64:
    """A datetime as the columns' UTC ``datetime64[us]`` (naive means UTC)."""
    at = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
    return np.datetime64(at, "us")


def _unset() -> np.ndarray:
    return np.empty(0, dtype=object)


@dataclass(frozen=True, kw_only=True)
class PredictionColumns:
    """Logged predictions, one entry per line in every array (served and shadow lines alike): the readers'
    output and the monitor's input (:class:`~shared.monitoring.types.MonitorWindow`).

    ``score``, ``model_version`` and ``variant`` are required; a column left out (a test's hand-made window) is
    filled to the row count: ``request_id`` ``""``, ``index`` 0, ``entity_id`` None, ``served`` true,
    ``degraded`` false, ``threshold`` NaN, ``time`` NaT.
    """

    score: np.ndarray
    """float64"""
    model_version: np.ndarray
    """int64 as read (the monitor compares versions as text)"""
    variant: np.ndarray
    """object (str): champion, challenger or shadow"""
    request_id: np.ndarray = field(default_factory=_unset)
    """object (str)"""
    index: np.ndarray = field(default_factory=_unset)
    """int64: the record's position in its request"""
    entity_id: np.ndarray = field(default_factory=_unset)
    """object (str, or None when the line had none)"""
    served: np.ndarray = field(default_factory=_unset)
    """bool: the score the client got (shadow lines are False)"""
    degraded: np.ndarray = field(default_factory=_unset)
    threshold: np.ndarray = field(default_factory=_unset)
    time: np.ndarray = field(default_factory=_unset)
    """datetime64[us], UTC"""
    features: dict[str, np.ndarray] = field(default_factory=dict)
    """numeric: float64 with NaN for null; categorical: object of ``str`` with None for null"""

    def __post_init__(self) -> None:
        rows = len(self)
        for name, fill in _FILLS.items():
            values = getattr(self, name)
            if values.shape[0] == 0 and rows:
                object.__setattr__(self, name, np.full(rows, fill, dtype=_DTYPES[name]))
        object.__setattr__(self, "score", np.asarray(self.score, dtype=np.float64))

    def __len__(self) -> int:
        return int(np.asarray(self.score).shape[0])

    def take(self, rows: np.ndarray) -> PredictionColumns:
        """The lines at ``rows`` (indices or a boolean mask)."""
        return PredictionColumns(
            **{name: getattr(self, name)[rows] for name in _ARRAYS},
            features={name: values[rows] for name, values in self.features.items()},
        )

    def between(self, start: datetime, end: datetime) -> PredictionColumns:
        """The lines with ``start <= time < end``."""
        return self.take((self.time >= to_time(start)) & (self.time < to_time(end)))


_ARRAYS = (
    "request_id",
    "index",
    "entity_id",
    "variant",
    "served",
    "degraded",
    "model_version",
    "score",
    "threshold",
    "time",
)
_DTYPES: dict[str, Any] = {
    "request_id": object,
    "index": np.int64,
    "entity_id": object,
    "variant": object,
    "served": bool,
    "degraded": bool,
    "model_version": np.int64,
    "score": np.float64,
    "threshold": np.float64,
    "time": TIME_UNIT,
}
_FILLS: dict[str, Any] = {
    "request_id": "",
    "index": 0,
    "entity_id": None,
    "served": True,
    "degraded": False,
    "threshold": np.nan,
    "time": np.datetime64("NaT"),
}


def empty_predictions(kinds: dict[str, str]) -> PredictionColumns:
    return PredictionColumns(
        **{name: np.empty(0, dtype=dtype) for name, dtype in _DTYPES.items()},
        features={name: np.empty(0, dtype=_feature_dtype(kind)) for name, kind in kinds.items()},
    )


def _feature_dtype(kind: str) -> Any:
    return np.float64 if kind == NUMERIC else object


@dataclass(frozen=True, kw_only=True)
class JoinedColumns:
    """Joined labels as columns: the predictions they answer (one line per label), and the labels.

    The readers' output (:func:`~shared.monitoring.labels.read_window`) and the monitor's input. Left out
    (a hand-made window), ``observed_at`` is NaT, ``joined_by`` ``request_id`` and ``shadow_score`` NaN.
    """

    predictions: PredictionColumns
    positive: np.ndarray
    """bool: the label is the contract's positive class"""
    observed_at: np.ndarray = field(default_factory=_unset)
    """datetime64[us], UTC: the label's time"""
    joined_by: np.ndarray = field(default_factory=_unset)
    """object: ``request_id`` or ``entity_id``"""
    shadow_score: np.ndarray = field(default_factory=_unset)
    """float64: the shadow score of the same record, NaN where none was logged"""
    weight: np.ndarray = field(default_factory=_unset)
    """float64: the label's weight in population estimates, 1 / its inclusion probability (a reviewed label,
    :mod:`shared.review.routing`); 1 for a label nobody sampled"""

    def __post_init__(self) -> None:
        rows = len(self)
        for name, fill, dtype in (
            ("observed_at", np.datetime64("NaT"), TIME_UNIT),
            ("joined_by", "request_id", object),
            ("shadow_score", np.nan, np.float64),
            ("weight", 1.0, np.float64),
        ):
            if getattr(self, name).shape[0] == 0 and rows:
                object.__setattr__(self, name, np.full(rows, fill, dtype=dtype))

    def __len__(self) -> int:
        return int(np.asarray(self.positive).shape[0])

    @property
    def score(self) -> np.ndarray:
        return self.predictions.score

    @property
    def model_version(self) -> np.ndarray:
        return self.predictions.model_version

    @property
    def features(self) -> dict[str, np.ndarray]:
        return self.predictions.features


@dataclass(frozen=True)
class RefusalLine:
    """One refusal line: ``count`` records of request ``request_id`` refused for ``reason`` on ``field``."""

    request_id: str
    field: str
    reason: str
    count: int
    time: np.datetime64

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.request_id, self.field, self.reason)

    @property
    def key(self) -> str:
        """The window's refusal key: ``field: reason``."""
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True)
class ParsedObject:
    """One object's lines as columns, its refusal lines, and how many of its lines could not be read."""

    columns: PredictionColumns
    unreadable: int = 0
    refusals: tuple[RefusalLine, ...] = ()


def prediction_columns(body: bytes, kinds: dict[str, str]) -> ParsedObject:
    """The lines of one prediction-log object (``kinds``: :func:`feature_kinds` of the contract)."""
    if not body.strip():
        return ParsedObject(empty_predictions(kinds))
    try:
        return ParsedObject(_arrow_columns(body, kinds))
    except _ArrowFallbackError:
        return _python_columns(body, kinds)


class _ArrowFallbackError(Exception):
    """The object is not one table pyarrow can read; read it line by line."""


def _arrow_columns(body: bytes, kinds: dict[str, str]) -> PredictionColumns:
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([pa.field("time", pa.timestamp("us", tz="UTC"))])
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        table = pj.read_json(io.BytesIO(body), parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _ArrowFallbackError from exc
    names = set(table.column_names)
    if LOG_LINE_KIND in names:  # refusal lines (or lines of a kind this version does not know)
        raise _ArrowFallbackError
    required = {"request_id", "score", "threshold", "model_version", "variant", "served", "time"}
    if not required <= names or (
        "index" in names and not pa.types.is_integer(table.schema.field("index").type)
    ):  # a block of columns, or lines that are not all predictions
        raise _ArrowFallbackError
    rows = table.num_rows
    if any(table.column(name).null_count for name in required):
        raise _ArrowFallbackError

    def column(name: str, default: Any) -> np.ndarray:
        dtype = _DTYPES[name]
        if name not in names:
            return np.full(rows, default, dtype=dtype)
        values = table.column(name).combine_chunks()
        if dtype is object:
            return np.asarray(values.to_pylist(), dtype=object)
        if values.null_count:
            values = values.fill_null(default)
        if name == "time":
            return values.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False).astype(TIME_UNIT)
        return values.to_numpy(zero_copy_only=False).astype(dtype)

    entity = column("entity_id", None)
    if "entity_id" in names and not pa.types.is_string(table.schema.field("entity_id").type):
        entity = np.asarray([None if v is None else str(v) for v in entity], dtype=object)
    features_table = table.column("features").combine_chunks() if "features" in names else None
    features: dict[str, np.ndarray] = {}
    for name, kind in kinds.items():
        values = None
        if features_table is not None and pa.types.is_struct(features_table.type):
            index = features_table.type.get_field_index(name)
            values = features_table.field(index) if index >= 0 else None
        features[name] = _feature_array(values, kind, rows)
    return PredictionColumns(
        request_id=column("request_id", None),
        index=column("index", 0),
        entity_id=entity,
        variant=column("variant", None),
        served=column("served", False),
        degraded=column("degraded", False),
        model_version=column("model_version", 0),
        score=column("score", np.nan),
        threshold=column("threshold", np.nan),
        time=column("time", None),
        features=features,
    )


def _feature_array(values: Any, kind: str, rows: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if values is None or pa.types.is_null(values.type):
        return np.full(rows, np.nan) if kind == NUMERIC else np.full(rows, None, dtype=object)
    if kind == NUMERIC:
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type):
            return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        return np.asarray([_number(v) for v in values.to_pylist()], dtype=np.float64)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    if pa.types.is_integer(values.type):
        return np.asarray(pc.cast(values, pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray([None if v is None else _category(v) for v in values.to_pylist()], dtype=object)


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def _category(value: Any) -> str:
    # JSON integers read as float by a mixed column are whole floats: "1", not "1.0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- the line-by-line reader: older formats, mixed types, torn lines -------------------------------------------------


def _python_columns(body: bytes, kinds: dict[str, str]) -> ParsedObject:
    lines: list[dict[str, Any]] = []
    refusals: list[RefusalLine] = []
    unreadable = 0
    for raw in body.splitlines():
        if not raw.strip():
            continue
        try:
            document = json.loads(raw)
        except ValueError:
            unreadable += 1
            continue
        kind = document.get(LOG_LINE_KIND) if isinstance(document, dict) else None
        if kind is not None:
            refusal = _refusal_line(document) if kind == REFUSAL_KIND else None
            if refusal is None:
                unreadable += 1
            else:
                refusals.append(refusal)
            continue
        if isinstance(document, dict) and isinstance(document.get("index"), list):
            found = _block_lines(document)
        else:
            found = [document]
        for line in found:
            row = _python_line(line)
            if row is None:
                unreadable += 1
            else:
                lines.append(row)
    return ParsedObject(_from_rows(lines, kinds), unreadable, tuple(refusals))


def _refusal_line(line: dict[str, Any]) -> RefusalLine | None:
    try:
        refusal = RefusalLine(
            request_id=str(line["request_id"]),
            field=str(line["field"]),
            reason=str(line["reason"]),
            count=int(line["count"]),
            time=to_time(datetime.fromisoformat(str(line["time"]))),
        )
    except (KeyError, TypeError, ValueError):
        return None
    return refusal if refusal.request_id and refusal.count > 0 else None


def _block_lines(block: dict[str, Any]) -> list[Any]:
    """The lines of a block (one variant's columns for a request), as an earlier message format sent them."""
    try:
        from shared.scoring.prediction_log_lake import PredictionLogBlock

        return [line.model_dump(mode="json") for line in PredictionLogBlock.model_validate(block).lines()]
    except ValueError:
        return [None]


def _python_line(line: Any) -> dict[str, Any] | None:
    if not isinstance(line, dict):
        return None
    try:
        time = datetime.fromisoformat(str(line["time"]))
        row = {
            "request_id": str(line["request_id"]),
            "index": int(line.get("index", 0)),
            "entity_id": None if line.get("entity_id") is None else str(line["entity_id"]),
            "variant": str(line["variant"]),
            "served": bool(line["served"]),
            "degraded": bool(line.get("degraded", False)),
            "model_version": int(line["model_version"]),
            "score": float(line["score"]),
            "threshold": float(line["threshold"]),
            "time": to_time(time),
            "features": line.get("features") or {},
        }
    except (KeyError, TypeError, ValueError):
        return None
    return row if isinstance(row["features"], dict) and row["request_id"] else None


def _from_rows(rows: Sequence[dict[str, Any]], kinds: dict[str, str]) -> PredictionColumns:
    arrays = {name: np.asarray([row[name] for row in rows], dtype=dtype) for name, dtype in _DTYPES.items()}
    if not rows:
        arrays = {name: np.empty(0, dtype=dtype) for name, dtype in _DTYPES.items()}
    features = {}
    for name, kind in kinds.items():
        values = [row["features"].get(name) for row in rows]
        if kind == NUMERIC:
            features[name] = np.asarray([_number(v) for v in values], dtype=np.float64)
        else:
            features[name] = np.asarray([None if v is None else _category(v) for v in values], dtype=object)
    return PredictionColumns(**arrays, features=features)


def concatenate(parts: Iterable[PredictionColumns], kinds: dict[str, str]) -> PredictionColumns:
    """One set of columns from several objects' (in order)."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty_predictions(kinds)
    if len(parts) == 1:
        return parts[0]
    return PredictionColumns(
        **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS},
        features={name: np.concatenate([p.features[name] for p in parts]) for name in kinds},
    )
