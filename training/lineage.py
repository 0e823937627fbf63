"""lineage.json: what a model was made from and by — data, code, settings and libraries."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from shared.monitoring.baseline import BASELINE_FILE
from shared.training.training_set import TrainingSetReport
from training.device import TRAINING_DEVICE, TrainingDevice
from training.export import OnnxExport

CODE_VERSION_ENV = "SLUICE_CODE_VERSION"
TRAINING_JOB_NAME_ENVS = ("TRAINING_JOB_NAME", "SM_TRAINING_JOB_NAME")
LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pyarrow", "xgboost", "onnxmltools")
DISTRIBUTION_ALIASES = {"xgboost": ("xgboost", "xgboost-cpu")}
"""Distributions that install a library's module: ``xgboost-cpu`` is the ``xgboost`` module without CUDA."""
UNKNOWN = "unknown"


def code_version(
    hyperparameters: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, source_dir: Path | None = None
) -> str:
    """``SLUICE_CODE_VERSION``, else the ``code_version`` hyperparameter, else ``git rev-parse HEAD``, else unknown."""
    environ = os.environ if environ is None else environ
    if environ.get(CODE_VERSION_ENV):
        return environ[CODE_VERSION_ENV]
    if hyperparameters.get("code_version"):
        return str(hyperparameters["code_version"])
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 — git from PATH, when the job has it
            cwd=source_dir or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else UNKNOWN


def training_job_name(hyperparameters: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    for name in TRAINING_JOB_NAME_ENVS:
        if environ.get(name):
            return environ[name]
    return str(hyperparameters.get("training_job_name") or UNKNOWN)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for library in LIBRARIES:
        versions[library] = UNKNOWN
        for distribution in DISTRIBUTION_ALIASES.get(library, (library,)):
            try:
                versions[library] = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                continue
            break
    return versions


def build_lineage(
    *,
    trainset: TrainingSetReport,
    export: OnnxExport,
    estimator: str,
    hyperparameters: Mapping[str, Any],
    code: str,
    job_name: str,
    baseline_sha256: str | None = None,
    device: TrainingDevice | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The lineage document of one trained model (``baseline``: the file and sha256 of its baseline.json;
    ``training_device``: the device that trained it, and why that one)."""
    lineage: dict[str, Any] = {
        "usecase": trainset.usecase,
        "training_job_name": job_name,
        "trained_at": (now or datetime.now(UTC)).isoformat(),
        "code_version": code,
        "contract_version": trainset.contract_version,
        "cutoff": trainset.cutoff.isoformat(),
        "training_set_hash": trainset.sha256,
        "training_set": {
            "run_id": trainset.run_id,
            "sha256": trainset.sha256,
            "train_sha256": trainset.train_sha256,
            "holdout_sha256": trainset.holdout_sha256,
            "train_key": trainset.train_key,
            "holdout_key": trainset.holdout_key,
            "rows_train": trainset.rows_train,
            "rows_holdout": trainset.rows_holdout,
            "rows_excluded_late": trainset.rows_excluded_late,
            "rows_excluded_future_event": trainset.rows_excluded_future_event,
        },
        "manifests": [
            {
                "manifest_key": m.manifest_key,
                "source_key": m.source_key,
                "source_version_id": m.source_version_id,
                "curated_keys": list(m.curated_keys),
                "rows_curated": m.rows_curated,
                "ingested_at": m.ingested_at.isoformat(),
            }
            for m in trainset.manifests_used
        ],
        "estimator": estimator,
        "hyperparameters": dict(hyperparameters),
        "libraries": library_versions(),
        "onnx_sha256": hashlib.sha256(export.model).hexdigest(),
        "onnx_inputs": [i.model_dump() for i in export.inputs],
        "parity_max_abs_diff": export.parity_max_abs_diff,
    }
    if device is not None:
        lineage[TRAINING_DEVICE] = device.as_record()
    if baseline_sha256 is not None:
        lineage["baseline"] = {"file": BASELINE_FILE, "sha256": baseline_sha256}
    return lineage
