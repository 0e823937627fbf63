"""The training job of a use case, in SageMaker script mode.

SageMaker runs ``python training/train.py --name value ...`` in the source bundle (``usecase.toml``,
``training/``, ``shared/``); hyperparameters arrive as strings and override the use case's. Paths
default to SageMaker's environment: ``SM_CHANNEL_TRAIN`` (train.parquet, holdout.parquet and
trainset.json from :func:`shared.training.training_set.build_training_set`), ``SM_MODEL_DIR`` (model.onnx,
metrics.json, lineage.json and baseline.json are written there) and ``SM_OUTPUT_DATA_DIR`` (a copy of metrics.json).
On a failure the one-line reason goes to ``SM_OUTPUT_FAILURE`` (``/opt/ml/output/failure``), which
SageMaker reports as the job's FailureReason, and the job exits non-zero.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the bundle's `shared` and `training` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import ValidationError
from sklearn.pipeline import Pipeline

from shared.exceptions import SluiceError
from shared.lake import layout as lake
from shared.monitoring.baseline import BASELINE_FILE
from shared.review.explanation import EXPLANATION
from shared.training.training_set import TrainingSetReport, training_set_sha256
from shared.usecase.settings import ModelSettings, UseCase, load_usecase
from training.baseline import build_baseline
from training.device import CPU, TRAINING_DEVICE, TrainingDevice, training_device
from training.evaluate import evaluate, segment_frame
from training.exceptions import ModelConfigError, TrainingDataError
from training.export import OnnxExport, export_model, onnx_feed, onnx_probabilities
from training.lineage import build_lineage, code_version, training_job_name
from training.model import (
    XGBOOST,
    build_pipeline,
    estimator_hyperparameters,
    feature_frame,
    label_vector,
    linear_explanation,
    make_estimator,
)

SOURCE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_FAILURE_FILE = "/opt/ml/output/failure"
MODEL_FILE, METRICS_FILE, LINEAGE_FILE = "model.onnx", "metrics.json", "lineage.json"


@dataclass(frozen=True)
class TrainingData:
    report: TrainingSetReport
    train: pd.DataFrame
    holdout: pd.DataFrame


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Pipeline
    seconds: float
    device: TrainingDevice


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The job's paths, and the hyperparameters (every other ``--name value`` pair, values parsed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument("--output-data-dir", default=os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    parser.add_argument("--usecase-file", default=str(SOURCE_DIR / "usecase.toml"))
    parser.add_argument("--failure-file", default=os.environ.get("SM_OUTPUT_FAILURE", DEFAULT_FAILURE_FILE))
    args, rest = parser.parse_known_args(argv)
    return args, parse_hyperparameters(rest)


def parse_hyperparameters(pairs: Sequence[str]) -> dict[str, Any]:
    """``["--C", "0.5", "--max-iter", "200"]`` → ``{"C": 0.5, "max_iter": 200}`` (SageMaker passes strings)."""
    hyperparameters: dict[str, Any] = {}
    items = list(pairs)
    while items:
        flag = items.pop(0)
        if not flag.startswith("--") or not items or items[0].startswith("--"):
            raise ModelConfigError(f"hyperparameters must come as `--name value` pairs; cannot read {flag!r}")
        name, value = flag[2:], items.pop(0)
        if "=" in name:
            raise ModelConfigError(f"hyperparameter {flag!r}: use `--name value`")
        hyperparameters[name.replace("-", "_")] = _hyperparameter(value)
    return hyperparameters


def _hyperparameter(text: str) -> Any:
    words = {"none": None, "null": None, "true": True, "false": False}
    if text.strip().lower() in words:
        return words[text.strip().lower()]
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_settings(usecase_file: str | Path, overrides: dict[str, Any]) -> tuple[UseCase, ModelSettings]:
    """The use case, and its model settings with the job's hyperparameters applied; checked before any data."""
    usecase = load_usecase(usecase_file)
    merged = {**usecase.model.hyperparameters, **overrides}
    try:
        settings = ModelSettings.model_validate({**usecase.model.model_dump(), "hyperparameters": merged})
    except ValidationError as exc:
        raise ModelConfigError(f"hyperparameters {overrides} do not fit the use case: {exc}") from exc
    make_estimator(settings)
    return usecase, settings


def load_training_data(channel: str | Path, usecase: UseCase) -> TrainingData:
    """The channel's files, checked against their report (sha256) and the use case's contract."""
    channel = Path(channel)
    paths = {name: channel / name for name in (lake.TRAIN_FILE, lake.HOLDOUT_FILE, lake.TRAINSET_REPORT_FILE)}
    missing = sorted(name for name, path in paths.items() if not path.is_file())
    if missing:
        raise TrainingDataError(f"the training channel {channel} lacks {missing}")
    try:
        report = TrainingSetReport.model_validate_json(paths[lake.TRAINSET_REPORT_FILE].read_bytes())
    except ValidationError as exc:
        raise TrainingDataError(f"{lake.TRAINSET_REPORT_FILE} is invalid: {exc}") from exc
    train_sha = hashlib.sha256(paths[lake.TRAIN_FILE].read_bytes()).hexdigest()
    holdout_sha = hashlib.sha256(paths[lake.HOLDOUT_FILE].read_bytes()).hexdigest()
    if training_set_sha256(train_sha, holdout_sha) != report.sha256:
        raise TrainingDataError("the training files do not match the sha256 in trainset.json")
    contract = usecase.contract
    if (report.label, report.positive_class, report.entity_id) != (
        contract.label,
        contract.positive_class,
        contract.entity_id,
    ):
        raise TrainingDataError(f"the training set's label/entity do not match the use case {usecase.name!r}")
    train = pq.read_table(paths[lake.TRAIN_FILE]).to_pandas()
    holdout = pq.read_table(paths[lake.HOLDOUT_FILE]).to_pandas()
    for name, frame in (("train", train), ("holdout", holdout)):
        labels = label_vector(frame, contract)
        if len(np.unique(labels)) < 2:
            raise TrainingDataError(f"the {name} split has one class only ({len(frame)} rows)")
    return TrainingData(report=report, train=train, holdout=holdout)


