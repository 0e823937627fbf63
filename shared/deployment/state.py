"""Which models serve a use case: the deployment state and the model references it holds.

Pure types: :class:`~shared.deployment.adapters.DeploymentStore` reads and writes them on DynamoDB.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.registry.exceptions import RegistryError

IDLE_STAGE = "idle"
"""The stage of a use case no promotion is running for (``shared.promotion.transitions.Stage.IDLE``)."""


class ModelRef(BaseModel):
    """One registered model, as the score function needs it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = Field(ge=1)
    package_arn: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    onnx_key: str = Field(min_length=1)
    """The ONNX file's key in the lake bucket (``models/{usecase}/{run_id}/model.onnx``)."""
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """The registry's sha256 of the ONNX file: a file that does not match is never served."""
    threshold: float
    """The cost-optimal decision threshold (label positive when score >= threshold)."""


class DeploymentState(BaseModel):
    """What serves a use case now: the champion, a challenger (canary or shadow) and how traffic is split."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    usecase: str = Field(min_length=1)
    champion: ModelRef | None = None
    challenger: ModelRef | None = None
    challenger_weight: float = Field(default=0.0, ge=0, le=1)
    """Share of entities the challenger serves (canary); 0 when it only shadows or is absent."""
    shadow: bool = False
    """Score sampled requests with the challenger too, never returning its answer."""
    previous_champion: ModelRef | None = None
    stage: str = IDLE_STAGE
    revision: int = Field(default=0, ge=0)
    updated_at: datetime | None = None
    updated_by: str = ""
    reason: str = ""


def model_ref_from_package(package: Mapping[str, Any], metrics: Mapping[str, Any]) -> ModelRef:
    """The :class:`ModelRef` of a registered package (a ``DescribeModelPackage`` response and its metrics.json)."""
    properties = package.get("CustomerMetadataProperties") or {}
    arn = package.get("ModelPackageArn", "")
    try:
        threshold = float(metrics["threshold"]["threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"the metrics of {arn or 'the package'} have no threshold.threshold") from exc
    from shared.registry.package import package_version  # the registry module is not needed on the scoring path

    version = package.get("ModelPackageVersion") or package_version(arn)
    try:
        return ModelRef(
            version=int(version),
            package_arn=arn,
            run_id=properties.get("run_id", ""),
            onnx_key=properties.get("onnx_s3_key", ""),
            onnx_sha256=properties.get("onnx_sha256", ""),
            threshold=threshold,
        )
    except ValidationError as exc:
        raise RegistryError(f"model package {arn!r} lacks what serving needs:\n{exc}") from exc


def variant_name(ref: ModelRef) -> str:
    """The production variant that serves ``ref`` on a heavy use case's endpoint during a promotion."""
    return f"v{ref.version}"
