"""The score and prediction-log handlers under moto: a registered model, its deployment state, real ONNX."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.deployment.adapters import DeploymentStore
from shared.deployment.exceptions import ConcurrentUpdateError
from shared.deployment.state import DeploymentState, model_ref_from_package
from shared.scoring.prediction_log_lake import parse_message
from tests.fakes import FakeLambdaContext
from tests.scoring_model import TrainedModel, register_in_moto, trained_model

REPO = Path(__file__).resolve().parents[2]
LAKE, GROUP, USECASE = "sluice-lake", "sluice-telco-churn", "telco_churn"
DEPLOYMENTS, IDEMPOTENCY = "sluice-deployments", "sluice-idempotency"
RUN_ID = "run-1"


def api_event(
    method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None, request_id: str = "req-1"
) -> dict[str, Any]:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": "prod",
            "path": f"/prod{path}",
            "httpMethod": method,
            "resourcePath": "/{proxy+}",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body if isinstance(body, str) or body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return trained_model()


def _register(model: TrainedModel) -> dict[str, Any]:
    """Put the model in the lake and register it as SageMaker's registry would hold it."""
    package, metrics = register_in_moto(model, lake=LAKE, group=GROUP, run_id=RUN_ID)
    return {"package": package, "metrics": metrics}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, model: TrainedModel) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_TASK_ROOT": str(REPO),
        "SLUICE_USECASE_FILE": "usecases/telco_churn.toml",
        "DEPLOYMENT_TABLE": DEPLOYMENTS,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY,
        "LAKE_BUCKET": LAKE,
        "POWERTOOLS_SERVICE_NAME": "score",
        "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SAGEMAKER_ENDPOINT_NAME", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=DEPLOYMENTS,
            KeySchema=[{"AttributeName": "usecase", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "usecase", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName=IDEMPOTENCY,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("s3").create_bucket(Bucket=LAKE)
        sqs = boto3.client("sqs")
        queues = {
            "log": sqs.create_queue(QueueName="sluice-prediction-log")["QueueUrl"],
            "review": sqs.create_queue(QueueName="sluice-review")["QueueUrl"],
        }
        monkeypatch.setenv("PREDICTION_LOG_QUEUE_URL", queues["log"])
        monkeypatch.setenv("REVIEW_QUEUE_URL", queues["review"])
        yield {"queues": queues, **_register(model)}


def _deploy(aws: dict[str, Any]) -> DeploymentState:
    store = DeploymentStore(boto3.client("dynamodb"), DEPLOYMENTS)
    ref = model_ref_from_package(aws["package"], aws["metrics"])
    return store.put(DeploymentState(usecase=USECASE, champion=ref), expected_revision=0, updated_by="test")


def _score_handler() -> Any:
    from functions.score import handler

    handler.service.cache_clear()  # a fresh process: environment, clients and models built again
    return handler


def _call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = _score_handler_module().lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


_HANDLER: list[Any] = []


def _score_handler_module() -> Any:
    return _HANDLER[0]


@pytest.fixture
def call(aws: dict[str, Any]) -> Any:
    _HANDLER[:] = [_score_handler()]
    return _call


def _records(model: TrainedModel, count: int) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "churn"} for r in model.records[:count]]


def _messages(queue_url: str) -> list[dict[str, Any]]:
    sqs, found = boto3.client("sqs"), []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        found += batch


def _logged_lines(queue_url: str) -> list[dict[str, Any]]:
    """The prediction-log records on the queue, read back as the prediction-log function reads them."""
    return [json.loads(line.model_dump_json()) for m in _messages(queue_url) for line in parse_message(m["Body"])]


