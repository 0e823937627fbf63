"""Typed errors of the monitoring domain."""

from __future__ import annotations

from shared.exceptions import SluiceError


class MonitoringError(SluiceError):
    """A monitoring statistic cannot be computed."""


class InsufficientDataError(MonitoringError):
    """The sample lacks what the statistic needs (no rows, or a single class where both are needed)."""
