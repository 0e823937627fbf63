"""Every input ingest can meet has a documented outcome and reason (docs/ingest-outcomes.md).

Each test checks the outcome, the reason and the invariant rows_in = rows_curated + rows_quarantined
(the ``ingest`` fixture asserts the invariant on every manifest).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.ingest.formats import SUPPORTED_EXTENSIONS
from shared.lake import layout as lake
from shared.lake.manifest import IngestStatus
from shared.usecase.settings import UseCase
from tests.fakes import InMemoryObjectStore
from tests.unit.conftest import LAKE_BUCKET, Ingest, telco_frame
from tests.unit.helpers import curated_table, quarantined_rows, reasons, rejection_report

TELCO_ROWS = 7043


def edit(csv_text: str, edits: dict[tuple[int, str], str]) -> str:
    """The CSV with field ``column`` of data row ``index`` (0-based) replaced."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    header = rows[0]
    for (index, column), value in edits.items():
        rows[index + 1][header.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def assert_rejected(store: InMemoryObjectStore, manifest, reason_part: str) -> dict:
    assert manifest.status is IngestStatus.REJECTED
    assert reason_part in manifest.reason
    assert manifest.rows_curated == 0
    assert manifest.rows_quarantined == manifest.rows_in
    assert manifest.curated_keys == ()
    curated = [key for key in store.keys(LAKE_BUCKET, "curated/") if manifest.object_id in key]
    assert not curated, "nothing curated for a rejected object"
    report = rejection_report(store, manifest)
    assert report["reason"] == manifest.reason
    copy_key = next(k for k in manifest.quarantine_keys if "/source" in k)
    assert store.body(LAKE_BUCKET, copy_key) == store.body("raw", manifest.source_key)
    return report


def test_clean_telco_csv_is_curated_whole_with_types_and_lineage(ingest: Ingest, store, telco_csv) -> None:
    # Given the Telco rows as a CSV
    # When it is ingested
    manifest = ingest("telco/2024-05-01.csv", telco_csv)
    # Then every row is curated, typed, and carries its lineage
    assert manifest.status is IngestStatus.ACCEPTED
    assert (manifest.rows_in, manifest.rows_curated, manifest.rows_quarantined) == (TELCO_ROWS, TELCO_ROWS, 0)
    assert manifest.curated_keys == (f"curated/telco_churn/ingest_date=2024-05-01/{manifest.object_id}.parquet",)
    table = curated_table(store, manifest)
    assert table.schema.field("rownames").type == pa.int64()
    assert table.schema.field("total_charges").type == pa.float64()
    assert table.schema.field("churn").type == pa.string()
    assert table["total_charges"].null_count == 11
    assert table["_line"].to_pylist()[:3] == [2, 3, 4]
    assert set(table["_source_key"].to_pylist()) == {"telco/2024-05-01.csv"}
    assert table.schema.field("_ingested_at").type == pa.timestamp("us", tz="UTC")
    manifest_doc = store.json(LAKE_BUCKET, lake.manifest_key("telco_churn", manifest.object_id))
    assert manifest_doc["rows_curated"] == TELCO_ROWS


def test_empty_file_is_rejected(ingest: Ingest, store) -> None:
    # Given a zero-byte upload / When ingested / Then rejected as empty, nothing counted
    manifest = ingest("telco/empty.csv", b"")
    assert_rejected(store, manifest, "the object is empty (0 bytes)")
    assert manifest.rows_in == 0


def test_header_only_is_accepted_with_no_rows(ingest: Ingest, store, telco_csv) -> None:
    # Given a CSV with the header and no rows
    manifest = ingest("telco/header.csv", telco_csv.splitlines()[0] + "\n")
    # Then it is accepted with zero rows and nothing written but the manifest
    assert manifest.status is IngestStatus.ACCEPTED
    assert manifest.reason == "no data rows"
    assert (manifest.rows_in, manifest.curated_keys, manifest.quarantine_keys) == (0, (), ())


def test_binary_garbage_is_rejected(ingest: Ingest, store) -> None:
    # Given random bytes named .csv
    garbage = b"\x00\x01PK\x03\x04" + bytes(range(256)) * 8
    manifest = ingest("telco/garbage.csv", garbage)
    # Then the object is rejected as binary and copied to quarantine
    assert_rejected(store, manifest, "binary data")
    assert manifest.rows_in == 0


def test_wrong_delimiter_is_rejected_with_a_hint(ingest: Ingest, store, telco_csv) -> None:
    # Given the Telco CSV written with semicolons
    semicolons = telco_csv.replace(",", ";")
    manifest = ingest("telco/semicolons.csv", semicolons)
    # Then it is rejected, the reason names the delimiter, and every line is counted
    assert_rejected(store, manifest, "wrong delimiter: the header looks ';'-separated, expected ','")
    assert manifest.rows_in == TELCO_ROWS


def test_non_utf8_bytes_quarantine_only_the_affected_row(ingest: Ingest, store, telco_csv) -> None:
    # Given one field holding Latin-1 bytes
    data = edit(telco_csv, {(4, "payment_method"): "@@LATIN1@@"}).encode()
    data = data.replace(b"@@LATIN1@@", "Chèque".encode("latin-1"))
    manifest = ingest("telco/latin1.csv", data)
    # Then that row alone is quarantined, naming the field
    assert manifest.status is IngestStatus.ACCEPTED
    assert (manifest.rows_curated, manifest.rows_quarantined) == (TELCO_ROWS - 1, 1)
    [row] = quarantined_rows(store, manifest)
    assert row["line"] == 6
    assert reasons(row) == {"payment_method": "not valid UTF-8 text"}
    assert row["row"]["payment_method"] == "Ch\\xe8que"


def test_missing_required_column_rejects_the_object(ingest: Ingest, store) -> None:
    # Given the Telco rows without the tenure column
    frame = telco_frame().drop(columns=["tenure"])
    manifest = ingest("telco/no-tenure.csv", frame.to_csv(index=False))
    # Then the object is rejected and the report says which column is missing
    report = assert_rejected(store, manifest, "column 'tenure' missing")
    assert manifest.rows_in == TELCO_ROWS
    assert "column 'tenure' missing" in report["schema_changes"]


def test_renamed_column_is_reported_as_renamed(ingest: Ingest, store) -> None:
    # Given tenure renamed tenure_months, in place
    frame = telco_frame().rename(columns={"tenure": "tenure_months"})
    manifest = ingest("telco/renamed.csv", frame.to_csv(index=False))
    # Then the rejection says it looks renamed
    assert_rejected(
        store,
        manifest,
        "column 'tenure' missing; unexpected column 'tenure_months' at the same position: looks renamed",
    )


def test_extra_column_is_accepted_kept_as_string_and_recorded(ingest: Ingest, store) -> None:
    # Given an undeclared column
    frame = telco_frame().assign(region=[f"r{i % 3}" for i in range(TELCO_ROWS)])
    manifest = ingest("telco/extra.csv", frame.to_csv(index=False))
    # Then rows are curated with the column as a string, and the manifest records it
    assert manifest.status is IngestStatus.ACCEPTED
    assert manifest.rows_curated == TELCO_ROWS
    assert manifest.columns_added == ("region",)
    assert "column 'region' added (kept as a string column)" in manifest.schema_changes
    table = curated_table(store, manifest)
    assert table.schema.field("region").type == pa.string()
    assert table["region"].to_pylist()[:2] == ["r0", "r1"]


def test_wrong_types_in_a_few_rows_are_quarantined_per_field(ingest: Ingest, store, telco_csv) -> None:
    # Given two rows with values that are not of the column's type
    data = edit(telco_csv, {(0, "tenure"): "twelve", (9, "monthly_charges"): "12,5"})
    manifest = ingest("telco/types.csv", data)
    # Then those rows alone are quarantined with the field and the value
    assert manifest.rows_quarantined == 2
    rows = {row["line"]: reasons(row) for row in quarantined_rows(store, manifest)}
    assert rows == {
        2: {"tenure": "expected int, found 'twelve'"},
        11: {"monthly_charges": "expected float, found '12,5'"},
    }


def test_column_whose_every_value_fails_its_type_is_a_type_change(ingest: Ingest, store) -> None:
    # Given tenure written as "N months" in every row
    frame = telco_frame()
    frame["tenure"] = [f"{t} months" for t in frame["tenure"]]
    manifest = ingest("telco/tenure-text.csv", frame.to_csv(index=False))
    # Then the object is rejected as a changed type, with an example and the share
    first = frame["tenure"].iloc[0]
    report = assert_rejected(
        store,
        manifest,
        f"column 'tenure' changed type: expected int, found values like '{first}' (100% of {TELCO_ROWS} values)",
    )
    assert manifest.rows_in == TELCO_ROWS
    assert report["schema_changes"][0].startswith("column 'tenure' changed type")
    assert not store.keys(LAKE_BUCKET, "quarantine/telco_churn/ingest_date="), "no row-level output published"


def test_nan_and_infinity_are_not_finite(ingest: Ingest, store, telco_csv) -> None:
    # Given NaN and infinities in float columns
    data = edit(
        telco_csv, {(0, "monthly_charges"): "NaN", (1, "total_charges"): "inf", (2, "monthly_charges"): "-Infinity"}
    )
    manifest = ingest("telco/nan.csv", data)
    # Then those rows are quarantined as not finite
    rows = {row["line"]: reasons(row) for row in quarantined_rows(store, manifest)}
    assert rows == {
        2: {"monthly_charges": "not a finite number: 'NaN'"},
        3: {"total_charges": "not a finite number: 'inf'"},
        4: {"monthly_charges": "not a finite number: '-Infinity'"},
    }


def test_out_of_range_values_are_quarantined(ingest: Ingest, store, telco_csv) -> None:
    data = edit(telco_csv, {(0, "tenure"): "130", (1, "monthly_charges"): "-1.5"})
    manifest = ingest("telco/range.csv", data)
    rows = {row["line"]: reasons(row) for row in quarantined_rows(store, manifest)}
    assert rows == {
        2: {"tenure": "value 130 is above the maximum 120"},
        3: {"monthly_charges": "value -1.5 is below the minimum 0"},
    }


def test_values_outside_the_allowed_set_are_quarantined(ingest: Ingest, store, telco_csv) -> None:
    data = edit(telco_csv, {(0, "churn"): "Maybe", (1, "female"): "2"})
    manifest = ingest("telco/allowed.csv", data)
    rows = {row["line"]: reasons(row) for row in quarantined_rows(store, manifest)}
    assert rows == {
        2: {"churn": "value 'Maybe' is not one of ['No', 'Yes']"},
        3: {"female": "value '2' is not one of ['0', '1']"},
    }


def test_missing_value_in_non_nullable_column(ingest: Ingest, store, telco_csv) -> None:
    data = edit(telco_csv, {(3, "contract"): "NA"})
    manifest = ingest("telco/null.csv", data)
    [row] = quarantined_rows(store, manifest)
    assert reasons(row) == {"contract": "missing value: the column is not nullable"}


def test_duplicate_entity_ids_keep_the_first(ingest: Ingest, store, telco_csv) -> None:
    # Given row 10 and row 5000 repeating the ids of rows 1 and 3 (lines 2 and 4)
    data = edit(telco_csv, {(10, "rownames"): "1", (5000, "rownames"): "3"})
    manifest = ingest("telco/dupes.csv", data, block_size=64 * 1024)
    # Then the later rows are quarantined, pointing at the first
    rows = {row["line"]: reasons(row) for row in quarantined_rows(store, manifest)}
    assert rows == {
        12: {"rownames": "duplicate entity id, first seen at line 2"},
        5002: {"rownames": "duplicate entity id, first seen at line 4"},
    }
    assert curated_table(store, manifest)["rownames"].to_pylist().count(1) == 1


def test_malformed_rows_are_counted_and_quarantined_with_exact_lines(ingest: Ingest, store, telco_csv) -> None:
    # Given a row with a field too few, and a bad value on a later line
    lines = telco_csv.splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]
    data = edit("\n".join(lines) + "\n", {(9, "tenure"): "x"})
    manifest = ingest("telco/malformed.csv", data)
    # Then both are quarantined, with the physical line numbers
    rows = {row["line"]: row for row in quarantined_rows(store, manifest)}
    assert rows[4]["errors"] == [{"field": "<row>", "reason": "expected 21 fields, found 20"}]
    assert rows[4]["text"] == lines[3]
    assert reasons(rows[11]) == {"tenure": "expected int, found 'x'"}
    assert (manifest.rows_in, manifest.rows_quarantined) == (TELCO_ROWS, 2)


