"""Columns handled by distinct value: dictionary-encoded text checked against the contract, and prediction-log
texts kept coded and merged. Each must give what the value-by-value path gives, on random inputs with bad
values."""

from __future__ import annotations

import random

import msgspec
import pyarrow as pa
import pytest

from shared.batch.json_lines import Coded, column_texts, constant, join_lines
from shared.ingest.formats import RawBatch
from shared.ingest.validation import CompiledContract
from shared.usecase.settings import Column, ColumnType, Contract

CONTRACT = Contract(
    version="1.0.0",
    entity_id="id",
    label="plan",
    positive_class="gold",
    null_values=("", "NA"),
    columns=(
        Column(name="id", type=ColumnType.INT),
        Column(name="plan", type=ColumnType.CATEGORY, allowed=("gold", "basic")),
        Column(name="region", type=ColumnType.CATEGORY, allowed=("north", "south", "east"), nullable=True),
        Column(name="note", type=ColumnType.STRING, max_length=4, nullable=True),
        Column(name="code", type=ColumnType.STRING, max_length=3),
    ),
)
VALUES = {
    "plan": ["gold", "basic", "silver", "", "NA", None, "Gold"],
    "region": ["north", "south", "east", "west", "", "NA", None],
    "note": ["ok", "fine", "too long", "", "NA", None, "é"],
    "code": ["a", "abc", "abcd", "", "NA", None, "x"],
}


def _table(rng: random.Random, rows: int) -> pa.Table:
    columns = {"id": pa.array(range(rows), pa.int64())}
    for name, choices in VALUES.items():
        columns[name] = pa.array([rng.choice(choices) for _ in range(rows)], pa.string())
    return pa.table(columns)


def _coded(table: pa.Table) -> pa.Table:
    return pa.table(
        {name: table[name].dictionary_encode() if name in VALUES else table[name] for name in table.column_names}
    )


def _validated(table: pa.Table, *, keep_dictionaries: bool = False) -> tuple[list[dict], list[dict]]:
    compiled = CompiledContract(CONTRACT)
    validator = compiled.start_object(compiled.check_columns(table.column_names), keep_dictionaries=keep_dictionaries)
    result = validator.validate(RawBatch(table=table, lines=pa.array(range(1, table.num_rows + 1), pa.int64())))
    valid = result.valid
    decoded = pa.table(
        {
            n: valid[n].combine_chunks().dictionary_decode() if pa.types.is_dictionary(valid[n].type) else valid[n]
            for n in valid.column_names
        }
    )
    return decoded.to_pylist(), [row.as_document() for row in result.quarantined]


@pytest.mark.parametrize("seed", range(8))
def test_dictionary_text_columns_are_checked_as_the_decoded_ones(seed: int) -> None:
    # Given random rows, with nulls, null tokens, values outside `allowed` and over max_length
    table = _table(random.Random(seed), 300)
    # When they are validated as plain strings and as dictionary-encoded columns (kept encoded or not)
    plain = _validated(table)
    coded = _validated(_coded(table))
    kept = _validated(_coded(table), keep_dictionaries=True)
    # Then the same rows are valid, with the same values, and the same rows are refused with the same reasons
    assert plain[1], "the random rows hold bad values"
    assert coded == plain
    assert kept == plain


def test_kept_dictionaries_stay_encoded_with_null_tokens_as_nulls() -> None:
    # Given a nullable category column holding a null token
    table = _coded(
        pa.table(
            {"id": [1, 2], "plan": ["gold", "basic"], "region": ["NA", "east"], "note": [None, "x"], "code": ["a", "b"]}
        )
    )
    compiled = CompiledContract(CONTRACT)
    validator = compiled.start_object(compiled.check_columns(table.column_names), keep_dictionaries=True)
    # When it is validated with its dictionaries kept
    valid = validator.validate(RawBatch(table=table, lines=pa.array([1, 2], pa.int64()))).valid
    # Then the column is still encoded, and the token is a null row
    assert pa.types.is_dictionary(valid["region"].type)
    assert valid["region"].is_null().to_pylist() == [True, False]
    assert valid["region"].to_pylist() == [None, "east"]


@pytest.mark.parametrize("seed", range(8))
def test_coded_and_merged_log_columns_are_the_bytes_msgspec_writes(seed: int) -> None:
    # Given random columns: few and many distinct values, numbers, bools, text, with nulls and -0.0
    rng = random.Random(seed)
    rows = rng.choice([1, 7, 64, 600])
    table = pa.table(
        {
            "flag": pa.array([rng.choice([True, False, None]) for _ in range(rows)]),
            "small": pa.array([rng.choice([0, 1, 2, None]) for _ in range(rows)], pa.int64()),
            "many": pa.array([rng.randrange(10**9) for _ in range(rows)], pa.int64()),
            "zero": pa.array([rng.choice([0.0, -0.0, 1.5, None]) for _ in range(rows)], pa.float64()),
            "real": pa.array([rng.random() for _ in range(rows)], pa.float64()),
            "text": pa.array([rng.choice(["a", 'q"', "é,x", None]) for _ in range(rows)]),
            "coded": pa.array([rng.choice(["u", "v", None]) for _ in range(rows)]).dictionary_encode(),
        }
    )
    # When the lines are joined from coded columns, merged where they are small
    parts: list[bytes | pa.Array | Coded] = [b'{"k":1']
    for name in table.column_names:
        parts += [b"," + constant(name) + b":", column_texts(table[name])]
    lines = join_lines([*parts, b"}\n"], rows)
    # Then they are the bytes of one dict per row
    encoder = msgspec.json.Encoder()
    assert bytes(lines) == b"".join(encoder.encode({"k": 1, **row}) + b"\n" for row in table.to_pylist())
