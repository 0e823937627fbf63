"""The monitor's metrics: names and dimension sets (the CDK alarms import these) and the EMF documents of a run.

Namespace ``Sluice`` (the score function's). Four dimension sets, each document carrying exactly one:

==========================================  ===================================================================
dimensions                                   metrics
==========================================  ===================================================================
``usecase``                                  ``<CheckType>Alerts`` (one per check type, 0 when none — the
                                             alarms watch these), ``InsufficientEvidenceCells``,
                                             ``Refusals`` (records refused in the longest window)
``usecase, model_version``                   the same alert counts per version, ``PredictionDrift`` (score PSI)
``usecase, model_version, feature``          ``FeatureDrift`` (PSI), ``FeatureNullRate``
``usecase, model_version, segment``          ``AUC``, ``Brier``, ``ECE``, ``PositiveRate``, ``Precision``,
                                             ``Recall`` (realized, with labels), ``EstimatedAUC`` (CBPE)
==========================================  ===================================================================

A value is the one of the run's *longest* window with a verdict (most rows, least noise); the alert counts
count alerts over every window of the run. A segment is ``column=value`` or ``all``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO

from shared.monitoring.cells import INSUFFICIENT_EVIDENCE
from shared.monitoring.types import (
    CALIBRATION,
    CHECK_TYPES,
    DATA_DRIFT,
    DATA_QUALITY,
    MODEL_QUALITY,
    PREDICTION_DRIFT,
    SEGMENT_DEGRADATION,
    Cell,
    CheckType,
    MonitoringReport,
)
from shared.scoring.telemetry import DIMENSION_MODEL_VERSION, DIMENSION_USECASE, NAMESPACE

DIMENSION_FEATURE = "feature"
DIMENSION_SEGMENT = "segment"
USECASE_DIMENSIONS = (DIMENSION_USECASE,)
"""What the monitoring alarms watch: one alarm per use case and check type."""
VERSION_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_MODEL_VERSION)
FEATURE_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_MODEL_VERSION, DIMENSION_FEATURE)
SEGMENT_DIMENSIONS = (DIMENSION_USECASE, DIMENSION_MODEL_VERSION, DIMENSION_SEGMENT)
DIMENSION_SETS = (USECASE_DIMENSIONS, VERSION_DIMENSIONS, FEATURE_DIMENSIONS, SEGMENT_DIMENSIONS)

FEATURE_DRIFT = "FeatureDrift"
FEATURE_NULL_RATE = "FeatureNullRate"
PREDICTION_DRIFT_PSI = "PredictionDrift"
DATA_QUALITY_ALERTS = "DataQualityAlerts"
FEATURE_DRIFT_ALERTS = "FeatureDriftAlerts"
PREDICTION_DRIFT_ALERTS = "PredictionDriftAlerts"
MODEL_QUALITY_ALERTS = "ModelQualityAlerts"
CALIBRATION_ALERTS = "CalibrationAlerts"
SEGMENT_DEGRADATION_ALERTS = "SegmentDegradationAlerts"
INSUFFICIENT_EVIDENCE_CELLS = "InsufficientEvidenceCells"
ESTIMATED_AUC = "EstimatedAUC"
REFUSALS = "Refusals"
"""Records the score function refused (any reason) in the run's longest window (dimensions: use case)."""
ALERT_METRICS: dict[CheckType, str] = {
    DATA_QUALITY: DATA_QUALITY_ALERTS,
    DATA_DRIFT: FEATURE_DRIFT_ALERTS,
    PREDICTION_DRIFT: PREDICTION_DRIFT_ALERTS,
    MODEL_QUALITY: MODEL_QUALITY_ALERTS,
    CALIBRATION: CALIBRATION_ALERTS,
    SEGMENT_DEGRADATION: SEGMENT_DEGRADATION_ALERTS,
}
"""Check type → the count of its alerts in a run (the alarms: feature drift, prediction drift, calibration,
segment degradation; data quality and overall model quality alongside)."""
SEGMENT_METRICS = {
    "auc": "AUC",
    "brier": "Brier",
    "ece": "ECE",
    "positive_rate": "PositiveRate",
    "precision": "Precision",
    "recall": "Recall",
}
"""A performance cell's metric → its EMF metric name (dimensions :data:`SEGMENT_DIMENSIONS`)."""

