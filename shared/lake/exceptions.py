"""Typed errors of the lake (the object store)."""

from __future__ import annotations

from shared.exceptions import SluiceError


class StorageError(SluiceError):
    """An object store operation failed."""
