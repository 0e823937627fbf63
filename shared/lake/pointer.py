"""The curated pointer: which curated set of a use case training reads.

One small JSON object, :func:`shared.lake.layout.curated_pointer_key` (``curated/{usecase}/CURRENT.json``),
naming a contract version whose backfilled set (``curated/{usecase}/contract={version}/``) reconciled. A
single S3 PUT replaces it whole, and S3 reads are strongly consistent, so a training-set build reads either
the old version or the new one, never a mix: the switch is one atomic step. No pointer → the live layout.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from shared.lake import layout as lake

if TYPE_CHECKING:
    from shared.lake.adapters import ObjectStore


class CuratedPointer(BaseModel):
    """``CURRENT.json``: the contract version training reads, and how it got there."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    usecase: str = Field(min_length=1)
    contract_version: str = Field(min_length=1)
    previous_version: str | None = None
    """The version named before the switch (None: the live layout)."""
    objects: int = Field(ge=0)
    """Objects of the set when it was switched to (backfilled, plus those ingested under the version)."""
    switched_at: datetime
    switched_by: str = ""


def read_pointer(store: ObjectStore, bucket: str, usecase: str) -> CuratedPointer | None:
    """The use case's pointer, or None when there is none (training reads the live layout)."""
    key = lake.curated_pointer_key(usecase)
    if not store.exists(bucket, key):
        return None
    return CuratedPointer.model_validate_json(store.get_bytes(bucket, key))


def write_pointer(store: ObjectStore, bucket: str, pointer: CuratedPointer) -> None:
    """Replace the pointer whole (one PUT: the atomic switch)."""
    store.put_json(bucket, lake.curated_pointer_key(pointer.usecase), pointer.model_dump(mode="json"))
