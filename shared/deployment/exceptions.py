"""Typed errors of the deployment state."""

from __future__ import annotations

from shared.exceptions import SluiceError


class DeploymentError(SluiceError):
    """The deployment state (which model serves a use case) cannot be read or written."""


class ConcurrentUpdateError(DeploymentError):
    """The deployment state changed since it was read (its ``revision`` moved on); read it again and retry."""

    def __init__(self, usecase: str, expected_revision: int) -> None:
        super().__init__(f"the deployment state of {usecase!r} is no longer at revision {expected_revision}")
        self.usecase = usecase
        self.expected_revision = expected_revision
