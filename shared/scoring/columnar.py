"""Bulk bodies in the Open Inference Protocol's shape (KServe / Triton "v2" REST): one named input per column.

``POST /v2/models/{usecase}/infer`` takes ``{"inputs": [{"name", "shape", "datatype", "data"}, ...], "id"?,
"parameters"?, "outputs"?}``: one input per contract column (features, entity id, optionally the label and
the event time), each of shape ``[N]`` or ``[N, 1]`` with its ``data`` flat (or nested ``[[v], ...]`` for
``[N, 1]``), and a datatype that fits the column's type (:data:`V2_DATATYPES`: ``INT64``/``INT32``… for
int columns, ``FP32``/``FP64`` (or an integer type) for float columns, ``BOOL``, ``BYTES`` for category,
string, timestamp and date columns). A nullable column may hold ``null`` (a Sluice extension: v2 has no
nulls) or be left out.

Decoding mirrors the records body (:mod:`shared.scoring.wire`): :class:`InferBodyDecoder` compiles the
contract into one msgspec Struct per column — a tagged union on ``name`` whose ``data`` is typed with the
column's exact type (allowed values, range, length, nullability) — so a body of valid columns is decoded
and validated in one C pass, straight into one list per column (no record objects; the engine turns the
feature columns into the model's numpy inputs). A body that pass refuses is decoded again untyped: its shape
is checked (unknown or duplicate input, datatype or shape mismatch, columns of different lengths, a
required column missing: 400 with reasons), then its rows are checked as records are, so a row with a
bad value is refused with its field reasons while the others are scored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

import msgspec

from shared.scoring.checks import unscored_columns
from shared.scoring.exceptions import MalformedRequestError
from shared.scoring.wire import DecodedBody, encode
from shared.scoring.wire import value_type as value_type_of
from shared.usecase.settings import Column, ColumnType, Contract, UseCase

if TYPE_CHECKING:
    from shared.scoring.engine import ScoreOutcome

INTEGER_DATATYPES = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
V2_DATATYPES: dict[ColumnType, tuple[str, ...]] = {
    ColumnType.INT: INTEGER_DATATYPES,
    ColumnType.FLOAT: ("FP64", "FP32", "FP16", *INTEGER_DATATYPES),
    ColumnType.BOOL: ("BOOL",),
    ColumnType.CATEGORY: ("BYTES",),
    ColumnType.STRING: ("BYTES",),
    ColumnType.TIMESTAMP: ("BYTES",),
    ColumnType.DATE: ("BYTES",),
}
"""The v2 datatypes an input of each contract column type may declare."""
V2 = "v2"


def output_datatype(column: Column) -> str:
    """The v2 datatype of a column's values in a response."""
    return {ColumnType.INT: "INT64", ColumnType.FLOAT: "FP64", ColumnType.BOOL: "BOOL"}.get(column.type, "BYTES")