def test_the_deployment_state_is_written_conditionally(aws: dict[str, Any]) -> None:
    # Given a state written once
    store = DeploymentStore(boto3.client("dynamodb"), DEPLOYMENTS)
    written = _deploy(aws)
    # When it is read back
    read = store.get(USECASE)
    # Then it is the same, at revision 1, with the registry's threshold and sha256
    assert read == written
    assert read.revision == 1
    assert read.champion is not None
    assert (read.champion.threshold, read.champion.version) == (0.3, 1)
    # And a write from a stale revision is refused
    with pytest.raises(ConcurrentUpdateError):
        store.put(read.model_copy(update={"challenger_weight": 0.1}), expected_revision=0)
    assert store.put(read, expected_revision=1).revision == 2
    assert store.append_event(USECASE, {"kind": "promoted"}).startswith("event#")
    # And an unknown use case has the empty state
    assert store.get("other").champion is None


def test_one_record_is_scored_and_logged(aws: dict[str, Any], call: Any, model: TrainedModel) -> None:
    _deploy(aws)
    status, body = call(api_event("POST", f"/v1/{USECASE}/predict", {"record": _records(model, 1)[0]}))
    assert status == 200, body
    assert body["request_id"] == "req-1"
    (prediction,) = body["predictions"]
    assert (prediction["variant"], prediction["model_version"], prediction["threshold"]) == ("champion", 1, 0.3)
    assert prediction["label"] in ("Yes", "No")
    assert prediction["degraded"] is False
    (message,) = _messages(aws["queues"]["log"])
    logged = json.loads(message["Body"])
    assert (logged["request_id"], logged["served"], logged["variant"]) == ("req-1", True, "champion")


def test_a_batch_with_a_bad_record_scores_the_others(aws: dict[str, Any], call: Any, model: TrainedModel) -> None:
    _deploy(aws)
    records = _records(model, 3)
    records[2] = {**records[2], "monthly_charges": "lots"}
    status, body = call(api_event("POST", f"/v1/{USECASE}/predict", {"records": records}))
    assert status == 200
    assert [p["index"] for p in body["predictions"]] == [0, 1]
    assert body["errors"] == [
        {"index": 2, "errors": [{"field": "monthly_charges", "reason": "Input should be a valid number"}]}
    ]
    assert len(_logged_lines(aws["queues"]["log"])) == 2


def test_a_single_bad_record_is_422_with_field_reasons(aws: dict[str, Any], call: Any, model: TrainedModel) -> None:
    _deploy(aws)
    record = {**_records(model, 1)[0], "tenure": 500, "contract": "Forever"}
    status, body = call(api_event("POST", f"/v1/{USECASE}/predict", {"record": record}))
    assert status == 422
    assert {e["field"] for e in body["errors"][0]["errors"]} == {"tenure", "contract"}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/fraud/predict", {"record": {}}, 404),
        (f"/v1/{USECASE}/predict", "{not json", 400),
        (f"/v1/{USECASE}/predict", {"rows": []}, 400),
        (f"/v1/{USECASE}/predict", {"records": [{"rownames": 1}] * 1001}, 413),
        (f"/v1/{USECASE}/predict", {"records": []}, 400),
        (f"/v1/{USECASE}/predict", {"record": {}, "records": [{}]}, 400),
        (f"/v1/{USECASE}/feedback", "{not json", 400),
        (f"/v1/{USECASE}/feedback", {"labels": "Yes"}, 400),
        (f"/v1/{USECASE}/feedback", {"labels": [{"label": "Yes"}]}, 400),
    ],
)
def test_requests_are_refused_with_their_status(
    aws: dict[str, Any], call: Any, path: str, body: Any, status: int
) -> None:
    _deploy(aws)
    got, answer = call(api_event("POST", path, body))
    assert got == status, answer
    assert answer["message"]
    if status == 400:
        assert answer["errors"], "a malformed body says why, by field"


def test_no_champion_is_503(aws: dict[str, Any], call: Any, model: TrainedModel) -> None:
    status, body = call(api_event("POST", f"/v1/{USECASE}/predict", {"record": _records(model, 1)[0]}))
    assert status == 503
    assert "no model is deployed" in body["message"]


