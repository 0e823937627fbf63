"""A heavy endpoint's image and code by instance type: a GPU type gets the SDK's GPU image and onnxruntime-gpu.

Built in bare stacks (no full synth); the heavy use case's template is checked in test_training_pipeline.py.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3_assets as s3_assets

from infra.bundling import TRAINING_DIR, TrainingSourceBundling
from infra.serving_image import (
    GPU_SERVING_REQUIREMENTS,
    ServingImageError,
    gpu_serving_image_uri,
    serves_on_gpu,
    serving_image,
)
from infra.settings import ROOT

TELCO = ROOT / "usecases" / "telco_churn.toml"
CPU_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
CPU_REPOSITORY = "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"


def _requirements_in(bundling: TrainingSourceBundling, tmp_path: Path) -> list[str]:
    tmp_path.mkdir()
    bundling.try_bundle(str(tmp_path), None)  # type: ignore[arg-type]
    (archive,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive.read_bytes()))) as tar:
        member = tar.extractfile("requirements.txt")
        assert member is not None
        text = member.read().decode()
    return [line.split("[")[0].strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    ("instance_type", "on_gpu"),
    [("ml.g4dn.xlarge", True), ("ml.g5.xlarge", True), ("ml.p3.2xlarge", True), ("ml.m5.xlarge", False)],
)
def test_the_sdk_decides_which_instance_types_serve_on_a_gpu(instance_type: str, on_gpu: bool) -> None:
    assert serves_on_gpu(instance_type) is on_gpu


def test_a_cpu_endpoint_keeps_the_training_image_and_archive() -> None:
    # Given a stack in us-east-1 with the training pipeline's image and source archive
    stack = cdk.Stack(cdk.App(), "Cpu", env=cdk.Environment(region="us-east-1"))
    source = s3_assets.Asset(stack, "TrainingSource", path=str(TRAINING_DIR / "inference.py"))
    # When the endpoint's image is chosen for a CPU instance type
    image = serving_image(
        stack,
        instance_type="ml.m5.xlarge",
        usecase_file=TELCO,
        cpu_image_uri=CPU_IMAGE,
        cpu_repository_arn=CPU_REPOSITORY,
        cpu_inference_code=source,
    )
    # Then it is the training pipeline's, unchanged
    assert (image.uri, image.repository_arn, image.inference_code, image.on_gpu) == (
        CPU_IMAGE,
        CPU_REPOSITORY,
        source,
        False,
    )


def test_a_gpu_endpoint_gets_the_sdks_gpu_image_and_its_own_archive() -> None:
    # Given a stack in us-east-1
    stack = cdk.Stack(cdk.App(), "Gpu", env=cdk.Environment(region="us-east-1"))
    source = s3_assets.Asset(stack, "TrainingSource", path=str(TRAINING_DIR / "inference.py"))
    # When the endpoint's image is chosen for a GPU instance type
    image = serving_image(
        stack,
        instance_type="ml.g4dn.xlarge",
        usecase_file=TELCO,
        cpu_image_uri=CPU_IMAGE,
        cpu_repository_arn=CPU_REPOSITORY,
        cpu_inference_code=source,
    )
    # Then it is the SDK's GPU variant, pulled from its own repository, with another source archive
    assert image.on_gpu
    assert image.uri == "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3-gpu-py311"
    assert image.uri == gpu_serving_image_uri("ml.g4dn.xlarge", "us-east-1")
    arn_parts = stack.resolve(image.repository_arn)["Fn::Join"][1]
    assert "".join(p for p in arn_parts if isinstance(p, str)).endswith(":763104351884:repository/pytorch-inference")
    assert image.inference_code is not source


def test_the_gpu_archive_installs_onnxruntime_gpu_and_not_the_cpu_package(tmp_path: Path) -> None:
    # Given the training archive and the GPU endpoint's archive
    training = _requirements_in(TrainingSourceBundling(usecase_file=TELCO), tmp_path / "training")
    gpu = _requirements_in(
        TrainingSourceBundling(usecase_file=TELCO, requirements_file=GPU_SERVING_REQUIREMENTS), tmp_path / "gpu"
    )
    # Then training installs the CPU runtime, the GPU endpoint the GPU one alone (the two packages clash)
    assert "onnxruntime" in training
    assert "onnxruntime-gpu" in gpu
    assert "onnxruntime" not in gpu
    assert "scikit-learn" not in gpu
    assert "skl2onnx" not in gpu


def test_an_instance_type_the_sdk_does_not_know_fails_with_its_name() -> None:
    with pytest.raises(ServingImageError, match=r"ml\.zz9"):
        gpu_serving_image_uri("ml.zz9.xlarge", "xx-nowhere-1")
