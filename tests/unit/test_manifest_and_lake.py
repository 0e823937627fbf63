from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from shared.ingest.formats import Compression, DataFormat, detect_format, file_extension
from shared.ingest.service import SourceObject
from shared.lake import layout as lake
from shared.lake.manifest import IngestStatus, Manifest


def manifest(**changes: object) -> Manifest:
    fields: dict[str, object] = {
        "source_bucket": "raw",
        "source_key": "a.csv",
        "source_version_id": None,
        "source_etag": "e",
        "source_size": 1,
        "object_id": "x",
        "usecase": "u",
        "contract_version": "1.0.0",
        "format": "csv",
        "compression": "none",
        "status": IngestStatus.ACCEPTED,
        "rows_in": 10,
        "rows_curated": 7,
        "rows_quarantined": 3,
        "ingested_at": datetime(2024, 1, 1, tzinfo=UTC),
        "duration_ms": 1,
    }
    return Manifest.model_validate(fields | changes)


def test_manifest_enforces_rows_in_equals_curated_plus_quarantined() -> None:
    # Given counts that add up, Then the manifest is valid
    assert manifest().rows_in == 10
    # Given counts that do not, Then it refuses to exist
    with pytest.raises(ValidationError, match="rows were lost or invented"):
        manifest(rows_curated=8)


def test_a_rejected_manifest_curates_nothing_and_says_why() -> None:
    with pytest.raises(ValidationError, match="curates no rows"):
        manifest(status=IngestStatus.REJECTED, reason="bad")
    with pytest.raises(ValidationError, match="needs a reason"):
        manifest(status=IngestStatus.REJECTED, rows_curated=0, rows_quarantined=10)


def test_object_id_depends_on_the_content_not_the_version() -> None:
    # Given the same bytes uploaded twice (two versions, one ETag) and then new bytes under the same key
    first = SourceObject(bucket="raw", key="a.csv", version_id="v1", etag="e")
    again = SourceObject(bucket="raw", key="a.csv", version_id="v2", etag="e")
    changed = SourceObject(bucket="raw", key="a.csv", version_id="v3", etag="f")
    elsewhere = SourceObject(bucket="raw", key="b.csv", version_id="v1", etag="e")
    # Then a re-upload of the same bytes is the same object, new bytes or another key are not
    assert first.object_id == again.object_id
    assert len({first.object_id, changed.object_id, elsewhere.object_id}) == 3
    assert len(first.object_id) == lake.OBJECT_ID_LENGTH
    # And an object without an ETag falls back to its version id
    assert SourceObject(bucket="raw", key="a.csv", version_id="v1").object_id != first.object_id


def test_key_layout() -> None:
    day = date(2024, 5, 1)
    assert lake.curated_key("u", ingest_date=day, object_id="o") == "curated/u/ingest_date=2024-05-01/o.parquet"
    assert (
        lake.curated_key("u", ingest_date=day, object_id="o", event_date=date(2024, 4, 30))
        == "curated/u/ingest_date=2024-05-01/event_date=2024-04-30/o.parquet"
    )
    assert (
        lake.quarantine_rows_key("u", ingest_date=day, object_id="o") == "quarantine/u/ingest_date=2024-05-01/o.jsonl"
    )
    assert lake.rejected_report_key("u", "o") == "quarantine/u/rejected/o/report.json"
    assert lake.rejected_source_key("u", "o", ".csv.gz") == "quarantine/u/rejected/o/source.csv.gz"
    assert lake.manifest_key("u", "o") == "manifests/u/o.json"


@pytest.mark.parametrize(
    ("key", "data_format", "compression"),
    [
        ("a/b.csv", DataFormat.CSV, Compression.NONE),
        ("a/b.CSV.gz", DataFormat.CSV, Compression.GZIP),
        ("b.ndjson", DataFormat.JSON_LINES, Compression.NONE),
        ("b.json.gz", DataFormat.JSON_LINES, Compression.GZIP),
        ("b.parquet", DataFormat.PARQUET, Compression.NONE),
    ],
)
def test_format_is_detected_from_the_key(key: str, data_format: DataFormat, compression: Compression) -> None:
    detected = detect_format(key)
    assert (detected.data_format, detected.compression) == (data_format, compression)


def test_file_extension_keeps_the_compression_suffix() -> None:
    assert file_extension("x/y.tar.gz") == ".tar.gz"
    assert file_extension("x/y.v2.xlsx") == ".xlsx"
    assert file_extension("x/noext") == ""