def test_the_openapi_document_describes_the_routes(aws: dict[str, Any], call: Any) -> None:
    status, document = call(api_event("GET", f"/v1/{USECASE}/openapi.json"))
    assert status == 200
    assert {"/v1/{usecase_name}/predict", "/v1/{usecase_name}/feedback"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    predict = document["paths"]["/v1/{usecase_name}/predict"]["post"]
    feedback = document["paths"]["/v1/{usecase_name}/feedback"]["post"]

    def ref(part: dict[str, Any]) -> str:
        return str(part["content"]["application/json"]["schema"]["$ref"]).rsplit("/", 1)[-1]

    # the bodies the routes take and give, each a schema of the document
    assert (ref(predict["requestBody"]), ref(feedback["requestBody"])) == ("PredictRequest", "FeedbackRequest")
    assert (ref(predict["responses"]["200"]), ref(feedback["responses"]["202"])) == (
        "PredictResponse",
        "FeedbackAccepted",
    )
    assert {ref(predict["responses"][code]) for code in ("400", "413", "422", "503")} == {"ErrorResponse"}
    # and a record is the contract's: its columns, types and bounds
    record = schemas["ScoringRecord"]["properties"]
    assert record["tenure"]["maximum"] == 120
    assert set(record["contract"]["enum"]) == {"Month-to-month", "One year", "Two year"}
    assert "churn" not in schemas["ScoringRecord"].get("required", [])


def test_feedback_is_accepted_once_per_item(aws: dict[str, Any], call: Any) -> None:
    labels = {"labels": [{"request_id": "req-1", "label": "Yes"}, {"entity_id": 7, "label": "No"}]}
    for _ in range(2):
        status, body = call(api_event("POST", f"/v1/{USECASE}/feedback", labels))
        assert (status, body) == (202, {"accepted": 2})
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=LAKE, Prefix="feedback/")["Contents"]]
    assert len(keys) == 2
    status, body = call(
        api_event("POST", f"/v1/{USECASE}/feedback", {"labels": [{"request_id": "x", "label": "Maybe"}]})
    )
    assert status == 422
    assert body["errors"][0]["errors"][0]["field"] == "label"


def test_a_retried_idempotency_key_returns_the_first_response_logged_once(
    aws: dict[str, Any], call: Any, model: TrainedModel
) -> None:
    _deploy(aws)
    body = {"records": _records(model, 2)}
    headers = {"Idempotency-Key": "order-77"}
    first = call(api_event("POST", f"/v1/{USECASE}/predict", body, headers=headers, request_id="req-a"))
    second = call(api_event("POST", f"/v1/{USECASE}/predict", body, headers=headers, request_id="req-b"))
    assert first == second
    assert first[1]["request_id"] == "req-a"
    assert len(_logged_lines(aws["queues"]["log"])) == 2
    # And without the key, the same body is a new request
    third = call(api_event("POST", f"/v1/{USECASE}/predict", body, request_id="req-c"))
    assert third[1]["request_id"] == "req-c"


def test_an_idempotency_key_sent_again_with_another_body_is_refused(
    aws: dict[str, Any], call: Any, model: TrainedModel
) -> None:
    # Given a request scored with an Idempotency-Key
    _deploy(aws)
    headers = {"Idempotency-Key": "order-78"}
    first = call(api_event("POST", f"/v1/{USECASE}/predict", {"records": _records(model, 2)}, headers=headers))
    assert first[0] == 200
    # When the same key comes with another body
    again = call(
        api_event("POST", f"/v1/{USECASE}/predict", {"records": _records(model, 3)}, headers=headers, request_id="r2")
    )
    # Then it is refused (409), not answered with the first request's scores
    assert again == (409, {"message": "this Idempotency-Key was used with another body", "errors": []})


