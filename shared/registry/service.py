"""The model registry: unpack a finished training job's model, check it, gate it, register it.

A training job leaves ``model.tar.gz`` holding ``model.onnx``, ``metrics.json`` and ``lineage.json``.
:func:`register_trained_model` unpacks those three under ``models/{usecase}/{run_id}/`` in the lake,
checks the ONNX file's sha256 against the lineage, applies the gate (:func:`gate`) and, if the model
passes, creates a model package in the use case's SageMaker Model Package Group.

What the training side must write (the contract this module reads):

- ``metrics.json``: ``auc`` and ``ece`` (numbers) and ``parity_ok`` (bool: ONNX and the fitted
  estimator agree on the holdout), or ``parity: {"ok": bool, ...}``; other keys are kept.
- ``lineage.json``: ``onnx_sha256``, ``training_set_hash``, ``contract_version``, ``code_version``;
  other keys are kept.

The gate and the request are pure functions; SageMaker is reached through :class:`SageMakerRegistry`,
which takes a boto3 client.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.exceptions import GateFailedError, ModelIntegrityError, RegistryError
from shared.lake import layout as lake
from shared.lake.adapters import ObjectStore

CONTENT_TYPES = {"model.onnx": "application/octet-stream", "metrics.json": "application/json"}
APPROVAL_STATUS = {"manual": "PendingManualApproval", "automatic": "Approved"}
INFERENCE_CONTENT_TYPE = "application/json"


class TrainingMetrics(BaseModel):
    """``metrics.json`` as the gate reads it."""

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


class Lineage(BaseModel):
    """``lineage.json``: where a model came from."""

    model_config = ConfigDict(frozen=True, extra="allow")

    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    training_set_hash: str = Field(min_length=1)
    contract_version: str = Field(min_length=1)
    code_version: str = Field(min_length=1)


@dataclass(frozen=True, kw_only=True)
class GateThresholds:
    min_auc: float
    max_ece: float


@dataclass(frozen=True, kw_only=True)
class GateVerdict:
    passed: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RegisteredModel:
    package_arn: str
    version: int
    approval_status: str
    model_prefix: str


class ModelRegistry(Protocol):
    """What registration needs from the registry."""

    def create_model_package(self, request: dict[str, Any]) -> str:
        """Create a model package; return its ARN."""
        ...


# --- pure functions ----------------------------------------------------------------------------


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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_onnx(onnx_file: Path, lineage: Lineage) -> str:
    """The ONNX file's sha256, if it is the one the lineage names; else :class:`ModelIntegrityError`."""
    actual = sha256_of(onnx_file)
    if actual != lineage.onnx_sha256:
        raise ModelIntegrityError(f"model.onnx has sha256 {actual}, but lineage.json says {lineage.onnx_sha256}")
    return actual


def extract_model_files(archive: Path, into: Path) -> dict[str, Path]:
    """The model files of a SageMaker ``model.tar.gz`` (at its root or in one folder), extracted into ``into``."""
    found: dict[str, Path] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if not member.isfile() or name not in lake.MODEL_FILES or name in found:
                    continue
                source = tar.extractfile(member)
                if source is None:
                    continue
                target = into / name
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
                found[name] = target
    except (tarfile.TarError, OSError) as exc:
        raise ModelIntegrityError(f"cannot read the model archive: {exc}") from exc
    missing = [name for name in lake.MODEL_FILES if name not in found]
    if missing:
        raise ModelIntegrityError(f"the model archive lacks {missing}")
    return found


def parse_model_files(files: dict[str, Path]) -> tuple[TrainingMetrics, Lineage]:
    try:
        metrics = TrainingMetrics.model_validate_json(files["metrics.json"].read_bytes())
        lineage = Lineage.model_validate_json(files["lineage.json"].read_bytes())
    except ValidationError as exc:
        raise ModelIntegrityError(f"metrics.json or lineage.json is invalid:\n{exc}") from exc
    return metrics, lineage


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


@dataclass(frozen=True, kw_only=True)
class PackageInputs:
    """Everything a model package records about one trained model."""

    group_name: str
    usecase: str
    run_id: str
    job_name: str
    lake_bucket: str
    model_data_url: str
    image_uri: str
    approval: Literal["manual", "automatic"]
    onnx_sha256: str
    lineage: Lineage


