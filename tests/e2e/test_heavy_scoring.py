"""A heavy use case on the embedded cloud: the score function calls a SageMaker endpoint, with a
timeout, a circuit breaker and the light model as fallback.

The use case is the Telco one declared heavy (a file written here: onboarding is a file, not code).
The endpoint is created through the SageMaker API as an operator would once a model is registered,
and made to fail through the embedded cloud's fault switch (`/_sluice/faults`, local only).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.demo.observe import logged_predictions
from local.demo.sample_data import load_sample_rows
from local.demo.traffic import Traffic
from local.launcher import ROOT, RunningCloud, launch
from shared.usecase.settings import UseCase, load_usecase
from tests.e2e.conftest import ingest_sample, run_cli, train
from tests.e2e.test_scoring import api_key, call, features
from tests.usecase_variants import with_xgboost

pytestmark = pytest.mark.e2e

HEAVY_SETTINGS = """
endpoint_timeout_ms = 300
endpoint_max_attempts = 1
breaker_failure_threshold = 2
breaker_reset_seconds = 3
"""


PROMOTION_SETTINGS = {
    "shadow_bake_seconds = 20": "shadow_bake_seconds = 8",
    "canary_steps = [0.01, 0.05, 0.25, 1.0]": "canary_steps = [0.25, 1.0]",
    "canary_bake_seconds = 15": "canary_bake_seconds = 8",
    "min_samples = 30": "min_samples = 20",
    # these tests are about the endpoint's variants, not its speed: on a loaded two-core CI machine the emulated
    # endpoint's p99 swings by hundreds of milliseconds, and a latency rollback there would test the machine
    "latency_budget_ms = 250": "latency_budget_ms = 3000",
    "latency_tolerance_ms = 40": "latency_tolerance_ms = 2000",
}


@pytest.fixture(scope="module")
def heavy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = (ROOT / "usecases" / "telco_churn.toml").read_text()
    text = text.replace('name = "telco_churn"', 'name = "telco_churn_heavy"', 1)
    text = text.replace('kind = "light"', 'kind = "heavy"', 1)
    text = text.replace("[serving]\n", "[serving]\n" + HEAVY_SETTINGS, 1)
    text = with_xgboost(text)  # heavy means a GPU-capable model: Telco switches to XGBoost by its file alone
    # a short promotion: two canary steps large enough to gather samples quickly from a little traffic
    for old, new in PROMOTION_SETTINGS.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path_factory.mktemp("usecases") / "telco_churn_heavy.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def heavy(heavy_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    workdir = tmp_path_factory.mktemp("heavy-cloud")
    running = launch(usecase=heavy_file, outputs_file=workdir / "outputs.json", log_file=workdir / "cloud.log")
    try:
        yield running
    finally:
        running.stop()


def fault(cloud: RunningCloud, **settings: Any) -> None:
    base = cloud.stack_outputs["ApiUrl"].split("/", 3)[:3]
    request = urllib.request.Request(
        "/".join(base) + "/_sluice/faults", data=json.dumps(settings).encode(), method="POST"
    )
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def timed_prediction(cloud: RunningCloud, usecase: UseCase, key: str, record: dict[str, Any]) -> tuple[dict, float]:
    started = time.monotonic()
    status, body = call(cloud, "POST", f"/v1/{usecase.name}/predict", {"record": record}, key=key)
    elapsed = time.monotonic() - started
    assert status == 200, body
    return body["predictions"][0], elapsed


def endpoint_name(usecase: UseCase) -> str:
    return f"sluice-{usecase.name.replace('_', '-')}"


def create_endpoint(cloud: RunningCloud, usecase: UseCase, usecase_file: Path) -> None:
    """An endpoint for the first registered model package, created as an operator would (a promotion does it too)."""
    endpoint = endpoint_name(usecase)
    sagemaker = cloud.client("sagemaker")
    package_arn = sagemaker.list_model_packages(ModelPackageGroupName=cloud.stack_outputs["ModelPackageGroupName"])[
        "ModelPackageSummaryList"
    ][0]["ModelPackageArn"]
    sagemaker.create_model(
        ModelName=f"{endpoint}-v1",
        Containers=[{"ModelPackageName": package_arn, "Environment": {"SLUICE_USECASE_FILE": str(usecase_file)}}],
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker-execution",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{endpoint}-v1",
        ProductionVariants=[
            {
                "VariantName": "v1",
                "ModelName": f"{endpoint}-v1",
                "InitialInstanceCount": 1,
                "InstanceType": usecase.model.endpoint_instance_type,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-v1")


@pytest.fixture(scope="module")
def champion_v1(heavy: RunningCloud, heavy_file: Path) -> int:
    """The sample data ingested, one training run, its version deployed as champion with the CLI."""
    usecase = load_usecase(heavy_file)
    ingest_sample(heavy, usecase, "e2e/heavy.csv")
    execution = train(heavy, f"e2e-heavy-{int(time.time())}")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    deployed = run_cli(heavy, "deploy", "1", usecase=heavy_file)
    assert deployed.returncode == 0, deployed.stderr
    return 1


@pytest.fixture
def endpoint_v1(heavy: RunningCloud, heavy_file: Path, champion_v1: int) -> str:
    """The champion's endpoint: the one the breaker test created when it ran before, else created now."""
    usecase = load_usecase(heavy_file)
    try:
        heavy.client("sagemaker").describe_endpoint(EndpointName=endpoint_name(usecase))
    except ClientError:
        create_endpoint(heavy, usecase, heavy_file)
    return endpoint_name(usecase)