def test_the_prediction_log_handler_writes_json_lines(aws: dict[str, Any], call: Any, model: TrainedModel) -> None:
    # Given two scored requests whose messages are on the queue (one delivered twice)
    _deploy(aws)
    call(api_event("POST", f"/v1/{USECASE}/predict", {"records": _records(model, 3)}, request_id="r1"))
    messages = _messages(aws["queues"]["log"])
    records = [
        {
            "messageId": m["MessageId"],
            "body": m["Body"],
            "receiptHandle": "h",
            "attributes": {},
            "eventSource": "aws:sqs",
        }
        for m in [*messages, messages[0]]
    ]
    records.append({"messageId": "bad", "body": "{}", "receiptHandle": "h", "attributes": {}, "eventSource": "aws:sqs"})
    from functions.prediction_log import handler

    handler.settings.cache_clear()
    handler.object_writer.cache_clear()
    # When the handler runs on the batch
    response = handler.lambda_handler({"Records": records}, FakeLambdaContext())
    # Then the bad message alone failed, and the lake holds each prediction once as JSON Lines
    assert response["batchItemFailures"] == [{"itemIdentifier": "bad"}]
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=LAKE, Prefix=f"predictions/{USECASE}/")["Contents"]]
    lines = [json.loads(x) for k in keys for x in s3.get_object(Bucket=LAKE, Key=k)["Body"].read().splitlines()]
    assert sorted(r["index"] for r in lines) == [0, 1, 2]
    assert all("/hour=" in k and k.endswith(".jsonl") for k in keys)


# --- bulk callers: the Open Inference Protocol (v2) infer route ------------------------------------------------------

INFER = f"/v2/models/{USECASE}/infer"
V2_TYPES = {"int": "INT64", "float": "FP64", "bool": "BOOL"}


def _infer_body(model: TrainedModel, records: list[dict[str, Any]]) -> dict[str, Any]:
    contract = model.usecase.contract
    names = [c.name for c in contract.columns if c.name in records[0]]
    return {
        "id": "bulk-1",
        "inputs": [
            {
                "name": name,
                "shape": [len(records)],
                "datatype": V2_TYPES.get(contract.column(name).type.value, "BYTES"),
                "data": [r.get(name) for r in records],
            }
            for name in names
        ],
    }


def test_a_v2_infer_request_is_scored_by_column_and_logged(aws: dict[str, Any], call: Any, model: TrainedModel) -> None:
    # Given a champion and 5 records sent as v2 columns
    _deploy(aws)
    records = _records(model, 5)
    # When they are sent to the v2 route
    status, body = call(api_event("POST", INFER, _infer_body(model, records)))
    # Then the answer is v2's: the model, the request's id, and one output per answer column over the 5 rows
    assert status == 200, body
    assert (body["model_name"], body["model_version"], body["id"]) == (USECASE, "1", "bulk-1")
    outputs = {output["name"]: output for output in body["outputs"]}
    assert set(outputs) == {"index", "entity_id", "score", "decision", "model_version", "variant"}
    assert all(output["shape"] == [5] for output in outputs.values())
    assert outputs["index"]["data"] == [0, 1, 2, 3, 4]
    assert outputs["entity_id"]["data"] == [r["rownames"] for r in records]
    assert set(outputs["decision"]["data"]) <= {"Yes", "No"}
    assert body["errors"] == []
    # And the same scores as the records route gives
    _, by_records = call(api_event("POST", f"/v1/{USECASE}/predict", {"records": records}, request_id="req-2"))
    assert outputs["score"]["data"] == [p["score"] for p in by_records["predictions"]]
    # And the predictions reach the prediction log
    assert len(_logged_lines(aws["queues"]["log"])) == 10


