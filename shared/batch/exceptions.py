"""Typed errors of batch prediction.

The state machine retries :class:`~shared.lake.exceptions.StorageError` (an outage) and never retries
:class:`ChunkFailedError` (the chunk's data or the model file is wrong: a retry would fail the same way).
"""

from __future__ import annotations

from shared.exceptions import SluiceError


class BatchError(SluiceError):
    """A batch job cannot be planned or run."""


class JobRequestError(BatchError):
    """The job request is not one the planner can run (no source, two sources, a bad URI)."""


class UnknownModelVersionError(BatchError):
    """The requested model version is not registered, or the use case has no champion to score with."""


class ChunkFailedError(BatchError):
    """One chunk cannot be scored; ``reason`` says why (it lands in the job manifest)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobFailedError(BatchError):
    """A job finished with more failed chunks than its tolerance: the execution fails with the manifest's reason."""
