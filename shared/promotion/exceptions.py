"""Typed errors of the promotion domain. The state machine catches them by name (``Error`` = class name)."""

from __future__ import annotations

from shared.exceptions import SluiceError


class PromotionError(SluiceError):
    """A promotion step cannot go on."""


class PromotionInProgressError(PromotionError):
    """A promotion is already running (or watching) for the use case: a second one is refused."""


class PromotionEndedError(PromotionError):
    """A step tried to write a running promotion over its own execution's ended record (a lost race)."""


class NoPromotionError(PromotionError):
    """A step needs a running promotion, and there is none."""


class InvalidTransitionError(PromotionError):
    """The deployment is not in a stage from which this transition is allowed."""


class NotInWatchWindowError(InvalidTransitionError):
    """``rollback_to_previous`` outside the post-promotion watch window."""


class NoPreviousChampionError(InvalidTransitionError):
    """``rollback_to_previous`` with no previous champion to go back to."""


class ModelMetricsError(PromotionError):
    """A model's metrics.json cannot be found or read."""


class ReplayDataError(PromotionError):
    """The prediction log cannot be read."""


class TargetError(PromotionError):
    """The traffic target (deployment state or SageMaker endpoint) refused a change."""


class EndpointBusyError(TargetError):
    """The SageMaker endpoint is updating; retry the step later (the state machine retries this error)."""


class NotificationError(PromotionError):
    """SNS or Step Functions refused a request."""


class MetricsError(PromotionError):
    """CloudWatch metrics cannot be read."""


class ForeignPackageError(PromotionError):
    """The model package to promote is not in the use case's model package group."""


class NoPendingDecisionError(PromotionError):
    """approve / abort while the promotion is not waiting for a human."""
