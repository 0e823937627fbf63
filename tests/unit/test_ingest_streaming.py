"""Large objects stream in bounded memory; event-time contracts partition by event date."""

from __future__ import annotations

import tracemalloc
from datetime import date, timedelta

import pyarrow as pa
import pytest

from shared.lake.manifest import IngestStatus
from shared.usecase.settings import UseCase
from tests.unit.conftest import Ingest, telco_frame
from tests.unit.helpers import curated_table, quarantined_rows, reasons

MiB = 1024 * 1024


def large_telco_csv(target_bytes: int) -> bytes:
    """Telco rows repeated (unique ids) with a wide undeclared column, about ``target_bytes`` long."""
    frame = telco_frame()
    frame["notes"] = "n" * 900
    block = frame.to_csv(index=False, header=False).encode()
    header = (",".join(frame.columns) + "\n").encode()
    repeats = max(1, target_bytes // len(block))
    lines = block.splitlines(keepends=True)
    parts = [header]
    for copy in range(repeats):
        offset = copy * len(lines)
        parts.extend(str(offset + i + 1).encode() + line[line.index(b",") :] for i, line in enumerate(lines))
    return b"".join(parts)


def test_a_large_object_is_streamed_in_bounded_memory(ingest: Ingest, store) -> None:
    # Given a ~45 MB CSV and a 2 MiB reader block
    body = large_telco_csv(45 * MiB)
    rows = body.count(b"\n") - 1
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        # When it is ingested
        manifest = ingest("telco/large.csv", body, block_size=2 * MiB)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(previous)
    # Then every row is curated while neither Arrow nor Python ever held more than a third of it
    # (measured here: Arrow about 9 MiB, Python about 12 MiB)
    assert manifest.status is IngestStatus.ACCEPTED
    assert manifest.rows_in == manifest.rows_curated == rows
    assert len(body) > 40 * MiB
    assert pool.max_memory() < 16 * MiB, f"arrow peak {pool.max_memory() / MiB:.1f} MiB"
    assert python_peak < 16 * MiB, f"python peak {python_peak / MiB:.1f} MiB"


@pytest.fixture
def readings() -> UseCase:
    """A use case unlike Telco: sensor readings with an event time and a bool label."""
    return UseCase.model_validate(
        {
            "name": "sensor_readings",
            "contract": {
                "version": "2.1.0",
                "entity_id": "reading_id",
                "label": "faulty",
                "positive_class": True,
                "event_time": "read_at",
                "columns": [
                    {"name": "reading_id", "type": "string", "max_length": 36},
                    {"name": "read_at", "type": "timestamp"},
                    {"name": "temperature", "type": "float", "min": -50, "max": 150},
                    {"name": "faulty", "type": "bool"},
                    {"name": "site", "type": "string", "required": False, "nullable": True},
                ],
            },
        }
    )


def test_event_time_contract_partitions_by_event_date(ingest: Ingest, store, readings: UseCase) -> None:
    # Given readings over three days (mixed offsets), one with a bad timestamp
    day = date(2024, 4, 28)
    lines = ["reading_id,read_at,temperature,faulty"]
    for i in range(30):
        stamp = f"{day + timedelta(days=i % 3)}T{i % 24:02d}:00:00" + ("Z" if i % 2 else "")
        lines.append(f"r{i},{stamp},{20 + i / 10},{'true' if i % 5 == 0 else 'false'}")
    lines.append("r99,yesterday,21.0,false")
    manifest = ingest("readings/batch.csv", "\n".join(lines) + "\n", usecase=readings)
    # Then curated files are partitioned by event date under the ingest date
    assert manifest.status is IngestStatus.ACCEPTED
    assert manifest.contract_version == "2.1.0"
    assert [key.split("/")[3] for key in manifest.curated_keys] == [
        "event_date=2024-04-28",
        "event_date=2024-04-29",
        "event_date=2024-04-30",
    ]
    assert all(key.startswith("curated/sensor_readings/ingest_date=2024-05-01/") for key in manifest.curated_keys)
    table = curated_table(store, manifest)
    assert table.num_rows == 30
    assert table.schema.field("read_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("faulty").type == pa.bool_()
    assert table["site"].null_count == 30, "an absent optional column is curated as null"
    assert "optional column 'site' absent (curated as null)" in manifest.schema_changes
    [bad] = quarantined_rows(store, manifest)
    assert reasons(bad) == {"read_at": "expected timestamp, found 'yesterday'"}