class _UntypedInput(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class _UntypedBody(msgspec.Struct, forbid_unknown_fields=True):
    inputs: list[_UntypedInput]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[Any] | None = None


def _typed_decoder(contract: Contract) -> msgspec.json.Decoder[Any] | None:
    """One Struct per column, tagged by ``name``, its ``data`` typed exactly; None when a column has no exact type."""
    optional = unscored_columns(contract)
    inputs = []
    for position, column in enumerate(contract.columns):
        value_type = value_type_of(column)
        if value_type is None:
            return None
        if column.nullable or column.name in optional:
            value_type = value_type | None
        inputs.append(
            msgspec.defstruct(
                f"Input{position}",
                [
                    ("shape", list[int]),
                    ("datatype", Literal[V2_DATATYPES[column.type]]),
                    ("data", list[value_type]),  # type: ignore[valid-type]
                    ("parameters", dict[str, Any] | None, None),
                ],
                tag_field="name",
                tag=column.name,
                forbid_unknown_fields=True,
                gc=False,
            )
        )
    body = msgspec.defstruct(
        "InferRequest",
        [
            ("inputs", list[Union[tuple(inputs)]]),  # type: ignore[misc]  # noqa: UP007 - a runtime union of types
            ("id", str | None, None),
            ("parameters", dict[str, Any] | None, None),
            ("outputs", list[Any] | None, None),
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(body)


class InferBodyDecoder:
    """A v2 infer body → :class:`DecodedBody` with ``columns`` (valid) or row records (to check), or a 400."""

    def __init__(self, contract: Contract) -> None:
        self._contract = contract
        self._typed = _typed_decoder(contract)
        optional = unscored_columns(contract)
        self._required = [c.name for c in contract.columns if not c.nullable and c.name not in optional]
        self._kinds = {c.name: c.type for c in contract.columns}

    def decode(self, body: bytes | str) -> DecodedBody:
        if self._typed is not None:
            try:
                decoded = self._typed.decode(body)
            except msgspec.MsgspecError:
                pass  # not necessarily bad: the untyped path says what is wrong, row by row
            else:
                names = [type(item).__struct_config__.tag for item in decoded.inputs]
                columns = self._columns(
                    names, [item.shape for item in decoded.inputs], [i.data for i in decoded.inputs]
                )
                count = len(next(iter(columns.values())))
                return DecodedBody([], validated=True, columns=columns, count=count, protocol=V2, id=decoded.id)
        return self._untyped(body)

    def _columns(self, names: Sequence[str], shapes: Sequence[list[int]], data: Sequence[list[Any]]) -> dict[str, Any]:
        """The inputs by column name, after the checks of the body's shape (raises a 400 with reasons)."""
        reasons: list[dict[str, str]] = []
        if not names:
            raise MalformedRequestError("the request body is malformed", [{"field": "inputs", "reason": "no input"}])
        lengths = {len(values) for values in data}
        for position, (shape, values) in enumerate(zip(shapes, data, strict=True)):
            if shape not in ([len(values)], [len(values), 1]):
                reason = f"shape {shape} does not fit {len(values)} values: send [N] or [N, 1]"
                reasons.append({"field": f"inputs.{position}.shape", "reason": reason})
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            reasons.append({"field": "inputs", "reason": f"inputs named twice: {twice}"})
        if len(lengths) > 1:
            sizes = dict(zip(names, map(len, data), strict=True))
            reasons.append({"field": "inputs", "reason": f"the inputs differ in length: {sizes}"})
        if 0 in lengths:
            reasons.append({"field": "inputs", "reason": "an input has no data"})
        missing = [name for name in self._required if name not in names]
        if missing:
            reasons.append({"field": "inputs", "reason": f"required columns missing: {missing}"})
        if reasons:
            raise MalformedRequestError("the request body is malformed", reasons)
        columns = dict(zip(names, data, strict=True))
        count = len(data[0])
        for name in self._kinds:
            if name not in columns:
                columns[name] = [None] * count  # a nullable column left out
        return columns

    def _untyped(self, body: bytes | str) -> DecodedBody:
        try:
            document = json.loads(body or "null")  # stdlib: NaN and Infinity parse, and get field-level reasons later
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedRequestError(
                "the request body is not JSON", [{"field": "<body>", "reason": str(exc)}]
            ) from exc
        try:
            request = msgspec.convert(document, _UntypedBody)
        except msgspec.ValidationError as exc:
            raise MalformedRequestError(
                "the request body is malformed", [{"field": "<body>", "reason": str(exc)}]
            ) from exc
        reasons: list[dict[str, str]] = []
        data: list[list[Any]] = []
        for position, item in enumerate(request.inputs):
            kind = self._kinds.get(item.name)
            if kind is None:
                reasons.append(
                    {"field": f"inputs.{position}.name", "reason": f"{item.name!r} is not a contract column"}
                )
            elif item.datatype not in V2_DATATYPES[kind]:
                allowed = ", ".join(V2_DATATYPES[kind])
                reason = f"datatype {item.datatype} does not fit the {kind.value} column {item.name!r} (send {allowed})"
                reasons.append({"field": f"inputs.{position}.datatype", "reason": reason})
            values = item.data
            if len(item.shape) == 2 and all(type(v) is list and len(v) == 1 for v in values):
                values = [v[0] for v in values]  # nested [[v], ...] for shape [N, 1]
            data.append(values)
        if reasons:
            raise MalformedRequestError("the request body is malformed", reasons)
        names = [item.name for item in request.inputs]
        columns = self._columns(names, [item.shape for item in request.inputs], data)
        sent = {name: columns[name] for name in names}
        records = [dict(zip(sent, row, strict=True)) for row in zip(*sent.values(), strict=True)]
        return DecodedBody(records, validated=False, protocol=V2, id=request.id)


def v2_response(outcome: ScoreOutcome, usecase: UseCase, request_id: str | None) -> bytes:
    """The v2 infer response: ``outputs`` by column over the scored rows, in request order, and the refused
    rows' field-level ``errors`` (as the records response has them).

    Outputs: ``index`` (each scored row's position in the request's inputs), ``entity_id``, ``score``,
    ``decision`` (the label at the threshold), ``model_version`` and ``variant``; ``model_version`` at the top
    is the served versions, comma-separated (two while a canary runs).
    """
    import numpy as np  # the engine has it loaded already

    contract = usecase.contract
    blocks = outcome.served
    index: list[int] = []
    entity: list[Any] = []
    score: list[float] = []
    decision: list[Any] = []
    for block in blocks:
        index += block.indices
        entity += block.entity_ids
        score += block.scores
        decision += block.labels
    versions = np.repeat([b.model_version for b in blocks], [len(b) for b in blocks])
    variants = np.repeat(np.array([b.variant for b in blocks], dtype=object), [len(b) for b in blocks])
    if len(blocks) > 1:
        order = np.argsort(index, kind="stable")
        index, entity = [index[i] for i in order], [entity[i] for i in order]
        score, decision = [score[i] for i in order], [decision[i] for i in order]
        versions, variants = versions[order], variants[order]
    shape = [len(index)]

    def output(name: str, datatype: str, data: list[Any]) -> dict[str, Any]:
        return {"name": name, "datatype": datatype, "shape": shape, "data": data}

    return encode(
        {
            "model_name": usecase.name,
            "model_version": ",".join(map(str, outcome.model_versions)),
            "id": request_id or outcome.request_id,
            "parameters": {"request_id": outcome.request_id, "degraded": outcome.degraded},
            "outputs": [
                output("index", "INT64", index),
                output("entity_id", output_datatype(contract.column(contract.entity_id)), entity),
                output("score", "FP64", score),
                output("decision", output_datatype(contract.column(contract.label)), decision),
                output("model_version", "INT64", versions.tolist()),
                output("variant", "BYTES", variants.tolist()),
            ],
            "errors": outcome.errors,
        }
    )
