"""Typed errors of the domain library. Adapters wrap SDK errors in these (``raise ... from exc``)."""


class SluiceError(Exception):
    """Base class of every error Sluice raises on purpose."""


class UseCaseError(SluiceError):
    """A use-case file is missing or invalid."""


class StorageError(SluiceError):
    """An object store operation failed."""
