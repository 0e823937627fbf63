"""The registry gate: which trained models may be registered (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainingMetrics(BaseModel):
    """``metrics.json`` as the gate reads it.

    The training side writes ``auc`` and ``ece`` (numbers) and ``parity_ok`` (bool: ONNX and the fitted
    estimator agree on the holdout), or ``parity: {"ok": bool, ...}``; other keys are kept.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    auc: float = Field(ge=0, le=1)
    ece: float = Field(ge=0, le=1)
    parity_ok: bool

    @model_validator(mode="before")
    @classmethod
    def _nested_parity(cls, data: Any) -> Any:
        if isinstance(data, dict) and "parity_ok" not in data and isinstance(data.get("parity"), dict):
            return {**data, "parity_ok": data["parity"].get("ok")}
        return data


@dataclass(frozen=True, kw_only=True)
class GateThresholds:
    min_auc: float
    max_ece: float


@dataclass(frozen=True, kw_only=True)
class GateVerdict:
    passed: bool
    reasons: tuple[str, ...]


def gate(metrics: TrainingMetrics, thresholds: GateThresholds) -> GateVerdict:
    """A model passes when its AUC reaches ``min_auc``, its ECE stays within ``max_ece`` and ONNX matches."""
    reasons = []
    if metrics.auc < thresholds.min_auc:
        reasons.append(f"AUC {metrics.auc:.4f} is below the minimum {thresholds.min_auc:.4f}")
    if metrics.ece > thresholds.max_ece:
        reasons.append(f"ECE {metrics.ece:.4f} is above the maximum {thresholds.max_ece:.4f}")
    if not metrics.parity_ok:
        reasons.append("the ONNX model's predictions differ from the trained estimator's (parity check failed)")
    return GateVerdict(passed=not reasons, reasons=tuple(reasons))