def test_blank_line_is_a_quarantined_row(ingest: Ingest, store, telco_csv) -> None:
    lines = telco_csv.splitlines()
    data = "\n".join([*lines[:3], "", *lines[3:]]) + "\n"
    manifest = ingest("telco/blank.csv", data)
    [row] = quarantined_rows(store, manifest)
    assert row["line"] == 4
    assert row["errors"] == [{"field": "<row>", "reason": "blank line"}]
    assert manifest.rows_in == TELCO_ROWS + 1


def test_long_string_field_is_quarantined_by_max_length(ingest: Ingest, store, notes_usecase: UseCase) -> None:
    # Given a 2 MB value in a string column of max_length 100
    body = "id,notes,label\n1,short,a\n2," + "x" * 2_000_000 + ",b\n"
    manifest = ingest("notes/long.csv", body, usecase=notes_usecase)
    [row] = quarantined_rows(store, manifest)
    assert reasons(row) == {"notes": "longer than max_length 100: 2000000 characters"}
    assert manifest.rows_curated == 1


def test_line_longer_than_the_block_size_rejects_the_object(ingest: Ingest, store, notes_usecase: UseCase) -> None:
    body = "id,notes,label\n1,short,a\n2," + "x" * 5000 + ",b\n"
    manifest = ingest("notes/huge-line.csv", body, usecase=notes_usecase, block_size=1024)
    assert_rejected(store, manifest, "a line is longer than the reader's block size of 1024 bytes")


