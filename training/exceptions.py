"""Typed errors of the training job; each becomes the job's one-line FailureReason."""

from __future__ import annotations

from shared.exceptions import SluiceError


class TrainingError(SluiceError):
    """Base class of the errors that fail a training job on purpose."""


class ModelConfigError(TrainingError):
    """The use case's estimator or hyperparameters cannot make a model (found before any training)."""


class TrainingDataError(TrainingError):
    """The training channel is missing files, does not match its report, or does not fit the contract."""


class ParityError(TrainingError):
    """The ONNX model's probabilities differ from scikit-learn's by more than the tolerance."""

    def __init__(self, max_abs_diff: float, tolerance: float) -> None:
        super().__init__(
            f"ONNX/scikit-learn parity failed: max abs probability difference {max_abs_diff:.3g} > {tolerance:g}"
        )
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
