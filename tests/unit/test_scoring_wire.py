"""The predict body decoder: the typed pass accepts only what the contract's model accepts; the rest gets reasons."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.scoring.checks import RecordChecker
from shared.scoring.exceptions import MalformedRequestError
from shared.scoring.wire import PredictBodyDecoder, record_type
from shared.usecase.settings import Contract, UseCase
from tests.scoring_model import telco_records

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
    st.sampled_from(["Yes", "No", "DSL", "Fiber optic", "Month-to-month", "1", "0", "", "NA"]),
    st.sampled_from([0, 1, 2, -1, 0.0, 1.0, 72, 121, 1e308]),
)


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "churn"} for r in telco_records()[:200]]


@pytest.fixture(scope="module")
def decoder(telco: UseCase) -> PredictBodyDecoder:
    return PredictBodyDecoder(telco.contract)


@pytest.fixture(scope="module")
def checker(telco: UseCase) -> RecordChecker:
    return RecordChecker(telco.contract)


def test_a_valid_batch_is_decoded_typed_with_the_records_values(
    decoder: PredictBodyDecoder, records: list[dict[str, Any]]
) -> None:
    # Given valid Telco records
    # When a batch and a single record are decoded
    batch = decoder.decode(json.dumps({"records": records}))
    one = decoder.decode(json.dumps({"record": records[0]}).encode())
    # Then both passed the contract while decoding, and hold the same values
    assert batch.validated
    assert one.validated
    assert batch.record_type is not None
    names = list(records[0])
    getter = batch.record_type.getter(names)
    assert [getter(r) for r in batch.records] == [tuple(r[n] for n in names) for r in records]
    assert len(one.records) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenure", 1.0),  # an int column given a float
        ("tenure", True),  # a bool is no int
        ("tenure", "12"),  # text is no int in JSON
        ("tenure", 121),  # over max
        ("tenure", -1),  # under min
        ("senior_citizen", 2),
        ("contract", "Monthly"),  # not an allowed category
        ("monthly_charges", "lots"),
        ("monthly_charges", None),  # not nullable
    ],
)
def test_a_bad_value_is_not_decoded_typed_and_gets_its_reason(
    decoder: PredictBodyDecoder, checker: RecordChecker, records: list[dict[str, Any]], field: str, value: Any
) -> None:
    # Given a batch whose second record has one bad value
    bad = [records[0], {**records[1], field: value}, records[2]]
    # When it is decoded
    decoded = decoder.decode(json.dumps({"records": bad}))
    # Then the typed pass refused it, and the record-by-record check names the field
    assert not decoded.validated
    assert checker.errors(decoded.records[0]) == []
    assert [e["field"] for e in checker.errors(decoded.records[1])] == [field]


def test_a_value_only_the_contracts_model_accepts_is_still_scored(
    decoder: PredictBodyDecoder, checker: RecordChecker, records: list[dict[str, Any]]
) -> None:
    # Given a record with true in an int column allowing [0, 1] (pydantic's Literal takes true as 1)
    record = {**records[0], "senior_citizen": True}
    # When it is decoded
    decoded = decoder.decode(json.dumps({"record": record}))
    # Then the typed pass (stricter) left it to the record-by-record check, which accepts it
    assert not decoded.validated
    assert checker.errors(decoded.records[0]) == []


def test_infinity_and_nan_are_refused_with_a_reason_not_a_malformed_body(
    decoder: PredictBodyDecoder, checker: RecordChecker, records: list[dict[str, Any]]
) -> None:
    # Given a body that Python's json writes with NaN and an overflowing number
    body = json.dumps({"records": [{**records[0], "monthly_charges": math.nan}]}).replace("NaN", "NaN")
    huge = json.dumps({"records": [{**records[0], "monthly_charges": 1}]}).replace(
        '"monthly_charges": 1', '"monthly_charges": 1e999'
    )
    # When they are decoded
    for text in (body, huge):
        decoded = decoder.decode(text)
        # Then the body is read, and the record is refused with a field-level reason
        assert not decoded.validated
        assert [e["field"] for e in checker.errors(decoded.records[0])] == ["monthly_charges"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "malformed"),
        ('{"records": []}', "malformed"),
        ('{"record": {}, "records": [{}]}', "malformed"),
        ('{"records": {"a": 1}}', "malformed"),
        ('{"rows": [{}]}', "malformed"),
        ("", "malformed"),
    ],
)
def test_a_body_of_the_wrong_shape_is_malformed_with_reasons(
    decoder: PredictBodyDecoder, body: str, reason: str
) -> None:
    # When a body that is not {"record": ...} or {"records": [...]} is decoded
    with pytest.raises(MalformedRequestError) as raised:
        decoder.decode(body)
    # Then it is refused as a whole, with why
    assert reason in str(raised.value)
    assert raised.value.errors


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_whatever_the_typed_pass_accepts_the_contracts_model_accepts(
    data: st.DataObject, decoder: PredictBodyDecoder, checker: RecordChecker, records: list[dict[str, Any]]
) -> None:
    # Given a valid record with some of its fields replaced, dropped or added at random
    record = dict(data.draw(st.sampled_from(records)))
    for name in data.draw(st.lists(st.sampled_from([*record, "churn", "extra"]), max_size=4)):
        if data.draw(st.booleans()):
            record[name] = data.draw(JSON_VALUES)
        else:
            record.pop(name, None)
    # When it is decoded
    decoded = decoder.decode(json.dumps({"record": record}))
    # Then the typed pass accepted it only if the contract's strict model does
    if decoded.validated:
        assert checker.errors(record) == [], record


def test_any_column_name_works(telco: UseCase) -> None:
    # Given a contract whose column names are a keyword, have spaces, and start with an underscore
    renamed = {"tenure": "class", "contract": "contract type", "partner": "_partner"}
    document = telco.contract.model_dump()
    for column in document["columns"]:
        column["name"] = renamed.get(column["name"], column["name"])
    document["segments"] = [renamed.get(s, s) for s in document["segments"]]
    contract = Contract.model_validate(document)
    decoder = PredictBodyDecoder(contract)
    record = {renamed.get(k, k): v for k, v in telco_records()[0].items() if k != "churn"}
    # When a record is decoded
    decoded = decoder.decode(json.dumps({"record": record}))
    # Then it is typed, and its values are found by their column names
    assert decoded.validated
    assert decoded.record_type is not None
    assert decoded.record_type.getter(["class", "contract type", "_partner"])(decoded.records[0]) == (
        record["class"],
        record["contract type"],
        record["_partner"],
    )


def test_a_contract_with_an_event_time_decodes_timestamps_only_as_the_model_does(telco: UseCase) -> None:
    # Given a contract with an event-time column (optional when scoring)
    document = telco.contract.model_dump()
    document["columns"] = [*document["columns"], {"name": "snapshot_at", "type": "timestamp"}]
    document["event_time"] = "snapshot_at"
    contract = Contract.model_validate(document)
    decoder, checker = PredictBodyDecoder(contract), RecordChecker(contract)
    assert record_type(contract) is not None
    base = {k: v for k, v in telco_records()[0].items() if k != "churn"}
    for stamp in [
        "2026-11-23T01:02:03Z",
        "2026-11-23T01:02:03+01:00",
        "2026-11-23T01:02:03",
        "2026-11-23t01:02:03z",
        "2026-11-23 01:02:03",
        "2026-11-23",
        "2026-13-01T00:00:00Z",
        "yesterday",
        1795400000,
        None,
    ]:
        record = {**base, "snapshot_at": stamp}
        # When a record with this event time is decoded
        decoded = decoder.decode(json.dumps({"record": record}))
        # Then a typed decode is only ever of a record the contract's model accepts
        if decoded.validated:
            assert checker.errors(record) == [], stamp
