"""Reading what ingest wrote, for assertions."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shared.lake.manifest import Manifest
from tests.fakes import InMemoryObjectStore
from tests.unit.conftest import LAKE_BUCKET


def quarantined_rows(store: InMemoryObjectStore, manifest: Manifest) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in manifest.quarantine_keys:
        if key.endswith(".jsonl"):
            rows += [json.loads(line) for line in store.body(LAKE_BUCKET, key).decode().splitlines()]
    return rows


def curated_table(store: InMemoryObjectStore, manifest: Manifest) -> pa.Table:
    tables = [pq.read_table(io.BytesIO(store.body(LAKE_BUCKET, key))) for key in manifest.curated_keys]
    return pa.concat_tables(tables) if tables else pa.table({})


def rejection_report(store: InMemoryObjectStore, manifest: Manifest) -> dict[str, Any]:
    report_key = next(key for key in manifest.quarantine_keys if key.endswith("report.json"))
    return store.json(LAKE_BUCKET, report_key)


def reasons(row: dict[str, Any]) -> dict[str, str]:
    return {error["field"]: error["reason"] for error in row["errors"]}
