"""The model registry's use case: unpack a finished training job's model, check it, gate it, register it.

A training job leaves ``model.tar.gz`` holding ``model.onnx``, ``metrics.json`` and ``lineage.json``, and
``baseline.json`` (jobs from before baselines have none). :func:`register_trained_model` unpacks them under
``models/{usecase}/{run_id}/`` in the lake, checks the ONNX file's and the baseline's sha256 against the lineage,
applies the gate (:func:`~shared.registry.gate.gate`) and, if the model passes, creates a model package in the
use case's SageMaker Model Package Group, the baseline attached when there is one. :func:`read_baseline` reads
a package's baseline back from the lake (for the monitor).

What the training side must write is read by :mod:`shared.registry.gate` (``metrics.json``) and
:mod:`shared.registry.package` (``lineage.json``). The gate, the archive and the request are pure;
SageMaker is reached through :class:`~shared.registry.adapters.SageMakerRegistry`, which takes a boto3 client.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from shared.lake import layout as lake
from shared.lake.adapters import ObjectStore
from shared.monitoring.baseline import Baseline
from shared.registry.exceptions import GateFailedError, ModelIntegrityError
from shared.registry.gate import GateThresholds, gate
from shared.registry.package import (
    CONTENT_TYPES,
    JSON_CONTENT_TYPE,
    PackageInputs,
    baseline_uri,
    extract_model_files,
    model_package_request,
    package_version,
    parse_model_files,
    verify_baseline,
    verify_onnx,
)


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
    inference_program: str | None = None
    """The container's ``SAGEMAKER_PROGRAM``, for a model an endpoint serves (with ``inference_code_url``)."""
    inference_code_url: str | None = None
    """The container's ``SAGEMAKER_SUBMIT_DIRECTORY``: the endpoint's inference code archive."""


def register_trained_model(
    request: RegistrationRequest, *, store: ObjectStore, registry: ModelRegistry, workdir: Path
) -> RegisteredModel:
    """Unpack, verify, publish to the lake, gate, register. Raises :class:`GateFailedError` on a weak model.

    The unpacked files are written to the lake before the gate, so a rejected model can be inspected.
    """
    bucket, key = lake.parse_s3_uri(request.model_data_url)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        archive = Path(scratch) / "model.tar.gz"
        store.download(bucket, key, None, archive)
        unpacked = Path(scratch) / "model"
        unpacked.mkdir()
        files = extract_model_files(archive, unpacked)
        metrics, lineage = parse_model_files(files)
        onnx_sha256 = verify_onnx(files["model.onnx"], lineage)
        baseline_sha256 = verify_baseline(files, lineage)
        for name, path in files.items():
            store.upload_file(
                path,
                request.lake_bucket,
                lake.model_file_key(request.usecase, request.run_id, name),
                content_type=CONTENT_TYPES.get(name, JSON_CONTENT_TYPE),
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
            baseline_sha256=baseline_sha256,
            inference_program=request.inference_program,
            inference_code_url=request.inference_code_url,
        )
    )
    arn = registry.create_model_package(package)
    return RegisteredModel(
        package_arn=arn,
        version=package_version(arn),
        approval_status=package["ModelApprovalStatus"],
        model_prefix=lake.model_prefix(request.usecase, request.run_id),
    )


def read_baseline(package: Mapping[str, Any], store: ObjectStore) -> Baseline | None:
    """The baseline of a described model package, read from the lake; None when it was registered without one.

    Raises :class:`ModelIntegrityError` when the stored file is not a valid baseline (and the store's own error
    when it cannot be read).
    """
    uri = baseline_uri(package)
    if uri is None:
        return None
    bucket, key = lake.parse_s3_uri(uri)
    try:
        return Baseline.model_validate_json(store.get_bytes(bucket, key))
    except ValidationError as exc:
        raise ModelIntegrityError(f"{uri} is not a valid baseline:\n{exc}") from exc
