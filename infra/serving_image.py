"""The image, source archive and requirements a heavy model's endpoint runs with, by its instance type.

A CPU instance type serves with the training pipeline's framework image and its source archive (whose
``requirements.txt`` installs the CPU ``onnxruntime``). A GPU instance type (``ml.g…``, ``ml.p…``) serves
with a GPU framework image, so that the CUDA driver stack is there, and its own source archive whose
``requirements.txt`` is ``training/requirements-gpu-serving.txt`` (``onnxruntime-gpu``): the CPU image
would leave the GPU idle, and onnxruntime's CPU package has no CUDA provider.

The GPU image is SageMaker's PyTorch inference image (the scikit-learn image has no GPU variant), its
accelerator variant picked by the SageMaker Python SDK from the instance type (``image_uris.retrieve``
with ``instance_type``): ``pytorch-inference:2.3-gpu-py311`` for ``ml.g4dn.xlarge``. Nothing of PyTorch
is used; it is the maintained inference container with CUDA for the region. Which provider really
serves is decided at load (:mod:`shared.scoring.execution_provider`) and logged by the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import AssetHashType, Aws, CfnMapping, Fn, Stack, Token
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.bundling import TRAINING_DIR, training_source_bundling

GPU_SERVING_FRAMEWORK = "pytorch"
GPU_SERVING_VERSION = "2.3"
GPU_SERVING_PY_VERSION = "py311"
"""Python 3.11 at least: the inference code reads the use-case file with ``tomllib``."""
GPU_SERVING_REQUIREMENTS = TRAINING_DIR / "requirements-gpu-serving.txt"
GPU_PROCESSOR = "gpu"
REFERENCE_REGION = "us-east-1"
INFERENCE_SCOPE = "inference"


class ServingImageError(ValueError):
    """The SDK lists no GPU serving image for the instance type or the region."""


@dataclass(frozen=True, kw_only=True)
class ServingImage:
    """What the endpoint's model container runs: image URI, its repository ARN (the role pulls it) and code."""

    uri: str
    repository_arn: str
    inference_code: s3_assets.Asset
    on_gpu: bool


def gpu_serving_image_uri(instance_type: str, region: str) -> str:
    """The SDK's GPU serving image for ``instance_type`` in ``region`` (its accelerator variant)."""
    from sagemaker.core import image_uris

    try:
        uri: str = image_uris.retrieve(
            GPU_SERVING_FRAMEWORK,
            region,
            GPU_SERVING_VERSION,
            py_version=GPU_SERVING_PY_VERSION,
            instance_type=instance_type,
            image_scope=INFERENCE_SCOPE,
        )
    except ValueError as exc:
        message = f"no {GPU_SERVING_FRAMEWORK} serving image for {instance_type} in {region}: {exc}"
        raise ServingImageError(message) from exc
    return uri


def serves_on_gpu(instance_type: str) -> bool:
    """Whether the SDK picks the GPU variant of the serving image for ``instance_type``."""
    tag = gpu_serving_image_uri(instance_type, REFERENCE_REGION).rsplit(":", 1)[1]
    return GPU_PROCESSOR in tag.split("-")


def gpu_serving_registries() -> dict[str, str]:
    """Region → registry account of the GPU serving image, for every region the SDK lists."""
    from sagemaker.core import image_uris

    scoped = image_uris.config_for_framework(GPU_SERVING_FRAMEWORK)[INFERENCE_SCOPE]
    version = scoped.get("version_aliases", {}).get(GPU_SERVING_VERSION, GPU_SERVING_VERSION)
    registries: dict[str, str] = scoped["versions"][version]["registries"]
    return dict(sorted(registries.items()))


def _gpu_image(scope: Construct, instance_type: str) -> tuple[str, str, str]:
    """URI, account and repository of the GPU image for the stack's region (a literal where the region is
    known at synth time; else the account from a ``Mappings`` entry, as the training image does)."""
    region = Stack.of(scope).region
    if not Token.is_unresolved(region):
        uri = gpu_serving_image_uri(instance_type, region)
        account, _, rest = uri.partition(".dkr.ecr.")
        return uri, account, rest.split("/", 1)[1].split(":", 1)[0]
    path = gpu_serving_image_uri(instance_type, REFERENCE_REGION).split("/", 1)[1]
    mapping = CfnMapping(
        scope,
        "GpuServingImageAccounts",
        mapping={region: {"account": account} for region, account in gpu_serving_registries().items()},
    )
    account = mapping.find_in_map(Aws.REGION, "account")
    uri = Fn.join("", [account, ".dkr.ecr.", Aws.REGION, ".", Aws.URL_SUFFIX, f"/{path}"])
    return uri, account, path.split(":", 1)[0]


def serving_image(
    scope: Construct,
    *,
    instance_type: str,
    usecase_file: Path,
    cpu_image_uri: str,
    cpu_repository_arn: str,
    cpu_inference_code: s3_assets.Asset,
    training_image_serves_gpu: bool = False,
) -> ServingImage:
    """The endpoint's image and code: the training pipeline's on a CPU instance type; on a GPU one, a source
    archive that installs ``onnxruntime-gpu`` in the training pipeline's image when that image has CUDA
    (``training_image_serves_gpu``: XGBoost's), else in the SDK's GPU serving image."""
    if not serves_on_gpu(instance_type):
        return ServingImage(
            uri=cpu_image_uri, repository_arn=cpu_repository_arn, inference_code=cpu_inference_code, on_gpu=False
        )
    code = _gpu_serving_source(scope, usecase_file)
    if training_image_serves_gpu:
        return ServingImage(uri=cpu_image_uri, repository_arn=cpu_repository_arn, inference_code=code, on_gpu=True)
    uri, account, repository = _gpu_image(scope, instance_type)
    repository_arn = Fn.join("", [f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:", account, f":repository/{repository}"])
    return ServingImage(uri=uri, repository_arn=repository_arn, inference_code=code, on_gpu=True)


def _gpu_serving_source(scope: Construct, usecase_file: Path) -> s3_assets.Asset:
    """The inference code with ``onnxruntime-gpu`` as its ``requirements.txt``."""
    bundling, asset_hash = training_source_bundling(usecase_file, requirements_file=GPU_SERVING_REQUIREMENTS)
    return s3_assets.Asset(
        scope,
        "GpuServingSource",
        path=str(TRAINING_DIR),
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=bundling,
    )
