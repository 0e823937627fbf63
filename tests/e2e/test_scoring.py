"""The scoring API over HTTP on the embedded cloud: the same handler API Gateway runs on AWS.

The champion is deployed with the platform CLI; the traffic split is changed by writing the
deployment state (as the promotion machinery does), and the score function notices it by itself.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from local.demo.sample_data import load_sample_rows
from local.launcher import RunningCloud
from shared.deployment.adapters import DeploymentStore
from shared.usecase.settings import UseCase
from tests.e2e.conftest import model_ref, train

pytestmark = pytest.mark.e2e


def api_key(cloud: RunningCloud) -> str:
    key_id = cloud.stack_outputs["ApiKeyId"]
    return str(cloud.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])


def call(
    cloud: RunningCloud, method: str, path: str, body: Any = None, *, key: str | None = None
) -> tuple[int, dict[str, Any]]:
    url = cloud.stack_outputs["ApiUrl"].rstrip("/") + path
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def features(usecase: UseCase, row: dict[str, str]) -> dict[str, Any]:
    """A sample row as a JSON record: typed values, no label."""
    record: dict[str, Any] = {}
    for column in usecase.contract.columns:
        if column.name == usecase.contract.label:
            continue
        value = row.get(column.name, "")
        if value == "":
            record[column.name] = None
        elif column.type.value == "int":
            record[column.name] = int(value)
        elif column.type.value == "float":
            record[column.name] = float(value)
        else:
            record[column.name] = value
    return record


@pytest.fixture(scope="module")
def records(usecase: UseCase) -> list[dict[str, Any]]:
    return [features(usecase, row) for row in load_sample_rows(usecase)[:600]]


@pytest.fixture(scope="module")
def key(cloud: RunningCloud, champion: int) -> str:
    return api_key(cloud)


def test_single_and_batch_predictions(
    cloud: RunningCloud, usecase: UseCase, champion: int, key: str, records: list[dict[str, Any]]
) -> None:
    # When one record is scored
    status, body = call(cloud, "POST", f"/v1/{usecase.name}/predict", {"record": records[0]}, key=key)
    # Then the answer carries the score, the label at the model's threshold, the version and the variant
    assert status == 200, body
    (prediction,) = body["predictions"]
    assert 0 <= prediction["score"] <= 1
    assert prediction["label"] == ("Yes" if prediction["score"] >= prediction["threshold"] else "No")
    assert prediction["model_version"] == champion
    assert prediction["variant"] == "champion"
    assert body["request_id"]
    # And a batch with one bad record scores the good ones and names the bad one's fields
    batch = [*records[:20], {**records[20], "tenure": -3, "contract": "Forever"}]
    status, body = call(cloud, "POST", f"/v1/{usecase.name}/predict", {"records": batch}, key=key)
    assert status == 200, body
    assert len(body["predictions"]) == 20
    (error,) = body["errors"]
    assert error["index"] == 20
    assert {e["field"] for e in error["errors"]} >= {"tenure", "contract"}


def test_bad_requests_get_4xx_with_reasons(cloud: RunningCloud, usecase: UseCase, key: str, records: list[Any]) -> None:
    # A bad single record: 422 with field-level reasons
    status, body = call(
        cloud, "POST", f"/v1/{usecase.name}/predict", {"record": {**records[0], "tenure": "x"}}, key=key
    )
    assert status == 422
    assert any("tenure" in json.dumps(e) for e in body["errors"])
    # Not JSON: 400; an unknown use case: 404; no API key: 403
    assert call(cloud, "POST", f"/v1/{usecase.name}/predict", b"{not json", key=key)[0] == 400
    assert call(cloud, "POST", "/v1/nope/predict", {"record": records[0]}, key=key)[0] == 404
    assert call(cloud, "POST", f"/v1/{usecase.name}/predict", {"record": records[0]})[0] == 403


def test_canary_split_is_sticky_and_shadow_is_never_served(
    cloud: RunningCloud, usecase: UseCase, champion: int, key: str, records: list[dict[str, Any]]
) -> None:
    # Given a second model trained and a canary of 25% towards it
    execution = train(cloud, f"e2e-challenger-{int(time.time())}")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    sagemaker, outputs = cloud.client("sagemaker"), cloud.stack_outputs
    newest = sagemaker.list_model_packages(
        ModelPackageGroupName=outputs["ModelPackageGroupName"], SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"][0]
    challenger = model_ref(cloud, sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"]))
    store = DeploymentStore(cloud.client("dynamodb"), outputs["DeploymentTableName"])
    state = store.get(usecase.name)
    store.put(
        state.model_copy(update={"challenger": challenger, "challenger_weight": 0.25, "stage": "canary"}),
        expected_revision=state.revision,
        updated_by="e2e",
    )
    time.sleep(usecase.serving.deployment_cache_seconds + 0.5)  # noticed without a restart, within this bound

    # When 400 distinct customers are scored, and one of them several times
    status, body = call(cloud, "POST", f"/v1/{usecase.name}/predict", {"records": records[:400]}, key=key)
    assert status == 200, body
    variants = {p["entity_id"]: p["variant"] for p in body["predictions"]}
    again = [
        call(cloud, "POST", f"/v1/{usecase.name}/predict", {"record": records[7]}, key=key)[1]["predictions"][0]
        for _ in range(5)
    ]

    # Then about a quarter go to the challenger, and one customer always sees one model
    share = sum(v == "challenger" for v in variants.values()) / len(variants)
    assert 0.18 <= share <= 0.32, share
    assert {p["variant"] for p in again} == {variants[records[7][usecase.contract.entity_id]]}
    assert {p["model_version"] for p in body["predictions"] if p["variant"] == "challenger"} == {challenger.version}

    # When shadow is on instead (no canary)
    state = store.get(usecase.name)
    store.put(
        state.model_copy(update={"challenger_weight": 0.0, "shadow": True, "stage": "shadow"}),
        expected_revision=state.revision,
        updated_by="e2e",
    )
    time.sleep(usecase.serving.deployment_cache_seconds + 0.5)
    shadow_batch = records[400:450]
    status, body = call(cloud, "POST", f"/v1/{usecase.name}/predict", {"records": shadow_batch}, key=key)
    # Then every answer comes from the champion
    assert status == 200
    assert {p["variant"] for p in body["predictions"]} == {"champion"}
    request_id = body["request_id"]

    # And the shadow scores reach the prediction log (never the response)
    logged = wait_for_prediction_log(cloud, usecase, request_id)
    assert {r["variant"] for r in logged} == {"champion", "shadow"}
    assert all(r["served"] is False for r in logged if r["variant"] == "shadow")
    assert len([r for r in logged if r["variant"] == "champion"]) == len(shadow_batch)

    # Finally the state goes back to the champion alone (for the tests that follow)
    state = store.get(usecase.name)
    store.put(
        state.model_copy(update={"challenger": None, "shadow": False, "stage": "idle"}),
        expected_revision=state.revision,
        updated_by="e2e",
    )


def wait_for_prediction_log(
    cloud: RunningCloud, usecase: UseCase, request_id: str, timeout: float = 90
) -> list[dict[str, Any]]:
    """The prediction-log records of one request, once the log writer has flushed them to S3."""
    s3, lake = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: list[dict[str, Any]] = []
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=lake, Prefix=f"predictions/{usecase.name}/"):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=lake, Key=item["Key"])["Body"].read().decode()
                found += [r for r in map(json.loads, body.splitlines()) if r.get("request_id") == request_id]
        if any(r["variant"] == "shadow" for r in found):
            return found
        time.sleep(1.0)
    raise AssertionError(f"request {request_id} did not reach the prediction log within {timeout}s")


def test_the_openapi_document_is_served_and_no_generated_request_gets_a_5xx(
    cloud: RunningCloud, usecase: UseCase, key: str
) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    # Given the served OpenAPI document
    status, document = call(cloud, "GET", f"/v1/{usecase.name}/openapi.json")
    assert status == 200
    assert "predict" in json.dumps(document["paths"])
    schema = schemathesis.openapi.from_dict(document)
    base_url = cloud.stack_outputs["ApiUrl"].rstrip("/")

    # When property-based requests are generated from it (25 per operation), Then none gets a 5xx
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            response = case.call(base_url=base_url, headers={"x-api-key": key}, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        check()
    assert not failures, failures[:5]