def test_truncated_gzip_rejects_the_object(ingest: Ingest, store, telco_csv) -> None:
    # Given a gzip cut short
    compressed = gzip.compress(telco_csv.encode())
    manifest = ingest("telco/cut.csv.gz", compressed[: len(compressed) // 2], block_size=64 * 1024)
    # Then nothing is curated and the reason says truncated
    assert_rejected(store, manifest, "gzip stream is truncated")
    assert manifest.compression == "gzip"


def test_gzip_is_detected_from_its_bytes(ingest: Ingest, store, telco_csv) -> None:
    manifest = ingest("telco/no-suffix.csv", gzip.compress(telco_csv.encode()))
    assert (manifest.status, manifest.compression, manifest.rows_curated) == (IngestStatus.ACCEPTED, "gzip", TELCO_ROWS)


def test_unknown_extension_is_rejected_with_the_supported_list(ingest: Ingest, store) -> None:
    manifest = ingest("telco/book.xlsx", b"PK\x03\x04 not a csv")
    assert_rejected(
        store, manifest, "unsupported file extension '.xlsx'; supported: " + ", ".join(SUPPORTED_EXTENSIONS)
    )
    assert manifest.format is None
    assert store.exists(LAKE_BUCKET, lake.rejected_source_key("telco_churn", manifest.object_id, ".xlsx"))


def test_json_lines_rows_are_validated_per_line(ingest: Ingest, store) -> None:
    # Given JSON Lines with a malformed line, a NaN and a wrong type
    records = telco_frame().head(50).to_dict(orient="records")
    lines = [json.dumps(r) for r in records]
    lines[5] = lines[5][:-10]
    lines[7] = lines[7].replace(f'"monthly_charges": {records[7]["monthly_charges"]}', '"monthly_charges": NaN')
    lines[9] = lines[9].replace(f'"tenure": {records[9]["tenure"]}', '"tenure": "ten"')
    manifest = ingest("telco/rows.jsonl.gz", gzip.compress(("\n".join(lines) + "\n").encode()))
    # Then each bad line is quarantined alone, by line number
    rows = {row["line"]: row for row in quarantined_rows(store, manifest)}
    assert set(rows) == {6, 8, 10}, manifest.reason
    assert rows[6]["errors"][0]["reason"].startswith("not valid JSON")
    assert reasons(rows[8]) == {"monthly_charges": "not a finite number: 'NaN'"}
    assert reasons(rows[10]) == {"tenure": "expected int, found 'ten'"}
    assert (manifest.format, manifest.rows_curated) == ("jsonl", 47)


def test_clean_json_lines_take_the_fast_path(ingest: Ingest, store) -> None:
    body = telco_frame().to_json(orient="records", lines=True)
    manifest = ingest("telco/rows.ndjson", body)
    assert (manifest.status, manifest.rows_curated) == (IngestStatus.ACCEPTED, TELCO_ROWS)
    assert curated_table(store, manifest)["_line"].to_pylist()[-1] == TELCO_ROWS


def test_parquet_is_curated_and_a_retyped_parquet_column_rejected(ingest: Ingest, store) -> None:
    # Given the Telco rows as Parquet
    table = pa.Table.from_pandas(telco_frame(), preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    manifest = ingest("telco/rows.parquet", buffer.getvalue())
    assert (manifest.status, manifest.rows_curated) == (IngestStatus.ACCEPTED, TELCO_ROWS)
    # And the same with tenure stored as a boolean
    retyped = table.set_column(table.schema.get_field_index("tenure"), "tenure", pa.array([True] * TELCO_ROWS))
    buffer = io.BytesIO()
    pq.write_table(retyped, buffer)
    manifest = ingest("telco/retyped.parquet", buffer.getvalue())
    assert_rejected(store, manifest, "column 'tenure' changed type: expected int, found bool")
    assert manifest.rows_in == TELCO_ROWS


def test_not_a_parquet_file_is_rejected(ingest: Ingest, store) -> None:
    manifest = ingest("telco/fake.parquet", os.urandom(64))
    assert_rejected(store, manifest, "not a Parquet file")


def test_same_object_twice_has_one_effect(ingest: Ingest, store, telco_csv) -> None:
    # Given an object already ingested
    first = ingest("telco/again.csv", telco_csv)
    writes = len(store.writes)
    # When it is delivered again
    second = ingest("telco/again.csv", telco_csv)
    # Then the manifest is returned as is and nothing is written
    assert second == first
    assert len(store.writes) == writes


@pytest.fixture
def notes_usecase() -> UseCase:
    return UseCase.model_validate(
        {
            "name": "notes",
            "contract": {
                "version": "1.0.0",
                "entity_id": "id",
                "label": "label",
                "positive_class": "a",
                "columns": [
                    {"name": "id", "type": "int"},
                    {"name": "notes", "type": "string", "max_length": 100},
                    {"name": "label", "type": "category", "allowed": ["a", "b"]},
                ],
            },
        }
    )


def test_a_number_in_a_category_column_of_json_lines_is_quarantined_not_a_crash(ingest: Ingest, store) -> None:
    # Given JSON Lines where one line holds a number in a category column and another a list
    records = telco_frame().head(20).to_dict(orient="records")
    records[3]["contract"] = 7
    records[4]["payment_method"] = ["Mailed check"]
    body = "\n".join(json.dumps(r) for r in records) + "\n"
    # When it is ingested
    manifest = ingest("telco/typed.jsonl", body)
    # Then both lines are quarantined with a reason naming the field, and the others curated
    rows = {row["line"]: row for row in quarantined_rows(store, manifest)}
    assert set(rows) == {4, 5}, manifest.reason
    assert set(reasons(rows[4])) == {"contract"}
    assert set(reasons(rows[5])) == {"payment_method"}
    assert manifest.rows_curated == 18
