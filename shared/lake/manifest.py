"""The manifest: one record per ingested object version, the ledger of what happened to its rows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class IngestStatus(StrEnum):
    ACCEPTED = "accepted"
    """Read through; each row is either curated or quarantined (possibly all of them quarantined)."""
    REJECTED = "rejected"
    """Not ingested at all: every row counted is quarantined, with the object, under ``rejected/``."""


class Manifest(BaseModel):
    """What ingest did with one source object version. ``rows_in = rows_curated + rows_quarantined``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_bucket: str
    source_key: str
    source_version_id: str | None
    source_etag: str
    source_size: int = Field(ge=0)
    object_id: str
    usecase: str
    contract_version: str
    format: str | None
    """``csv``, ``jsonl`` or ``parquet``; None when the key names no supported format."""
    compression: str | None
    status: IngestStatus
    reason: str = ""
    rows_in: int = Field(ge=0)
    rows_curated: int = Field(ge=0)
    rows_quarantined: int = Field(ge=0)
    columns_added: tuple[str, ...] = ()
    """Undeclared columns found in the object; kept in curated as string columns."""
    schema_changes: tuple[str, ...] = ()
    """Every difference between the object's columns and the contract, in words."""
    curated_keys: tuple[str, ...] = ()
    quarantine_keys: tuple[str, ...] = ()
    ingested_at: datetime
    duration_ms: int = Field(ge=0)

    @model_validator(mode="after")
    def _rows_add_up(self) -> Manifest:
        if self.rows_in != self.rows_curated + self.rows_quarantined:
            raise ValueError(
                f"rows_in {self.rows_in} != rows_curated {self.rows_curated} + "
                f"rows_quarantined {self.rows_quarantined}: rows were lost or invented"
            )
        if self.status is IngestStatus.REJECTED:
            if self.rows_curated:
                raise ValueError("a rejected object curates no rows")
            if not self.reason:
                raise ValueError("a rejected object needs a reason")
        return self
