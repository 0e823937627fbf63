"""Typed errors of the use-case files."""

from __future__ import annotations

from shared.exceptions import SluiceError


class UseCaseError(SluiceError):
    """A use-case file is missing or invalid."""
