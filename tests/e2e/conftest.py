"""The embedded cloud, started once per session as its own process (`python -m local`).

Tests talk to it only through boto3 with its endpoint URL, the stack outputs it wrote, HTTP to the
API URL, and the platform CLI — as a user would after `cdk deploy`.

Under pytest-xdist (``-n 2 --dist loadgroup``, what ``make test`` runs) the modules that use this
session cloud run on one worker, in file order (``tests/conftest.py``); the promotion and heavy modules
start their own cloud each, side by side on free ports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.demo.sample_data import load_sample_rows, to_csv
from local.launcher import ROOT, RunningCloud, launch
from shared.deployment.state import ModelRef, model_ref_from_package
from shared.lake.layout import manifest_prefix
from shared.usecase.settings import UseCase, load_usecase

TELCO = ROOT / "usecases" / "telco_churn.toml"


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    workdir: Path = tmp_path_factory.mktemp("embedded-cloud")
    running = launch(outputs_file=workdir / "outputs.json", log_file=workdir / "cloud.log")
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, f"the embedded cloud did not stop cleanly ({code}):\n{running.log_file.read_text()[-3000:]}"


def wait_for_execution(cloud: RunningCloud, execution_arn: str, timeout: float = 300) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"{execution_arn} still running after {timeout}s")


def ingest_sample(cloud: RunningCloud, usecase: UseCase, key: str) -> None:
    """Upload the use case's sample data under ``key`` and wait until its manifest exists."""
    outputs, s3 = cloud.stack_outputs, cloud.client("s3")
    s3.put_object(Bucket=outputs["RawBucketName"], Key=key, Body=to_csv(load_sample_rows(usecase)))
    deadline = time.monotonic() + 60
    while True:
        listing = s3.list_objects_v2(Bucket=outputs["LakeBucketName"], Prefix=manifest_prefix(usecase.name))
        for item in listing.get("Contents", []):
            body = s3.get_object(Bucket=outputs["LakeBucketName"], Key=item["Key"])["Body"].read()
            if json.loads(body)["source_key"] == key:
                return
        assert time.monotonic() < deadline, f"{key} was not ingested"
        time.sleep(0.5)


def train(cloud: RunningCloud, run_id: str) -> dict[str, Any]:
    """Run the training pipeline once; return the finished execution."""
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.stack_outputs["TrainingStateMachineArn"], name=run_id, input="{}"
    )
    return wait_for_execution(cloud, started["executionArn"])


def run_cli(cloud: RunningCloud, *args: str, usecase: Path = TELCO) -> subprocess.CompletedProcess[str]:
    """The platform CLI against the embedded cloud, as an operator runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "--usecase",
            str(usecase),
            "--endpoint-url",
            cloud.endpoint_url,
            "--outputs-file",
            str(cloud.outputs_file),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def model_ref(cloud: RunningCloud, package: dict[str, Any]) -> ModelRef:
    """What serving needs of a registered package (a ``DescribeModelPackage`` answer); its metrics from the lake."""
    bucket, _, key = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].removeprefix("s3://").partition("/")
    metrics = json.loads(cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    return model_ref_from_package(package, metrics)


@dataclass(frozen=True)
class Trained:
    """The first training run of the session and what it registered."""

    execution: dict[str, Any]
    version: int


@pytest.fixture(scope="session")
def usecase() -> UseCase:
    return load_usecase(TELCO)


@pytest.fixture(scope="session")
def trained(cloud: RunningCloud, usecase: UseCase) -> Trained:
    ingest_sample(cloud, usecase, "e2e/training.csv")
    execution = train(cloud, f"e2e-{int(time.time())}")
    assert execution["status"] == "SUCCEEDED", execution.get("cause") or execution.get("error")
    packages = cloud.client("sagemaker").list_model_packages(
        ModelPackageGroupName=cloud.stack_outputs["ModelPackageGroupName"],
        SortBy="CreationTime",
        SortOrder="Descending",
    )["ModelPackageSummaryList"]
    return Trained(execution=execution, version=int(packages[0]["ModelPackageVersion"]))


@pytest.fixture(scope="session")
def champion(cloud: RunningCloud, trained: Trained) -> int:
    """The first trained version, deployed as the champion through the CLI."""
    result = run_cli(cloud, "deploy", str(trained.version))
    assert result.returncode == 0, result.stderr
    return trained.version
