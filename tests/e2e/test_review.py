"""Human review on the embedded cloud, driven as reviewers and operators do: scored traffic routes items to the
review queue for a stated reason (inside the band; a random audit slice); a reviewer, a Cognito user an
administrator created, signs in on the page in a real browser (chromium), claims and decides an item there with a
note holding markup (shown as text); the label reaches the lake as feedback with its provenance. Anonymous calls to
the page's data routes answer 401; a second decision 409. Two more decisions through the API, then the monitor
(started with the CLI) counts the three reviewed labels in its report, each with its weight 1/P (an audit item at
P = 0.2 counts 5). A segment under a monitoring alert routes its traffic (reason ``segment_alert``): the alert is
planted in the monitor's report (see the test). Last, a shadow challenger that truly disagrees (reason
``disagreement``): the champion's ONNX with its two probability columns swapped (it scores ``1 - p``; a second
trained version would score as the champion does, training being seeded), registered through the SageMaker API and
put in shadow through the deployment state; the champion serves alone again after it.

Its own cloud (the Telco use case with a wide audit rate, so that both reasons show in a small traffic, and a shadow
time bound wide enough that the challenger's first load never makes it abandon a score).

Figures (printed; run with ``-s``): each report window's labels, weighted labels and join counts.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.demo.candidates import register_copy, swapped
from local.demo.sample_data import load_sample_rows
from local.demo.segment_shift import logged_lines, served_lines, typed_record
from local.launcher import ROOT, RunningCloud, launch
from shared.deployment.adapters import DeploymentStore
from shared.lake import layout as lake
from shared.monitoring.types import SEGMENT_DEGRADATION, Violation
from shared.review.adapters import DOCUMENT
from shared.scoring.feedback import PROVENANCE
from shared.usecase.settings import UseCase, load_usecase
from tests.e2e.conftest import ingest_sample, model_ref, run_cli, train
from tests.e2e.test_scoring import api_key

pytestmark = pytest.mark.e2e

REVIEWER, PASSWORD = "ana", "Reviewer-pass-2026!"
NOTE = "<script>document.title='owned'</script> churned last week"
TRAFFIC = 300
ALERTED = "contract=Month-to-month"
SHADOWED = 200
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def usecase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("usecases") / "telco_churn.toml"
    text = (ROOT / "usecases" / "telco_churn.toml").read_text()
    text = text.replace("audit_rate = 0.02", "audit_rate = 0.2")
    path.write_text(text.replace("[serving]\n", "[serving]\nshadow_timeout_ms = 5000\n"))
    return path


@pytest.fixture(scope="module")
def review_usecase(usecase_file: Path) -> UseCase:
    return load_usecase(usecase_file)


@pytest.fixture(scope="module")
def review_cloud(usecase_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    workdir = tmp_path_factory.mktemp("review-cloud")
    running = launch(usecase=usecase_file, outputs_file=workdir / "outputs.json", log_file=workdir / "cloud.log")
    try:
        yield running
    finally:
        code = running.stop()
        if FIGURES:
            print("\nreview figures:", json.dumps(FIGURES, indent=2, default=str))
        assert code == 0, f"the embedded cloud did not stop cleanly ({code}):\n{running.log_file.read_text()[-3000:]}"


def _http(url: str, *, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET", headers={"Content-Type": "application/json"}
    )
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw.startswith(b"{") else raw.decode()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def routed(review_cloud: RunningCloud, review_usecase: UseCase, usecase_file: Path) -> list[dict[str, Any]]:
    """A champion, scored traffic, and the items the review queue took in."""
    ingest_sample(review_cloud, review_usecase, "e2e/review.csv")
    assert train(review_cloud, f"e2e-review-{int(time.time())}")["status"] == "SUCCEEDED"
    deployed = run_cli(review_cloud, "deploy", "1", usecase=usecase_file)
    assert deployed.returncode == 0, deployed.stderr
    time.sleep(review_usecase.serving.deployment_cache_seconds + 1)
    rows = load_sample_rows(review_usecase)[:TRAFFIC]
    records = [typed_record(review_usecase, row) for row in rows]
    url = review_cloud.stack_outputs["ApiUrl"] + f"v1/{review_usecase.name}/predict"
    for start in range(0, len(records), 100):
        status, _ = _http(
            url, body={"records": records[start : start + 100]}, headers={"x-api-key": api_key(review_cloud)}
        )
        assert status == 200
    table = review_cloud.client("dynamodb")
    deadline = time.monotonic() + 120
    while True:
        items = table.scan(TableName=review_cloud.stack_outputs["ReviewTableName"])["Items"]
        reasons = {r for item in items for r in json.loads(item[DOCUMENT]["S"])["reasons"]} if items else set()
        if {"in_band", "audit"} <= reasons or time.monotonic() > deadline:
            break
        time.sleep(2.0)
    return [json.loads(item[DOCUMENT]["S"]) for item in items]


@pytest.fixture(scope="module")
def reviewer(review_cloud: RunningCloud) -> str:
    cognito = review_cloud.client("cognito-idp")
    pool = review_cloud.stack_outputs["ReviewUserPoolId"]
    cognito.admin_create_user(UserPoolId=pool, Username=REVIEWER, TemporaryPassword="Temporary-pass-1!")
    cognito.admin_set_user_password(UserPoolId=pool, Username=REVIEWER, Password=PASSWORD, Permanent=True)
    return REVIEWER


def test_items_are_routed_with_each_reason(routed: list[dict[str, Any]]) -> None:
    reasons = {reason for item in routed for reason in item["reasons"]}
    assert {"in_band", "audit"} <= reasons, reasons
    audited = [item for item in routed if item["reasons"] == ["audit"]]
    assert all(item["inclusion_probability"] == pytest.approx(0.2) for item in audited)


def test_anonymous_calls_to_the_pages_data_routes_answer_401(
    review_cloud: RunningCloud, review_usecase: UseCase, routed: list[dict[str, Any]]
) -> None:
    base = review_cloud.stack_outputs["ApiUrl"] + f"v1/{review_usecase.name}/review"
    for path in ("", "/items", f"/items/{routed[0]['item_id']}", "/stats"):
        assert _http(base + path) == (401, {"message": "Unauthorized"}), path
    assert _http(base + "/login")[0] == 200


def test_a_reviewer_signs_in_claims_and_decides_in_the_browser(
    review_cloud: RunningCloud, review_usecase: UseCase, routed: list[dict[str, Any]], reviewer: str, page: Any
) -> None:
    base = review_cloud.stack_outputs["ApiUrl"] + f"v1/{review_usecase.name}/review"
    # When ana signs in on the page
    page.goto(base + "/login")
    page.fill("input[name=username]", reviewer)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Review queue")
    assert page.locator("text=Signed in as").count() == 1
    # And opens the first item, and decides it with a note holding markup
    page.locator("a[data-go]").first.click()
    page.wait_for_selector("form[data-item]")
    item_id = page.get_attribute("form[data-item]", "data-item")
    page.select_option("select[name=label]", "Yes")
    page.select_option("select[name=taxonomy]", "wrong_label")
    page.fill("textarea[name=note]", NOTE)
    page.click("button[type=submit]")
    page.wait_for_selector(f"text=decided: {item_id}")
    # Then the page, reloaded, shows the note as text (the script never ran)
    page.evaluate("(url) => go(url)", f"{base}?item={item_id}")
    page.wait_for_selector("text=churned last week")
    assert page.title() != "owned"
    assert "<script>document.title" in page.locator("q").first.inner_text()
    # And the label is in the lake as feedback with its provenance
    s3, bucket = review_cloud.client("s3"), review_cloud.stack_outputs["LakeBucketName"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"feedback/{review_usecase.name}/")["Contents"]]
    documents = [json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys]
    reviewed = [d for d in documents if PROVENANCE in d]
    assert len(reviewed) == 1
    assert reviewed[0][PROVENANCE]["reviewers"] == [reviewer]
    assert reviewed[0]["label"] == "Yes"
    # And a second decision on the item is refused with 409
    again = {"label": "No", "taxonomy": "correct", "note": ""}
    status, _ = _http(f"{base}/items/{item_id}/decision", body=again, headers={"Authorization": id_token(review_cloud)})
    assert status == 409


def id_token(cloud: RunningCloud) -> str:
    """The reviewer's Cognito ID token (what the page keeps after sign-in)."""
    return cloud.client("cognito-idp").initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId=cloud.stack_outputs["ReviewUserPoolClientId"],
        AuthParameters={"USERNAME": REVIEWER, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["IdToken"]


def review_items(cloud: RunningCloud) -> list[dict[str, Any]]:
    table = cloud.client("dynamodb")
    pages = table.get_paginator("scan").paginate(TableName=cloud.stack_outputs["ReviewTableName"])
    return [json.loads(item[DOCUMENT]["S"]) for page in pages for item in page["Items"]]


def test_the_monitors_next_report_counts_the_reviewed_labels_with_their_weights(
    review_cloud: RunningCloud,
    review_usecase: UseCase,
    usecase_file: Path,
    routed: list[dict[str, Any]],
    reviewer: str,
) -> None:
    # Given the browser's decision and two more through the API: an item only the audit slice picked (P = 0.2)
    # and one inside the band (P = 1)
    base = review_cloud.stack_outputs["ApiUrl"] + f"v1/{review_usecase.name}/review"
    auth = {"Authorization": id_token(review_cloud)}
    open_items = [item for item in review_items(review_cloud) if item["state"] == "open"]
    audited = next(item for item in open_items if item["reasons"] == ["audit"])
    in_band = next(item for item in open_items if "in_band" in item["reasons"])
    for item, label in ((audited, "No"), (in_band, "Yes")):
        assert _http(f"{base}/items/{item['item_id']}/claim", body={}, headers=auth)[0] == 200
        decision = {"label": label, "taxonomy": "correct", "note": ""}
        status, answer = _http(f"{base}/items/{item['item_id']}/decision", body=decision, headers=auth)
        assert status == 200, answer
    decided = [item for item in review_items(review_cloud) if item["state"] == "decided"]
    assert len(decided) == 3
    weights = sum(1.0 / item["inclusion_probability"] for item in decided)
    assert weights >= 1 + 1 + 5 - 1e-9  # the audit item weighs 5; the browser's one 1 or 5

    # And the scored traffic in the prediction log (its writer flushes in batches)
    s3, bucket = review_cloud.client("s3"), review_cloud.stack_outputs["LakeBucketName"]
    request_ids = sorted({item["request_id"] for item in routed})
    deadline = time.monotonic() + 120
    while served_lines(s3, bucket, lake.prediction_log_prefix(review_usecase.name), request_ids) < TRAFFIC:
        assert time.monotonic() < deadline, "the scored traffic did not all reach the prediction log"
        time.sleep(2.0)

    # When the monitor runs, as an operator starts it
    result = run_cli(review_cloud, "monitor", "--run", usecase=usecase_file)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"

    # Then every window of its report counts the three reviewed labels, and weighted, Σ 1/P of them
    latest = json.loads(s3.get_object(Bucket=bucket, Key=lake.latest_report_key(review_usecase.name))["Body"].read())
    report = json.loads(s3.get_object(Bucket=bucket, Key=latest["report_json_key"])["Body"].read())
    FIGURES["report_windows"] = [
        {k: w[k] for k in ("window", "labels", "labels_weighted", "joined")} for w in report["windows"]
    ]
    for window in report["windows"]:
        assert window["labels"] == {"1": 3}, window
        assert window["labels_weighted"]["1"] == pytest.approx(weights), window


def test_a_segment_under_a_monitoring_alert_routes_its_traffic(
    review_cloud: RunningCloud, review_usecase: UseCase, routed: list[dict[str, Any]]
) -> None:
    # Given the monitor's latest report with one segment under alert. Planted, honestly: the monitor's own report
    # with a SEGMENT_DEGRADATION violation added, written to the lake under a new run as the monitor writes it
    # (this cloud's traffic is too small and undrifted for the real monitor to alert; tests/e2e/test_monitoring.py
    # shows the real monitor raising this alert on planted drift)
    s3, bucket = review_cloud.client("s3"), review_cloud.stack_outputs["LakeBucketName"]
    name = review_usecase.name
    latest = json.loads(s3.get_object(Bucket=bucket, Key=lake.latest_report_key(name))["Body"].read())
    report = json.loads(s3.get_object(Bucket=bucket, Key=latest["report_json_key"])["Body"].read())
    violation = Violation(
        feature_name="auc",
        constraint_check_type=SEGMENT_DEGRADATION,
        description=f"AUC fell in {ALERTED} (planted by the test)",
        model_version="1",
        segment=ALERTED,
        window=report["windows"][0]["window"],
        metric="auc",
        n=500,
        effect=-0.2,
        interval=(-0.3, -0.1),
        p_value=0.0001,
        q_value=0.001,
    )
    report["violations"].append(violation.model_dump(mode="json"))
    run_id = "e2e-planted-alert"
    report_key = lake.report_json_key(name, run_id)
    s3.put_object(Bucket=bucket, Key=report_key, Body=json.dumps(report).encode())
    pointer = {**latest, "run_id": run_id, "report_json_key": report_key, "violations": len(report["violations"])}
    s3.put_object(Bucket=bucket, Key=lake.latest_report_key(name), Body=json.dumps(pointer).encode())
    time.sleep(review_usecase.serving.deployment_cache_seconds + 1)  # the score function re-reads it within this

    # When more traffic is scored, Month-to-month customers among it
    rows = load_sample_rows(review_usecase)[TRAFFIC : TRAFFIC + 100]
    records = [typed_record(review_usecase, row) for row in rows]
    month_to_month = sum(record["contract"] == "Month-to-month" for record in records)
    assert month_to_month > 10
    url = review_cloud.stack_outputs["ApiUrl"] + f"v1/{name}/predict"
    status, _ = _http(url, body={"records": records}, headers={"x-api-key": api_key(review_cloud)})
    assert status == 200

    # Then those customers' predictions are in the queue for that reason, with probability 1 and served first
    deadline = time.monotonic() + 120
    while len(alerted := [i for i in review_items(review_cloud) if "segment_alert" in i["reasons"]]) < month_to_month:
        assert time.monotonic() < deadline, f"{len(alerted)} of {month_to_month} routed for the alert"
        time.sleep(2.0)
    assert len(alerted) == month_to_month
    assert all(item["inclusion_probability"] == 1.0 and item["priority"] == 0 for item in alerted)


def test_a_shadow_challenger_that_disagrees_routes_exactly_the_records_far_apart(
    review_cloud: RunningCloud, review_usecase: UseCase, routed: list[dict[str, Any]]
) -> None:
    # Given a challenger that scores 1 - p where the champion scores p: the champion's ONNX from the lake with its
    # two probability columns swapped, registered through the SageMaker API, and put in shadow through the
    # deployment state as an operator's tool would
    outputs, s3 = review_cloud.stack_outputs, review_cloud.client("s3")
    bucket, name = outputs["LakeBucketName"], review_usecase.name
    threshold = review_usecase.review.disagreement_threshold
    assert threshold is not None
    store = DeploymentStore(review_cloud.client("dynamodb"), outputs["DeploymentTableName"])
    state = store.get(name)
    champion = state.champion
    assert champion is not None
    champion_onnx = s3.get_object(Bucket=bucket, Key=champion.onnx_key)["Body"].read()
    package = register_copy(
        sagemaker=review_cloud.client("sagemaker"),
        s3=s3,
        source_package_arn=champion.package_arn,
        onnx_model=swapped(champion_onnx),
        run_id=f"e2e-swapped-{int(time.time())}",
        description="the champion with its two probability columns swapped (e2e: a challenger that disagrees)",
    )
    challenger = model_ref(review_cloud, package)
    assert challenger.version != champion.version
    in_shadow = {"challenger": challenger, "challenger_weight": 0.0, "shadow": True, "stage": "shadow"}
    store.put(
        state.model_copy(update=in_shadow),
        expected_revision=state.revision,
        updated_by="e2e",
    )
    time.sleep(review_usecase.serving.deployment_cache_seconds + 1)  # the score function re-reads it within this
    try:
        # When more customers are scored
        rows = load_sample_rows(review_usecase)[TRAFFIC + 100 : TRAFFIC + 100 + SHADOWED]
        records = [typed_record(review_usecase, row) for row in rows]
        url = outputs["ApiUrl"] + f"v1/{name}/predict"
        status, body = _http(url, body={"records": records}, headers={"x-api-key": api_key(review_cloud)})
        assert status == 200, body
        assert {p["variant"] for p in body["predictions"]} == {"champion"}
        request_id = body["request_id"]

        # Then the prediction log holds each record's champion score and its shadow score, 1 - p of the champion's
        deadline = time.monotonic() + 120
        while True:
            lines = logged_lines(s3, bucket, lake.prediction_log_prefix(name), [request_id])
            served = {line["index"]: line["score"] for line in lines if line["served"]}
            shadow = {line["index"]: line["score"] for line in lines if line["variant"] == "shadow"}
            if len(served) == len(shadow) == SHADOWED or time.monotonic() > deadline:
                break
            time.sleep(2.0)
        assert set(served) == set(shadow) == set(range(SHADOWED)), (len(served), len(shadow))
        for index, score in served.items():
            assert shadow[index] == pytest.approx(1.0 - score, abs=1e-5)
        apart = {index for index in served if abs(served[index] - shadow[index]) >= threshold}
        FIGURES["disagreement"] = {"records": SHADOWED, "apart": len(apart), "threshold": threshold}
        assert 0 < len(apart) < SHADOWED

        # And exactly those at least the threshold apart are queued for disagreement, at P = 1, with the
        # challenger's score on the item
        deadline = time.monotonic() + 120
        while True:
            items = [i for i in review_items(review_cloud) if i["request_id"] == request_id]
            disagreeing = {i["index"]: i for i in items if "disagreement" in i["reasons"]}
            if len(disagreeing) >= len(apart) or time.monotonic() > deadline:
                break
            time.sleep(2.0)
        assert set(disagreeing) == apart
        for index, item in disagreeing.items():
            assert item["inclusion_probability"] == 1.0
            assert item["priority"] <= 1  # disagreement, or a segment under the planted alert
            assert item["score"] == pytest.approx(served[index])
            assert item["challenger_score"] == pytest.approx(shadow[index])
    finally:
        # Finally the champion serves alone again (for whatever runs after)
        state = store.get(name)
        store.put(
            state.model_copy(update={"challenger": None, "shadow": False, "stage": "idle"}),
            expected_revision=state.revision,
            updated_by="e2e",
        )
