"""The review functions under moto: intake from SQS records, then the reviewer's API as API Gateway's Cognito
authorizer hands it requests (401 without a reviewer, 403 on another's claim, 409 on a second decision, 400 on an
undeclared taxonomy value, a note with HTML shown escaped), and the label in the lake with its provenance."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.review.adapters import TABLE_SCHEMA
from shared.scoring.feedback import PROVENANCE
from tests.fakes import FakeLambdaContext

REPO = Path(__file__).resolve().parents[2]
LAKE, TABLE, USECASE = "sluice-lake", "sluice-review", "telco_churn"
BASE = f"/v1/{USECASE}/review"


def _review_message(request_id: str, scores: list[float]) -> str:
    n = len(scores)
    return json.dumps({
        "usecase": USECASE, "request_id": request_id, "time": "2026-12-01T08:59:00+00:00",
        "variant": "champion", "model_version": 3, "threshold": 0.45, "served": True, "index": list(range(n)),
        "entity_id": list(range(1, n + 1)), "score": scores, "label": ["No"] * n,
        "features": {"contract": ["One year"] * n, "tenure": [12] * n},
        "routing": [{"reasons": ["in_band"], "inclusion_probability": 1.0, "challenger_score": None}] * n,
    })  # fmt: skip


def _api_event(method: str, path: str, *, reviewer: str | None, body: Any = None, query: str | None = None) -> dict:
    claims = {"cognito:username": reviewer, "token_use": "id"} if reviewer else None
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": {"item": query} if query else None,
        "multiValueQueryStringParameters": {"item": [query]} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": "r-1",
            "stage": "api",
            "path": f"/api{path}",
            "httpMethod": method,
            "resourcePath": path,
            "identity": {"sourceIp": "127.0.0.1"},
            **({"authorizer": {"claims": claims}} if claims else {}),
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=LAKE)
        boto3.client("dynamodb").create_table(TableName=TABLE, **TABLE_SCHEMA)
        monkeypatch.setenv("LAKE_BUCKET", LAKE)
        monkeypatch.setenv("REVIEW_TABLE", TABLE)
        monkeypatch.setenv("SLUICE_USECASE_FILE", str(REPO / "usecases" / "telco_churn.toml"))
        monkeypatch.setenv("REVIEW_USER_POOL_CLIENT_ID", "page-client")
        monkeypatch.setenv("MODEL_PACKAGE_GROUP", "sluice-telco-churn")
        intake = importlib.import_module("functions.review_intake.handler")
        api = importlib.import_module("functions.review_api.handler")
        for cached in (intake.service, api.environment, api.api, api.cognito_url):
            cached.cache_clear()
        yield intake, api


def _call(api: Any, event: dict[str, Any]) -> tuple[int, str]:
    response = api.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], response["body"]


def test_a_reviewers_life_through_the_api(cloud: Any) -> None:
    intake, api = cloud
    # Given two routed predictions taken in from the review queue
    records = [{"messageId": "m1", "body": _review_message("req-1", [0.41, 0.52]), "attributes": {}}]
    assert intake.lambda_handler({"Records": records}, FakeLambdaContext()) == {"batchItemFailures": []}
    # When an anonymous request asks for the queue, Then 401
    assert _call(api, _api_event("GET", f"{BASE}/items", reviewer=None))[0] == 401
    # When ana asks for the queue, Then both items wait, with their reasons
    status, body = _call(api, _api_event("GET", f"{BASE}/items", reviewer="ana"))
    assert status == 200
    queue = json.loads(body)
    assert len(queue["items"]) == 2
    assert queue["items"][0]["reasons"] == ["in_band"]
    item_id = queue["next"]
    # When ana claims it and bo tries to decide it, Then 403: the claim is ana's
    assert _call(api, _api_event("POST", f"{BASE}/items/{item_id}/claim", reviewer="ana"))[0] == 200
    decision = {"label": "Yes", "taxonomy": "wrong_label", "note": "<script>alert('x')</script> churned"}
    assert _call(api, _api_event("POST", f"{BASE}/items/{item_id}/decision", reviewer="bo", body=decision))[0] == 403
    # When ana answers with a taxonomy value the use case does not declare, Then 400
    undeclared = {**decision, "taxonomy": "gut_feeling"}
    status, _ = _call(api, _api_event("POST", f"{BASE}/items/{item_id}/decision", reviewer="ana", body=undeclared))
    assert status == 400
    # When ana decides, Then 200; a second decision gets 409 (the first wins)
    assert _call(api, _api_event("POST", f"{BASE}/items/{item_id}/decision", reviewer="ana", body=decision))[0] == 200
    again = {**decision, "label": "No"}
    assert _call(api, _api_event("POST", f"{BASE}/items/{item_id}/decision", reviewer="ana", body=again))[0] == 409
    # Then the item's page shows the note as text, never as markup
    status, html = _call(api, _api_event("GET", BASE, reviewer="ana", query=item_id))
    assert status == 200
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; churned" in html
    # And the label is in the lake as feedback with its provenance: reviewer, reason, inclusion probability
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=LAKE, Prefix=f"feedback/{USECASE}/").get("Contents", [])]
    (key,) = keys
    document = json.loads(s3.get_object(Bucket=LAKE, Key=key)["Body"].read())
    assert document["label"] == "Yes"
    provenance = document[PROVENANCE]
    assert provenance["reviewers"] == ["ana"]
    assert provenance["reasons"] == ["in_band"]
    assert provenance["inclusion_probability"] == 1.0
    # And the stats count the decision
    status, body = _call(api, _api_event("GET", f"{BASE}/stats", reviewer="ana"))
    assert (status, json.loads(body)["decided"], json.loads(body)["queue_depth"]) == (200, 1, 1)


def test_the_sign_in_form_serves_no_data_and_the_page_needs_a_reviewer(cloud: Any) -> None:
    intake, api = cloud
    records = [{"messageId": "m1", "body": _review_message("req-2", [0.44]), "attributes": {}}]
    intake.lambda_handler({"Records": records}, FakeLambdaContext())
    # When the page is asked without a reviewer, Then 401
    assert _call(api, _api_event("GET", BASE, reviewer=None))[0] == 401
    # When the sign-in form is asked, Then it names the app client and no item
    status, html = _call(api, _api_event("GET", f"{BASE}/login", reviewer=None))
    assert status == 200
    assert "page-client" in html
    assert "InitiateAuth" in html
    assert "req-2" not in html
    # When a reviewer asks for the page, Then it lists the item with its reason
    status, html = _call(api, _api_event("GET", BASE, reviewer="ana"))
    assert status == 200
    assert "in_band" in html
