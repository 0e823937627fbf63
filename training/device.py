"""Which device trains an XGBoost model: the GPU when the container sees one, the CPU otherwise, with the reason.

No torch: the decision reads XGBoost's build (a ``xgboost-cpu`` wheel has no CUDA), ``CUDA_VISIBLE_DEVICES``
(empty or ``-1`` hides every GPU), ``nvidia-smi -L`` (the GPUs the driver lists), then proves the GPU with a
tiny fit on ``cuda``; the first check that fails names the reason the model trains on the CPU.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

CUDA, CPU = "cuda", "cpu"
TRAINING_DEVICE = "training_device"
"""The key of :meth:`TrainingDevice.as_record` in metrics.json and lineage.json."""
HIDING_VALUES = frozenset({"", "-1", "none", "void", "nodevfiles"})
"""``CUDA_VISIBLE_DEVICES`` values that leave the process no GPU."""


@dataclass(frozen=True)
class TrainingDevice:
    """The device XGBoost trains on (``cuda`` or ``cpu``) and why."""

    device: str
    reason: str

    def as_record(self) -> dict[str, str]:
        return {"device": self.device, "reason": self.reason}


def listed_gpus() -> list[str]:
    """The GPUs ``nvidia-smi -L`` lists (empty without the tool or a driver)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        result = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if result.returncode != 0:
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("GPU ")]


def cuda_fit_error() -> str | None:
    """None when a tiny XGBoost model trains on ``cuda``; else the error it raised."""
    import numpy as np
    import xgboost

    features = np.arange(8, dtype=np.float32).reshape(4, 2)
    try:
        xgboost.XGBClassifier(n_estimators=1, max_depth=1, device=CUDA, tree_method="hist").fit(
            features, np.array([0, 1, 0, 1])
        )
    except Exception as exc:  # noqa: BLE001 — any failure means: not this GPU; its text is the reason
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return None


def xgboost_build_info() -> Mapping[str, Any]:
    import xgboost

    return dict(xgboost.build_info())


def training_device(
    *,
    environ: Mapping[str, str],
    build_info: Callable[[], Mapping[str, Any]] = xgboost_build_info,
    gpus: Callable[[], list[str]] = listed_gpus,
    cuda_error: Callable[[], str | None] = cuda_fit_error,
) -> TrainingDevice:
    """``cuda`` when this XGBoost build has CUDA, a GPU is visible and a tiny fit on it works; else ``cpu``, why."""
    if not build_info().get("USE_CUDA"):
        return TrainingDevice(CPU, "this xgboost build has no CUDA support (e.g. the xgboost-cpu wheel)")
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip().lower() in HIDING_VALUES:
        return TrainingDevice(CPU, f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU")
    listed = gpus()
    if not listed:
        return TrainingDevice(CPU, "nvidia-smi lists no GPU (no driver or no device in this container)")
    error = cuda_error()
    if error is not None:
        return TrainingDevice(CPU, f"a test fit on cuda failed: {error}")
    return TrainingDevice(CUDA, f"{len(listed)} GPU(s) visible, first: {listed[0]}")
