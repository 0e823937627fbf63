"""Typed errors of a backfill under a new contract version."""

from __future__ import annotations

from shared.exceptions import SluiceError


class BackfillError(SluiceError):
    """A backfill cannot be run."""


class ContractVersionMismatchError(BackfillError):
    """The use-case file does not carry the contract version asked for."""


class BackfillIncompleteError(BackfillError):
    """The switch is refused: some objects are not backfilled, or did not reconcile; ``pending`` names them."""

    def __init__(self, message: str, pending: tuple[str, ...]) -> None:
        super().__init__(message)
        self.pending = pending