def device_for(settings: ModelSettings) -> TrainingDevice:
    """Where the model trains: XGBoost on the GPU when the container has one; the rest on the CPU."""
    if settings.estimator != XGBOOST:
        return TrainingDevice(CPU, f"{settings.estimator} is a scikit-learn estimator: CPU only")
    chosen = training_device(environ=os.environ)
    print(f"training {XGBOOST} on {chosen.device}: {chosen.reason}", file=sys.stderr)
    return chosen


def train_model(data: TrainingData, usecase: UseCase, settings: ModelSettings) -> TrainedModel:
    device = device_for(settings)
    started = time.perf_counter()
    pipeline = build_pipeline(usecase.contract, make_estimator(settings, device=device.device))
    pipeline.fit(feature_frame(data.train, usecase.contract), label_vector(data.train, usecase.contract))
    return TrainedModel(pipeline=pipeline, seconds=time.perf_counter() - started, device=device)


def evaluate_model(
    model: TrainedModel, data: TrainingData, usecase: UseCase, settings: ModelSettings
) -> dict[str, Any]:
    contract = usecase.contract
    probabilities = model.pipeline.predict_proba(feature_frame(data.holdout, contract))[:, 1]
    return evaluate(
        label_vector(data.holdout, contract),
        probabilities,
        segments=segment_frame(data.holdout, contract.segments),
        false_positive_cost=settings.false_positive_cost,
        false_negative_cost=settings.false_negative_cost,
    )


def export(model: TrainedModel, data: TrainingData, usecase: UseCase) -> OnnxExport:
    return export_model(model.pipeline, usecase.contract, feature_frame(data.holdout, usecase.contract))


def holdout_baseline(onnx: OnnxExport, data: TrainingData, usecase: UseCase, metrics: dict[str, Any]) -> bytes:
    """``baseline.json``: the holdout as the served (ONNX) model scores it, at the cost-optimal threshold."""
    features = feature_frame(data.holdout, usecase.contract)
    scores = onnx_probabilities(onnx.model, onnx_feed(features, usecase.contract))[:, 1]
    baseline = build_baseline(data.holdout, scores, usecase, float(metrics["threshold"]["threshold"]))
    return baseline.model_dump_json().encode()


def write_outputs(
    model_dir: Path,
    output_data_dir: Path | None,
    onnx: OnnxExport,
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    *,
    baseline: bytes,
) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / MODEL_FILE).write_bytes(onnx.model)
    (model_dir / BASELINE_FILE).write_bytes(baseline)
    (model_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
    (model_dir / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, default=str), encoding="utf-8")
    if output_data_dir is not None:
        output_data_dir.mkdir(parents=True, exist_ok=True)
        (output_data_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")


def run(args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    """load → build → train → evaluate → export → baseline; returns metrics.json's document."""
    usecase, settings = load_settings(args.usecase_file, overrides)
    data = load_training_data(args.train, usecase)
    model = train_model(data, usecase, settings)
    metrics = evaluate_model(model, data, usecase, settings)
    onnx = export(model, data, usecase)
    metrics |= {
        "usecase": usecase.name,
        "estimator": settings.estimator,
        "training_seconds": round(model.seconds, 3),
        TRAINING_DEVICE: model.device.as_record(),
        "rows_train": len(data.train),
        "rows_holdout": len(data.holdout),
        "auc": metrics["holdout"]["roc_auc"],
        "ece": metrics["holdout"]["ece"],
        "parity_ok": True,
        "parity": {
            "ok": True,
            "max_abs_diff": onnx.parity_max_abs_diff,
            "tolerance": onnx.tolerance,
            "rows": onnx.parity_rows,
        },
        "onnx_inputs": [i.model_dump() for i in onnx.inputs],
    }
    explanation = linear_explanation(model.pipeline, settings.estimator)
    if explanation is not None:
        metrics[EXPLANATION] = explanation
    baseline = holdout_baseline(onnx, data, usecase, metrics)
    lineage = build_lineage(
        trainset=data.report,
        export=onnx,
        estimator=settings.estimator,
        hyperparameters=estimator_hyperparameters(settings.hyperparameters),
        code=code_version(settings.hyperparameters, source_dir=SOURCE_DIR),
        job_name=training_job_name(settings.hyperparameters),
        baseline_sha256=hashlib.sha256(baseline).hexdigest(),
        device=model.device,
    )
    write_outputs(
        Path(args.model_dir),
        Path(args.output_data_dir) if args.output_data_dir else None,
        onnx,
        metrics,
        lineage,
        baseline=baseline,
    )
    return metrics


def write_failure(path: str | Path, reason: str) -> None:
    """The one-line FailureReason SageMaker reports."""
    failure = Path(path)
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(" ".join(reason.split())[:1000] + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    failure_file = os.environ.get("SM_OUTPUT_FAILURE", DEFAULT_FAILURE_FILE)
    try:
        args, overrides = parse_args(argv)
        failure_file = args.failure_file
        run(args, overrides)
    except SluiceError as exc:
        write_failure(failure_file, f"{type(exc).__name__}: {exc}")
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        write_failure(failure_file, f"unexpected {type(exc).__name__}: {exc}")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
