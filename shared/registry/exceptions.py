"""Typed errors of the model registry. The training state machine catches them by name."""

from __future__ import annotations

from shared.exceptions import SluiceError


class ModelIntegrityError(SluiceError):
    """A trained model's artifact is incomplete, or its ONNX file does not match its lineage."""


class GateFailedError(SluiceError):
    """A trained model missed the registry gate; ``reasons`` says which thresholds it missed."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


class RegistryError(SluiceError):
    """The model registry (SageMaker Model Package Groups) refused or failed a request."""
