"""Typed errors of the domain library. Adapters wrap SDK errors in these (``raise ... from exc``)."""


class SluiceError(Exception):
    """Base class of every error Sluice raises on purpose."""


class UseCaseError(SluiceError):
    """A use-case file is missing or invalid."""


class StorageError(SluiceError):
    """An object store operation failed."""


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


class SettingsError(SluiceError):
    """A function's environment is missing a variable or holds an invalid value."""


class TrainingSetError(SluiceError):
    """A training set could not be built (no curated data before the cutoff, or an unreadable lake)."""


class ModelIntegrityError(SluiceError):
    """A trained model's artifact is incomplete, or its ONNX file does not match its lineage."""


class GateFailedError(SluiceError):
    """A trained model missed the registry gate; ``reasons`` says which thresholds it missed."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


class RegistryError(SluiceError):
    """The model registry (SageMaker Model Package Groups) refused or failed a request."""


class TriggerError(SluiceError):
    """A training run could not be started or its state could not be read."""


class DeploymentError(SluiceError):
    """The deployment state (which model serves a use case) cannot be read or written."""


class ConcurrentUpdateError(DeploymentError):
    """The deployment state changed since it was read (its ``revision`` moved on); read it again and retry."""

    def __init__(self, usecase: str, expected_revision: int) -> None:
        super().__init__(f"the deployment state of {usecase!r} is no longer at revision {expected_revision}")
        self.usecase = usecase
        self.expected_revision = expected_revision
