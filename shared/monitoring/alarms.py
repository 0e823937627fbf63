"""The monitoring alarms: their names (CDK builds them from these) and what each one means.

One alarm per use case and check type, on the run's alert count of that check (``<CheckType>Alerts``,
dimension ``usecase``; :mod:`shared.monitoring.telemetry`). Every one is named
``sluice-<usecase-with-hyphens>-monitoring-<check-with-hyphens>``; the retraining rule matches that prefix, and
the retrain function tells the check back from the name (:func:`check_of_alarm`).
"""

from __future__ import annotations

from shared.monitoring.types import (
    CALIBRATION,
    CHECK_TYPES,
    DATA_DRIFT,
    DATA_QUALITY,
    MODEL_QUALITY,
    PREDICTION_DRIFT,
    SEGMENT_DEGRADATION,
    CheckType,
)

MONITORING_MARKER = "monitoring-"

ALARMED_CHECKS: tuple[CheckType, ...] = CHECK_TYPES
"""Every check type has an alarm (feature drift, prediction drift, calibration and segment degradation start
retraining; data quality and overall model quality too, as evidence the served model no longer fits)."""

ALARM_MEANINGS: dict[CheckType, str] = {
    DATA_QUALITY: (
        "Served inputs no longer look like the training data: a feature's null rate rose, or categories never "
        "seen in training arrive"
    ),
    DATA_DRIFT: "The distribution of at least one input feature has shifted significantly from its training baseline",
    PREDICTION_DRIFT: "The distribution of the model's scores has shifted significantly from the training holdout",
    MODEL_QUALITY: "Realized performance on labeled traffic (AUC, Brier, precision/recall) fell significantly overall",
    CALIBRATION: "The scores no longer match observed outcome rates (calibration error above the declared limit)",
    SEGMENT_DEGRADATION: "Realized performance fell significantly in at least one declared segment value",
}
"""Check type → the alarm's ``AlarmDescription`` (the human meaning; the sentences are in the run's report)."""


def monitoring_alarm_prefix(usecase: str) -> str:
    """``sluice-<usecase-with-hyphens>-monitoring-`` (the retraining rule's ``prefix`` match)."""
    return f"sluice-{usecase.replace('_', '-')}-{MONITORING_MARKER}"


def monitoring_alarm_name(usecase: str, check: CheckType) -> str:
    return f"{monitoring_alarm_prefix(usecase)}{check.replace('_', '-')}"


def check_of_alarm(usecase: str, alarm_name: str) -> CheckType | None:
    """The check type a monitoring alarm of ``usecase`` watches; None for any other alarm."""
    for check in ALARMED_CHECKS:
        if alarm_name == monitoring_alarm_name(usecase, check):
            return check
    return None
