"""The promotion step and rollback functions under moto: a happy path, and alarms in canary, watch and idle."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.deployment.adapters import DeploymentStore
from shared.deployment.state import DeploymentState, ModelRef
from shared.lake import layout as lake
from shared.scoring.prediction_log_lake import PredictionLogRecord
from tests.fakes import FakeLambdaContext

REPO = Path(__file__).resolve().parents[2]
USECASE, LAKE, GROUP, TABLE = "telco_churn", "sluice-lake", "sluice-telco-churn", "sluice-deployments"
CANDIDATE_ALARM = "sluice-telco-churn-candidate-error-rate"
WATCH_ALARM = "sluice-telco-churn-candidate-watch-error-rate"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two small ONNX models of the Telco sample (C = 1.0 and C = 0.3) with their metrics, and holdout records."""
    from shared.usecase.settings import ModelSettings, load_usecase
    from tests.unit.training_sample import telco_channel
    from training.train import evaluate_model, export, load_training_data, train_model

    usecase = load_usecase(REPO / "usecases" / "telco_churn.toml")
    channel, _ = telco_channel(usecase, tmp_path_factory.mktemp("telco"))
    data = load_training_data(channel, usecase)
    models = {}
    for run_id, c in (("run-1", 1.0), ("run-2", 0.3)):
        settings = ModelSettings.model_validate(
            {**usecase.model.model_dump(), "hyperparameters": {"C": c, "max_iter": 1000}}
        )
        model = train_model(data, usecase, settings)
        metrics = evaluate_model(model, data, usecase, settings)
        metrics |= {"auc": metrics["holdout"]["roc_auc"], "ece": metrics["holdout"]["ece"], "parity_ok": True}
        models[run_id] = {"onnx": export(model, data, usecase).model, "metrics": metrics}
    features = [c.name for c in usecase.contract.features]
    holdout = data.holdout[features].astype(object).where(data.holdout[features].notna(), None)
    records = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in holdout.to_dict("records")
    ]
    return {"models": models, "records": records}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, trained: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_TASK_ROOT": str(REPO),
        "SLUICE_USECASE_FILE": "usecases/telco_churn.toml",
        "DEPLOYMENT_TABLE": TABLE,
        "LAKE_BUCKET": LAKE,
        "MODEL_PACKAGE_GROUP": GROUP,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "promotion",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "usecase", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "usecase", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=LAKE)
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        refs = {}
        for run_id, model in trained["models"].items():
            onnx_key = lake.model_file_key(USECASE, run_id, "model.onnx")
            metrics_key = lake.model_file_key(USECASE, run_id, "metrics.json")
            s3.put_object(Bucket=LAKE, Key=onnx_key, Body=model["onnx"])
            s3.put_object(Bucket=LAKE, Key=metrics_key, Body=json.dumps(model["metrics"], default=str).encode())
            sha = hashlib.sha256(model["onnx"]).hexdigest()
            arn = sagemaker.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus="PendingManualApproval",
                ModelMetrics={
                    "ModelQuality": {
                        "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{LAKE}/{metrics_key}"}
                    }
                },
                CustomerMetadataProperties={"onnx_sha256": sha, "onnx_s3_key": onnx_key, "run_id": run_id},
            )["ModelPackageArn"]
            refs[run_id] = ModelRef(
                version=int(arn.rsplit("/", 1)[1]),
                package_arn=arn,
                run_id=run_id,
                onnx_key=onnx_key,
                onnx_sha256=sha,
                threshold=float(model["metrics"]["threshold"]["threshold"]),
            )
        log = "\n".join(
            PredictionLogRecord(
                usecase=USECASE,
                request_id=f"r{i}",
                features=r,
                score=0.5,
                threshold=0.5,
                model_version=1,
                variant="champion",
                served=True,
                time=datetime.now(UTC),
            ).model_dump_json()
            for i, r in enumerate(trained["records"])
        )
        s3.put_object(Bucket=LAKE, Key=lake.prediction_log_key(USECASE, at=datetime.now(UTC), object_id="a"), Body=log)
        topic = boto3.client("sns").create_topic(Name="sluice-alerts")["TopicArn"]
        queue = boto3.client("sqs").create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
        monkeypatch.setenv("ALARM_TOPIC_ARN", topic)
        DeploymentStore(dynamodb, TABLE).put(
            DeploymentState(usecase=USECASE, champion=refs["run-1"]), expected_revision=0
        )
        yield {"refs": refs, "queue": queue, "tmp": tmp_path}


def _usecase_without_watch(directory: Path) -> Path:
    text = (REPO / "usecases" / "telco_churn.toml").read_text(encoding="utf-8")
    path = directory / "usecase.toml"
    watch = re.sub(r"(?m)^watch_window_seconds = \d+$", "watch_window_seconds = 0", text)
    assert watch != text, "the use case declares no watch window to shorten"
    path.write_text(watch, encoding="utf-8")
    return path