UNIT_COUNT = "Count"
UNIT_NONE = "None"
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _document(timestamp_ms: int, dimensions: tuple[str, ...], values: dict[str, float], unit: str, **dims: str) -> str:
    directive = {
        "Namespace": NAMESPACE,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": unit} for name in values],
    }
    document: dict[str, Any] = {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]}, **dims}
    document.update(values)
    return _ENCODER.encode(document)


def _longest_judged(cells: Iterable[Cell]) -> dict[tuple[str, ...], Cell]:
    """Per (version, check type, feature, segment, metric): the cell of the longest window with a verdict."""
    chosen: dict[tuple[str, ...], Cell] = {}
    for cell in cells:
        if cell.verdict == INSUFFICIENT_EVIDENCE or cell.value is None:
            continue
        key = (cell.model_version, cell.check_type, cell.feature_name, cell.segment, cell.metric)
        if key not in chosen or cell.window_hours > chosen[key].window_hours:
            chosen[key] = cell
    return chosen


def documents(report: MonitoringReport, *, timestamp_ms: int | None = None) -> list[str]:
    """The run's EMF documents (one JSON object a line)."""
    when = timestamp_ms if timestamp_ms is not None else _epoch_ms(report.generated_at)
    usecase = {DIMENSION_USECASE: report.usecase}
    alerts = Counter(v.constraint_check_type for v in report.violations)
    insufficient = sum(cell.verdict == INSUFFICIENT_EVIDENCE for cell in report.cells)
    counts = {ALERT_METRICS[check]: float(alerts[check]) for check in CHECK_TYPES}
    lines = [
        _document(when, USECASE_DIMENSIONS, counts, UNIT_COUNT, **usecase),
        _document(when, USECASE_DIMENSIONS, {INSUFFICIENT_EVIDENCE_CELLS: float(insufficient)}, UNIT_COUNT, **usecase),
    ]
    longest = max((w.hours for w in report.windows), default=None)
    refused = sum(sum(w.refusals.values()) for w in report.windows if w.hours == longest)
    lines.append(_document(when, USECASE_DIMENSIONS, {REFUSALS: float(refused)}, UNIT_COUNT, **usecase))
    for model in report.models:
        version = {**usecase, DIMENSION_MODEL_VERSION: model.model_version}
        per_version = Counter(
            v.constraint_check_type for v in report.violations if v.model_version == model.model_version
        )
        values = {ALERT_METRICS[check]: float(per_version[check]) for check in CHECK_TYPES}
        lines.append(_document(when, VERSION_DIMENSIONS, values, UNIT_COUNT, **version))
    for cell in _longest_judged(report.cells).values():
        version = {**usecase, DIMENSION_MODEL_VERSION: cell.model_version}
        value = float(cell.value or 0.0)
        if cell.check_type == PREDICTION_DRIFT:
            lines.append(_document(when, VERSION_DIMENSIONS, {PREDICTION_DRIFT_PSI: value}, UNIT_NONE, **version))
        elif cell.check_type in {DATA_DRIFT, DATA_QUALITY}:
            name = FEATURE_DRIFT if cell.metric == "psi" else FEATURE_NULL_RATE if cell.metric == "null_rate" else None
            if name is not None:
                dims = {**version, DIMENSION_FEATURE: cell.feature_name}
                lines.append(_document(when, FEATURE_DIMENSIONS, {name: value}, UNIT_NONE, **dims))
        elif cell.metric in SEGMENT_METRICS:
            dims = {**version, DIMENSION_SEGMENT: cell.segment}
            lines.append(_document(when, SEGMENT_DIMENSIONS, {SEGMENT_METRICS[cell.metric]: value}, UNIT_NONE, **dims))
    for estimate in report.estimates:
        window_hours = next((w.hours for w in report.windows if w.window == estimate.window), None)
        if estimate.expected_auc is None or window_hours != longest:
            continue
        dims = {**usecase, DIMENSION_MODEL_VERSION: estimate.model_version, DIMENSION_SEGMENT: estimate.segment}
        lines.append(_document(when, SEGMENT_DIMENSIONS, {ESTIMATED_AUC: estimate.expected_auc}, UNIT_NONE, **dims))
    return lines


def _epoch_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def publish(report: MonitoringReport, *, out: TextIO | None = None) -> None:
    """Write the run's EMF documents to stdout (one write), where Lambda's log agent picks them up."""
    lines = documents(report)
    (out or sys.stdout).write("\n".join(lines) + "\n")