def model_package_request(inputs: PackageInputs) -> dict[str, Any]:
    """The ``CreateModelPackage`` request of a model that passed the gate."""
    prefix = lake.model_prefix(inputs.usecase, inputs.run_id)
    lineage = inputs.lineage
    return {
        "ModelPackageGroupName": inputs.group_name,
        "ModelPackageDescription": f"{inputs.usecase} run {inputs.run_id} (training job {inputs.job_name})",
        "ModelApprovalStatus": APPROVAL_STATUS[inputs.approval],
        "InferenceSpecification": {
            "Containers": [{"Image": inputs.image_uri, "ModelDataUrl": inputs.model_data_url}],
            "SupportedContentTypes": [INFERENCE_CONTENT_TYPE],
            "SupportedResponseMIMETypes": [INFERENCE_CONTENT_TYPE],
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{inputs.lake_bucket}/{prefix}metrics.json",
                }
            }
        },
        "CustomerMetadataProperties": {
            "contract_version": lineage.contract_version,
            "training_set_hash": lineage.training_set_hash,
            "code_version": lineage.code_version,
            "onnx_sha256": inputs.onnx_sha256,
            "onnx_s3_key": f"{prefix}model.onnx",
            "lineage_s3_key": f"{prefix}lineage.json",
            "run_id": inputs.run_id,
            "training_job_name": inputs.job_name,
        },
    }


def package_version(package_arn: str) -> int:
    """``arn:...:model-package/<group>/<version>`` → ``<version>``."""
    try:
        return int(package_arn.rsplit("/", 1)[1])
    except (IndexError, ValueError) as exc:
        raise RegistryError(f"{package_arn!r} is not a versioned model package ARN") from exc


# --- the adapter -------------------------------------------------------------------------------


class SageMakerRegistry:
    """:class:`ModelRegistry` on SageMaker Model Package Groups, through a boto3 SageMaker client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def create_model_package(self, request: dict[str, Any]) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            arn: str = self._client.create_model_package(**request)["ModelPackageArn"]
        except (BotoCoreError, ClientError) as exc:
            raise RegistryError(f"cannot create a model package in {request['ModelPackageGroupName']}: {exc}") from exc
        return arn


# --- the use case ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RegistrationRequest:
    usecase: str
    run_id: str
    job_name: str
    model_data_url: str
    """The job's ``ModelArtifacts.S3ModelArtifacts`` (``s3://.../model.tar.gz``)."""
    lake_bucket: str
    group_name: str
    image_uri: str
    approval: Literal["manual", "automatic"]
    thresholds: GateThresholds


def register_trained_model(
    request: RegistrationRequest, *, store: ObjectStore, registry: ModelRegistry, workdir: Path
) -> RegisteredModel:
    """Unpack, verify, publish to the lake, gate, register. Raises :class:`GateFailedError` on a weak model.

    The unpacked files are written to the lake before the gate, so a rejected model can be inspected.
    """
    bucket, key = parse_s3_uri(request.model_data_url)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        archive = Path(scratch) / "model.tar.gz"
        store.download(bucket, key, None, archive)
        unpacked = Path(scratch) / "model"
        unpacked.mkdir()
        files = extract_model_files(archive, unpacked)
        metrics, lineage = parse_model_files(files)
        onnx_sha256 = verify_onnx(files["model.onnx"], lineage)
        for name, path in files.items():
            store.upload_file(
                path,
                request.lake_bucket,
                lake.model_file_key(request.usecase, request.run_id, name),
                content_type=CONTENT_TYPES.get(name, "application/json"),
            )
    verdict = gate(metrics, request.thresholds)
    if not verdict.passed:
        raise GateFailedError(list(verdict.reasons))
    package = model_package_request(
        PackageInputs(
            group_name=request.group_name,
            usecase=request.usecase,
            run_id=request.run_id,
            job_name=request.job_name,
            lake_bucket=request.lake_bucket,
            model_data_url=request.model_data_url,
            image_uri=request.image_uri,
            approval=request.approval,
            onnx_sha256=onnx_sha256,
            lineage=lineage,
        )
    )
    arn = registry.create_model_package(package)
    return RegisteredModel(
        package_arn=arn,
        version=package_version(arn),
        approval_status=package["ModelApprovalStatus"],
        model_prefix=lake.model_prefix(request.usecase, request.run_id),
    )