def test_a_failing_endpoint_degrades_to_the_light_model_and_the_breaker_opens_and_recovers(
    heavy: RunningCloud, heavy_file: Path, champion_v1: int
) -> None:
    usecase = load_usecase(heavy_file)
    endpoint = endpoint_name(usecase)
    # Given a trained, deployed model (the fixture) and no endpoint yet
    key = api_key(heavy)
    record = features(usecase, load_sample_rows(usecase)[3])

    # When scoring while the endpoint does not exist: the light model answers, degraded
    prediction, _ = timed_prediction(heavy, usecase, key, record)
    assert prediction["degraded"] is True

    # When the operator creates the endpoint from the registered model package (as a promotion does)
    create_endpoint(heavy, usecase, heavy_file)
    time.sleep(usecase.serving.breaker_reset_seconds + 0.5)  # the breaker, opened by the missing endpoint, half-opens
    # Then the endpoint answers, not degraded
    healthy, _ = timed_prediction(heavy, usecase, key, record)
    assert healthy["degraded"] is False

    # When the endpoint becomes slow (past the timeout): answers degrade, and once the breaker opens they are fast
    fault(heavy, endpoint=endpoint, mode="slow", delay_ms=2000)
    slow = [timed_prediction(heavy, usecase, key, record) for _ in range(usecase.serving.breaker_failure_threshold)]
    fast = [timed_prediction(heavy, usecase, key, record) for _ in range(3)]
    assert all(p["degraded"] for p, _ in slow + fast)
    assert min(t for _, t in slow) >= usecase.serving.endpoint_timeout_ms / 1000
    assert max(t for _, t in fast) < usecase.serving.endpoint_timeout_ms / 1000  # open: the endpoint is not called
    assert all(abs(p["score"] - healthy["score"]) < 1e-5 for p, _ in fast)  # the same model, served in Lambda

    # When the endpoint recovers: after the reset time one trial call closes the breaker
    fault(heavy, endpoint=endpoint, mode="ok")
    time.sleep(usecase.serving.breaker_reset_seconds + 0.5)
    recovered, _ = timed_prediction(heavy, usecase, key, record)
    assert recovered["degraded"] is False


def test_a_heavy_candidate_is_promoted_on_its_endpoints_own_variants(
    heavy: RunningCloud, heavy_file: Path, endpoint_v1: str
) -> None:
    usecase = load_usecase(heavy_file)
    endpoint = endpoint_v1
    sagemaker = heavy.client("sagemaker")
    # Given the champion (v1) served by the endpoint an operator created (the fixture), and v2 registered
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    execution = train(heavy, f"e2e-heavy-second-{int(time.time())}")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    records = [features(usecase, row) for row in load_sample_rows(usecase)[:600]]
    url = f"{heavy.stack_outputs['ApiUrl'].rstrip('/')}/v1/{usecase.name}/predict"
    with Traffic(url=url, api_key=api_key(heavy), records=records, batch_size=20) as flow:
        deadline = time.monotonic() + 90  # replay needs recorded traffic in the lake
        while logged_predictions(heavy, usecase) < usecase.promotion.min_samples:
            assert time.monotonic() < deadline, "no traffic reached the prediction log"
            time.sleep(1)
        # When the operator promotes v2
        result = run_cli(heavy, "promote", "2", usecase=heavy_file)
        _, failures, served = flow.snapshot()
    # Then it went through every stage on the endpoint: v2 alone serves now, as its own production variant
    assert result.returncode == 0, result.stdout + result.stderr
    variants = sagemaker.describe_endpoint(EndpointName=endpoint)["ProductionVariants"]
    history = run_cli(heavy, "history", usecase=heavy_file).stdout
    assert [(v["VariantName"], v["CurrentWeight"]) for v in variants] == [("v2", 1.0)], result.stdout + history
    # And the canary's customers were answered by v2, and no request failed
    assert served[("challenger", 2)] > 0
    assert failures == []
