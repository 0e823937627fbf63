"""A trained model's package: its files (``model.tar.gz`` → model.onnx, metrics.json, lineage.json, and
baseline.json when the job wrote one), their checks, and the ``CreateModelPackage`` request that registers it
(pure, apart from reading local files).

``lineage.json`` holds ``onnx_sha256``, ``training_set_hash``, ``contract_version``, ``code_version``, and
``baseline`` (``{"file": "baseline.json", "sha256": ...}``) when there is a baseline; other keys are kept.

Where a package points (S3 URIs of the files unpacked under ``models/{usecase}/{run_id}/`` in the lake):

* ``ModelMetrics.ModelQuality.Statistics`` → metrics.json (read by promotion and the CLI);
* with a baseline, ``ModelMetrics.ModelDataQuality.Statistics``, ``DriftCheckBaselines.ModelDataQuality.Statistics``
  and ``DriftCheckBaselines.ModelQuality.Statistics`` → baseline.json, with its ``ContentDigest``
  (``sha256:<hex>``); ``CustomerMetadataProperties`` gain ``baseline_s3_key`` and ``baseline_sha256``.
  :func:`baseline_uri` reads it back (None for a package registered without one: monitor data quality only).
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.lake import layout as lake
from shared.monitoring.baseline import BASELINE_FILE, Baseline
from shared.registry.exceptions import ModelIntegrityError, RegistryError
from shared.registry.gate import TrainingMetrics

CONTENT_TYPES = {"model.onnx": "application/octet-stream", "metrics.json": "application/json"}
JSON_CONTENT_TYPE = "application/json"
APPROVAL_STATUS = {"manual": "PendingManualApproval", "automatic": "Approved"}
INFERENCE_CONTENT_TYPE = "application/json"


class FileReference(BaseModel):
    """One file of the model, by name and sha256 (lineage's ``baseline``)."""

    model_config = ConfigDict(frozen=True)

    file: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Lineage(BaseModel):
    """``lineage.json``: where a model came from."""

    model_config = ConfigDict(frozen=True, extra="allow")

    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    training_set_hash: str = Field(min_length=1)
    contract_version: str = Field(min_length=1)
    code_version: str = Field(min_length=1)
    baseline: FileReference | None = None
    """baseline.json, when the job wrote one."""


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


def verify_baseline(files: Mapping[str, Path], lineage: Lineage) -> str | None:
    """baseline.json's sha256 (None when the archive has none), checked against lineage and the baseline format.

    Raises :class:`ModelIntegrityError` when lineage names a baseline the archive lacks, when the sha256 differs,
    or when the file is not a valid :class:`~shared.monitoring.baseline.Baseline`.
    """
    path = files.get(BASELINE_FILE)
    if path is None:
        if lineage.baseline is not None:
            raise ModelIntegrityError(f"lineage.json names {lineage.baseline.file}, but the model archive lacks it")
        return None
    actual = sha256_of(path)
    if lineage.baseline is not None and actual != lineage.baseline.sha256:
        raise ModelIntegrityError(
            f"{BASELINE_FILE} has sha256 {actual}, but lineage.json says {lineage.baseline.sha256}"
        )
    try:
        Baseline.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ModelIntegrityError(f"{BASELINE_FILE} is invalid:\n{exc}") from exc
    return actual


def extract_model_files(archive: Path, into: Path) -> dict[str, Path]:
    """The model files of a SageMaker ``model.tar.gz`` (at its root or in one folder), extracted into ``into``.

    The optional files (:data:`~shared.lake.layout.OPTIONAL_MODEL_FILES`) are extracted when present.
    """
    wanted = lake.MODEL_FILES + lake.OPTIONAL_MODEL_FILES
    found: dict[str, Path] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if not member.isfile() or name not in wanted or name in found:
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
    baseline_sha256: str | None = None
    """baseline.json's sha256, when the model has one (unpacked beside the others)."""
    inference_program: str | None = None
    """``SAGEMAKER_PROGRAM`` of the container (the inference code's entry point), for a model an endpoint serves."""
    inference_code_url: str | None = None
    """``SAGEMAKER_SUBMIT_DIRECTORY`` of the container: the ``s3://`` archive of the endpoint's inference code."""


def _inference_container(inputs: PackageInputs) -> dict[str, Any]:
    """The package's container: image and model, and, for a model an endpoint serves, the environment that
    makes the framework container load ``model.onnx`` with Sluice's inference code (a model created from the
    package at promotion gets it)."""
    container: dict[str, Any] = {"Image": inputs.image_uri, "ModelDataUrl": inputs.model_data_url}
    if inputs.inference_program is not None and inputs.inference_code_url is not None:
        container["Environment"] = {
            "SAGEMAKER_PROGRAM": inputs.inference_program,
            "SAGEMAKER_SUBMIT_DIRECTORY": inputs.inference_code_url,
        }
    return container


def _baseline_source(inputs: PackageInputs, baseline_sha256: str) -> dict[str, str]:
    key = lake.model_file_key(inputs.usecase, inputs.run_id, BASELINE_FILE)
    return {
        "ContentType": JSON_CONTENT_TYPE,
        "ContentDigest": f"sha256:{baseline_sha256}",
        "S3Uri": f"s3://{inputs.lake_bucket}/{key}",
    }


def model_package_request(inputs: PackageInputs) -> dict[str, Any]:
    """The ``CreateModelPackage`` request of a model that passed the gate."""
    prefix = lake.model_prefix(inputs.usecase, inputs.run_id)
    lineage = inputs.lineage
    request: dict[str, Any] = {
        "ModelPackageGroupName": inputs.group_name,
        "ModelPackageDescription": f"{inputs.usecase} run {inputs.run_id} (training job {inputs.job_name})",
        "ModelApprovalStatus": APPROVAL_STATUS[inputs.approval],
        "InferenceSpecification": {
            "Containers": [_inference_container(inputs)],
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
    if inputs.baseline_sha256 is not None:
        source = _baseline_source(inputs, inputs.baseline_sha256)
        request["ModelMetrics"]["ModelDataQuality"] = {"Statistics": source}
        request["DriftCheckBaselines"] = {
            "ModelDataQuality": {"Statistics": source},
            "ModelQuality": {"Statistics": source},
        }
        request["CustomerMetadataProperties"] |= {
            "baseline_s3_key": lake.model_file_key(inputs.usecase, inputs.run_id, BASELINE_FILE),
            "baseline_sha256": inputs.baseline_sha256,
        }
    return request


def package_version(package_arn: str) -> int:
    """``arn:...:model-package/<group>/<version>`` → ``<version>``."""
    try:
        return int(package_arn.rsplit("/", 1)[1])
    except (IndexError, ValueError) as exc:
        raise RegistryError(f"{package_arn!r} is not a versioned model package ARN") from exc


def metrics_uri(package: Mapping[str, Any]) -> str:
    """``ModelMetrics.ModelQuality.Statistics.S3Uri`` of a described package (its metrics.json)."""
    try:
        return str(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    except (KeyError, TypeError) as exc:
        raise RegistryError(f"model package {package.get('ModelPackageArn')!r} names no metrics.json") from exc


def baseline_uri(package: Mapping[str, Any]) -> str | None:
    """``DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri`` of a described package (its baseline.json).

    None for a package registered without a baseline (an older training job): monitor its data quality only.
    """
    try:
        return str(package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"])
    except (KeyError, TypeError):
        return None