def test_a_v2_row_with_a_bad_value_is_refused_with_its_reason_and_the_others_scored(
    aws: dict[str, Any], call: Any, model: TrainedModel
) -> None:
    _deploy(aws)
    body = _infer_body(model, _records(model, 3))
    tenure = next(i for i in body["inputs"] if i["name"] == "tenure")
    tenure["data"][1] = 500
    status, answer = call(api_event("POST", INFER, body))
    assert status == 200, answer
    assert next(o for o in answer["outputs"] if o["name"] == "index")["data"] == [0, 2]
    assert [(e["index"], [f["field"] for f in e["errors"]]) for e in answer["errors"]] == [(1, ["tenure"])]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b["inputs"].pop(0), "required columns missing"),
        (lambda b: b["inputs"][1]["data"].pop(), "differ in length"),
        (lambda b: b["inputs"][1].update(shape=[7]), "shape"),
        (lambda b: b["inputs"][1].update(datatype="BYTES"), "datatype"),
        (lambda b: b["inputs"].append({**b["inputs"][1], "name": "colour"}), "not a contract column"),
        (lambda b: b["inputs"].append(b["inputs"][1]), "named twice"),
    ],
)
def test_a_malformed_v2_body_is_400_with_the_reason(
    aws: dict[str, Any], call: Any, model: TrainedModel, change: Any, reason: str
) -> None:
    _deploy(aws)
    body = _infer_body(model, _records(model, 3))
    change(body)
    status, answer = call(api_event("POST", INFER, body))
    assert status == 400, answer
    assert any(reason in error["reason"] for error in answer["errors"]), answer


def test_the_openapi_document_describes_the_v2_route(aws: dict[str, Any], call: Any) -> None:
    _, document = call(api_event("GET", f"/v1/{USECASE}/openapi.json"))
    infer = document["paths"]["/v2/models/{usecase_name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/InferRequest")
    assert infer["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/InferResponse")
    inputs = document["components"]["schemas"]["InferRequest"]["properties"]["inputs"]["items"]["oneOf"]
    tenure = next(i for i in inputs if i["properties"]["name"]["const"] == "tenure")
    assert "INT64" in tenure["properties"]["datatype"]["enum"]


def test_a_shadow_challenger_far_from_the_champion_routes_the_record_for_disagreement(
    aws: dict[str, Any], call: Any, model: TrainedModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # (the use case with a wide shadow time bound: the challenger's first load must not make it abandon the
    # shadow scores this test reads, on a loaded machine)
    text = (REPO / "usecases" / "telco_churn.toml").read_text()
    usecase_file = tmp_path / "telco_churn.toml"
    usecase_file.write_text(text.replace("[serving]\n", "[serving]\nshadow_timeout_ms = 5000\n", 1))
    monkeypatch.setenv("SLUICE_USECASE_FILE", str(usecase_file))
    # Given a champion (logistic regression) and a challenger scoring in shadow (a decision tree: far apart often)
    challenger = trained_model("decision_tree")
    ref = challenger.ref(version=2, run_id="run-2")
    boto3.client("s3").put_object(Bucket=LAKE, Key=ref.onnx_key, Body=challenger.onnx)
    state = _deploy(aws)
    DeploymentStore(boto3.client("dynamodb"), DEPLOYMENTS).put(
        state.model_copy(update={"challenger": ref, "challenger_weight": 0.0, "shadow": True, "stage": "shadow"}),
        expected_revision=state.revision,
        updated_by="test",
    )
    threshold = model.usecase.review.disagreement_threshold
    assert threshold is not None

    # When 200 customers are scored
    status, body = call(api_event("POST", f"/v1/{USECASE}/predict", {"records": _records(model, 200)}))
    assert status == 200, body

    # Then each served record whose shadow score is at least the threshold away is queued for disagreement,
    # with the challenger's score and probability 1, and no other record is
    lines = _logged_lines(aws["queues"]["log"])
    served = {line["index"]: line["score"] for line in lines if line["served"]}
    shadow = {line["index"]: line["score"] for line in lines if line["variant"] == "shadow"}
    assert set(served) == set(shadow) == set(range(200))
    apart = {index for index in served if abs(served[index] - shadow[index]) >= threshold}
    assert 0 < len(apart) < 200
    routing = {
        index: entry
        for message in _messages(aws["queues"]["review"])
        for document in [json.loads(message["Body"])]
        for index, entry in zip(document["index"], document["routing"], strict=True)
    }
    disagreeing = {index for index, entry in routing.items() if "disagreement" in entry["reasons"]}
    assert disagreeing == apart
    for index in disagreeing:
        assert routing[index]["challenger_score"] == pytest.approx(shadow[index])
        assert routing[index]["inclusion_probability"] == 1.0
