"""Typed errors of ingest."""

from __future__ import annotations

from shared.exceptions import SluiceError


class IngestError(SluiceError):
    """Ingesting an uploaded object failed in a way that is not the object's fault (a bug or an outage)."""


class ObjectRejectedError(SluiceError):
    """An uploaded object cannot be ingested at all; it is quarantined whole with ``reason``.

    ``schema_changes`` lists what changed in the object's columns, when that is why it was rejected.
    """

    def __init__(self, reason: str, *, schema_changes: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.schema_changes = list(schema_changes or [])


class UnsupportedFormatError(ObjectRejectedError):
    """The object's key names a file format that ingest does not read."""