def _handler(name: str) -> Any:
    if name == "step":
        from functions.promotion_step import handler
    else:
        from functions.rollback import handler  # type: ignore[no-redef]
    handler.service.cache_clear()
    return handler


def _step(action: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = _handler("step").lambda_handler({"action": action, **fields}, FakeLambdaContext())
    return result


def _alarm(name: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    detail = {"alarmName": name, "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": now}}
    return {"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": detail}


def _state() -> DeploymentState:
    return DeploymentStore(boto3.client("dynamodb"), TABLE).get(USECASE)


def _approval(arn: str) -> tuple[str, str]:
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)
    return package["ModelApprovalStatus"], package.get("ApprovalDescription", "")


def _messages(queue: str) -> list[str]:
    found = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["Message"] for m in found]


def _to_canary(candidate: ModelRef) -> None:
    assert _step("prepare", model_package_arn=candidate.package_arn, requested_by="ana")["verdict"] == "pass"
    _step("start_shadow")
    _step("set_weight", step=0)


def test_the_happy_path_promotes_the_candidate(aws: dict[str, Any]) -> None:
    champion, candidate = aws["refs"]["run-1"], aws["refs"]["run-2"]
    # Given version 1 serving; when version 2 is prepared
    prepared = _step("prepare", model_package_arn=candidate.package_arn, requested_by="ana", execution_arn="")
    assert prepared["candidate_version"] == candidate.version
    assert prepared["champion_version"] == champion.version
    # Then a second promotion is refused
    from shared.promotion.exceptions import PromotionInProgressError

    with pytest.raises(PromotionInProgressError):
        _step("prepare", model_package_arn=candidate.package_arn, requested_by="bo")
    # When the offline gate and the replay run on the recorded traffic
    gate = _step("offline_gate")
    assert gate["verdict"] == "pass", gate["reason"]
    assert gate["figures"]["latency.value"] < 50
    replayed = _step("replay")
    assert replayed["verdict"] == "pass", replayed["reason"]
    assert replayed["samples"] > 500
    # And shadow, the canary steps and promotion follow
    assert _step("start_shadow")["bake_seconds"] == 20
    assert _state().shadow is True
    weight = _step("set_weight", step=0)
    assert (weight["weight"], weight["last_step"], weight["next_step"]) == (0.01, False, 1)
    assert (_state().challenger_weight, _state().shadow) == (0.01, False)
    promoted = _step("promote")
    # Then version 2 is champion, version 1 is kept, and the package is approved
    state = _state()
    assert (state.champion, state.previous_champion, state.stage) == (candidate, champion, "watch")
    assert promoted["watch_seconds"] == 30
    assert _approval(candidate.package_arn)[0] == "Approved"
    # When the promotion finishes, the timeline is written and the watch goes on
    finished = _step("finish")
    assert finished["verdict"] == "pass"
    assert _state().stage == "watch"
    page = boto3.client("s3").get_object(Bucket=LAKE, Key=finished["timeline_key"])["Body"].read().decode()
    assert page.count('class="stage-boundary"') >= 4
    # And the scheduled check leaves an unfinished watch alone
    assert _step("end_watch")["ended"] is False


