"""The v2 (Open Inference Protocol) body decoder: columns validated in one pass, bad rows to the record checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.scoring.columnar import InferBodyDecoder
from shared.scoring.exceptions import MalformedRequestError
from shared.usecase.settings import Contract

CONTRACT = Contract.model_validate(
    {
        "version": "1.0.0",
        "entity_id": "id",
        "label": "churn",
        "positive_class": "Yes",
        "columns": [
            {"name": "id", "type": "int", "min": 1},
            {"name": "churn", "type": "category", "allowed": ["No", "Yes"]},
            {"name": "tenure", "type": "int", "min": 0, "max": 120},
            {"name": "charges", "type": "float", "nullable": True},
            {"name": "plan", "type": "category", "allowed": ["basic", "pro"]},
            {"name": "paperless", "type": "bool"},
        ],
    }
)


def body(**overrides: Any) -> dict[str, Any]:
    inputs = {
        "id": ("INT64", [1, 2, 3]),
        "tenure": ("INT32", [0, 12, 120]),
        "charges": ("FP32", [9.5, None, 3]),
        "plan": ("BYTES", ["basic", "pro", "pro"]),
        "paperless": ("BOOL", [True, False, True]),
    }
    inputs.update(overrides)
    return {
        "inputs": [
            {"name": name, "shape": [len(data)], "datatype": datatype, "data": data}
            for name, (datatype, data) in inputs.items()
            if data is not None
        ]
    }


@pytest.fixture(scope="module")
def decoder() -> InferBodyDecoder:
    return InferBodyDecoder(CONTRACT)


def test_valid_columns_are_decoded_in_one_typed_pass(decoder: InferBodyDecoder) -> None:
    decoded = decoder.decode(json.dumps({**body(), "id": "r-1"}))
    assert decoded.validated
    assert decoded.protocol == "v2"
    assert decoded.id == "r-1"
    assert len(decoded) == 3
    assert decoded.columns is not None
    assert decoded.columns["tenure"] == [0, 12, 120]
    assert decoded.columns["charges"] == [9.5, None, 3]
    assert decoded.columns["churn"] == [None, None, None]  # the label, left out


def test_a_nullable_column_may_be_left_out_and_shape_n_by_1_is_accepted(decoder: InferBodyDecoder) -> None:
    sent = body(charges=("FP64", None))
    for item in sent["inputs"]:
        item["shape"] = [3, 1]
    decoded = decoder.decode(json.dumps(sent))
    assert decoded.validated
    assert decoded.columns is not None
    assert decoded.columns["charges"] == [None] * 3


def test_nested_n_by_1_data_is_flattened(decoder: InferBodyDecoder) -> None:
    sent = body()
    sent["inputs"][1] = {"name": "tenure", "shape": [3, 1], "datatype": "INT64", "data": [[0], [12], [120]]}
    decoded = decoder.decode(json.dumps(sent))
    assert decoded.records[1]["tenure"] == 12


@pytest.mark.parametrize(
    ("column", "value"),
    [("tenure", 121), ("tenure", 1.5), ("plan", "gold"), ("paperless", "yes"), ("id", None), ("charges", "x")],
)
def test_a_bad_value_sends_the_rows_to_the_record_checks(decoder: InferBodyDecoder, column: str, value: Any) -> None:
    sent = body()
    item = next(i for i in sent["inputs"] if i["name"] == column)
    item["data"][1] = value
    decoded = decoder.decode(json.dumps(sent))
    assert not decoded.validated
    assert len(decoded.records) == 3
    assert decoded.records[1][column] == value
    assert decoded.records[0]["tenure"] == 0


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        (body(tenure=("BYTES", [0, 12, 120])), "inputs.1.datatype"),
        (body(plan=("INT64", [1, 2, 3])), "inputs.3.datatype"),
        (body(charges=("BOOL", [True, False, True])), "inputs.2.datatype"),
        (body(tenure=("INT64", [0, 12])), "inputs"),
        (body(tenure=("INT64", None)), "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": [{"name": "id", "shape": [1], "datatype": "INT64"}]}, "<body>"),
        ({"rows": []}, "<body>"),
    ],
)
def test_a_malformed_body_is_refused_with_reasons(decoder: InferBodyDecoder, sent: Any, field: str) -> None:
    with pytest.raises(MalformedRequestError) as refused:
        decoder.decode(json.dumps(sent))
    assert field in {error["field"] for error in refused.value.errors}


def test_a_shape_that_does_not_fit_the_data_is_refused(decoder: InferBodyDecoder) -> None:
    sent = body()
    sent["inputs"][0]["shape"] = [2, 2]
    with pytest.raises(MalformedRequestError) as refused:
        decoder.decode(json.dumps(sent))
    assert refused.value.errors[0]["field"] == "inputs.0.shape"


def test_not_json_is_refused(decoder: InferBodyDecoder) -> None:
    with pytest.raises(MalformedRequestError):
        decoder.decode("{nope")
