"""Typed errors of the training stage (the training set and the trigger)."""

from __future__ import annotations

from shared.exceptions import SluiceError


class TrainingSetError(SluiceError):
    """A training set could not be built (no curated data before the cutoff, or an unreadable lake)."""


class TriggerError(SluiceError):
    """A training run could not be started or its state could not be read."""