def test_the_scheduled_check_ends_a_watch_that_is_over(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_USECASE_FILE", str(_usecase_without_watch(aws["tmp"])))
    _to_canary(aws["refs"]["run-2"])
    _step("promote")
    assert _step("end_watch")["ended"] is True
    assert _state().stage == "idle"
    assert _state().champion == aws["refs"]["run-2"]


def test_rollback_of_another_execution_leaves_the_running_promotion_alone(aws: dict[str, Any]) -> None:
    candidate = aws["refs"]["run-2"]
    _step(
        "prepare", model_package_arn=candidate.package_arn, requested_by="ana", execution_arn="arn:x:execution:sm:one"
    )
    result = _step("rollback", reason="refused", execution_arn="arn:x:execution:sm:two")
    assert result["already"] is True
    assert _state().stage == "offline_gate"


def test_analysis_without_traffic_is_inconclusive_and_counts_a_bake(aws: dict[str, Any]) -> None:
    _to_canary(aws["refs"]["run-2"])
    result = _step("analyze", stage="canary")
    assert (result["verdict"], result["next"], result["extensions"]) == ("inconclusive", "bake_again", 1)


def test_an_alarm_during_canary_rolls_back_to_the_champion(aws: dict[str, Any]) -> None:
    champion, candidate = aws["refs"]["run-1"], aws["refs"]["run-2"]
    _to_canary(candidate)
    # When the candidate's error-rate alarm fires
    response = _handler("rollback").lambda_handler(_alarm(CANDIDATE_ALARM), FakeLambdaContext())
    # Then traffic is back on the champion, the package is rejected with the alarm, and SNS says so
    assert response["action"] == "rolled_back"
    state = _state()
    assert (state.champion, state.challenger, state.challenger_weight, state.stage) == (champion, None, 0.0, "idle")
    status, description = _approval(candidate.package_arn)
    assert status == "Rejected"
    assert CANDIDATE_ALARM in description
    assert any("rolled back" in m and CANDIDATE_ALARM in m for m in _messages(aws["queue"]))
    # And the same event delivered again changes nothing
    again = _handler("rollback").lambda_handler(_alarm(CANDIDATE_ALARM), FakeLambdaContext())
    assert again["action"] == "ignored"
    assert _state().revision == state.revision


def test_an_alarm_during_the_watch_window_brings_the_previous_champion_back(aws: dict[str, Any]) -> None:
    champion, candidate = aws["refs"]["run-1"], aws["refs"]["run-2"]
    _to_canary(candidate)
    _step("promote")
    response = _handler("rollback").lambda_handler(_alarm(WATCH_ALARM), FakeLambdaContext())
    assert response["action"] == "rolled_back_to_previous"
    state = _state()
    assert (state.champion, state.previous_champion, state.stage) == (champion, None, "idle")
    assert _approval(candidate.package_arn)[0] == "Rejected"


def test_an_alarm_outside_a_promotion_changes_nothing(aws: dict[str, Any]) -> None:
    before = _state()
    response = _handler("rollback").lambda_handler(_alarm(WATCH_ALARM), FakeLambdaContext())
    assert response["action"] == "ignored"
    assert _state() == before


def test_a_watch_alarm_during_canary_is_about_the_champion_and_ignored(aws: dict[str, Any]) -> None:
    _to_canary(aws["refs"]["run-2"])
    response = _handler("rollback").lambda_handler(_alarm(WATCH_ALARM), FakeLambdaContext())
    assert response["action"] == "ignored"
    assert _state().stage == "canary"


def test_rollback_step_after_a_failed_gate_rejects_the_candidate(aws: dict[str, Any]) -> None:
    candidate = aws["refs"]["run-2"]
    _step("prepare", model_package_arn=candidate.package_arn, requested_by="ana")
    result = _step("rollback", error={"Error": "GateFailed", "Cause": "AUC dropped"})
    assert result["verdict"] == "fail"
    assert _state().stage == "idle"
    assert _approval(candidate.package_arn) == ("Rejected", "GateFailed: AUC dropped")
    assert _step("rollback", reason="again")["already"] is True


def test_rollback_step_without_a_cause_still_rolls_back(aws: dict[str, Any]) -> None:
    # Given a promotion in canary, and a failure that reached the Catch without a cause
    _to_canary(aws["refs"]["run-2"])
    # When the rollback step gets "reason": null
    result = _step("rollback", reason=None, error={"Error": "PromotionAborted", "Cause": None})
    # Then it rolls back all the same, with the error as the reason
    assert result["verdict"] == "fail"
    assert "PromotionAborted" in result["reason"]
    assert _state().challenger is None


def test_a_step_in_flight_never_writes_running_over_a_rolled_back_promotion(aws: dict[str, Any]) -> None:
    from shared.promotion.adapters import PromotionStore
    from shared.promotion.exceptions import PromotionEndedError
    from shared.promotion.transitions import Promotion, PromotionOutcome

    # Given a running promotion that a step has read, and an alarm that then rolled it back
    store = PromotionStore(boto3.client("dynamodb"), TABLE)
    now = datetime.now(UTC)
    candidate = aws["refs"]["run-2"]
    running = Promotion(
        usecase=USECASE, candidate=candidate, execution_arn="arn:exec:one", started_at=now, stage_started_at=now
    )
    store.put(running)
    read_by_the_step = store.get(USECASE)
    assert read_by_the_step is not None
    store.put(running.model_copy(update={"outcome": PromotionOutcome.ROLLED_BACK, "finished_at": now}))
    # When the step writes its (running) update of that record
    with pytest.raises(PromotionEndedError, match="has ended meanwhile"):
        store.put(read_by_the_step.model_copy(update={"extensions": 1}))
    # Then the record stays rolled back; and a new execution's promotion may start over it
    assert store.get(USECASE).outcome is PromotionOutcome.ROLLED_BACK  # type: ignore[union-attr]
    store.put(running.model_copy(update={"execution_arn": "arn:exec:two"}))
    assert store.get(USECASE).execution_arn == "arn:exec:two"  # type: ignore[union-attr]
