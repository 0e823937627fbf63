"""The platform CLI's promotion commands under moto: promote, rollback, approve / abort, status.

The stack is what the CLI reads from an outputs file: the deployment table, the lake with two
versions' metrics.json, the model package group, the alarm topic and a promotion state machine
(a small one that succeeds or fails at once, run by moto's Step Functions interpreter).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cli.__main__ import main, parser
from shared.deployment.adapters import DeploymentStore
from shared.deployment.state import DeploymentState, ModelRef
from shared.lake import layout as lake
from shared.promotion.adapters import PromotionStore
from shared.promotion.service import build_service, cli_command

REPO = Path(__file__).resolve().parents[2]
USECASE_FILE = REPO / "usecases" / "telco_churn.toml"
USECASE, LAKE, GROUP, TABLE = "telco_churn", "sluice-lake", "sluice-telco-churn", "sluice-deployments"
STACK = "Sluice-telco-churn"
SUCCEEDS = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
FAILS = {
    "StartAt": "RolledBack",
    "States": {"RolledBack": {"Type": "Fail", "Error": "CandidateRejected", "Cause": "x"}},
}
USER = f"cli:{getpass.getuser()}"


def _ref(sagemaker: Any, s3: Any, run_id: str) -> ModelRef:
    metrics_key = lake.model_file_key(USECASE, run_id, "metrics.json")
    onnx_key = lake.model_file_key(USECASE, run_id, "model.onnx")
    s3.put_object(
        Bucket=LAKE,
        Key=metrics_key,
        Body=json.dumps({"auc": 0.84, "ece": 0.02, "threshold": {"threshold": 0.3}}).encode(),
    )
    sha = hashlib.sha256(run_id.encode()).hexdigest()
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        ModelMetrics={
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{LAKE}/{metrics_key}"}}
        },
        CustomerMetadataProperties={"onnx_sha256": sha, "onnx_s3_key": onnx_key, "run_id": run_id},
    )["ModelPackageArn"]
    return ModelRef(
        version=int(arn.rsplit("/", 1)[1]), package_arn=arn, run_id=run_id, onnx_key=onnx_key, onnx_sha256=sha,
        threshold=0.3,
    )  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLUICE_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
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
        s3, sagemaker, sfn = boto3.client("s3"), boto3.client("sagemaker"), boto3.client("stepfunctions")
        s3.create_bucket(Bucket=LAKE)
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        champion, candidate = _ref(sagemaker, s3, "run-1"), _ref(sagemaker, s3, "run-2")
        topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
        role = "arn:aws:iam::123456789012:role/promotion"
        machines = {
            kind: sfn.create_state_machine(name=f"promotion-{kind}", definition=json.dumps(definition), roleArn=role)[
                "stateMachineArn"
            ]
            for kind, definition in (("succeeds", SUCCEEDS), ("fails", FAILS))
        }
        DeploymentStore(dynamodb, TABLE).put(DeploymentState(usecase=USECASE, champion=champion), expected_revision=0)
        outputs = {
            "DeploymentTableName": TABLE,
            "LakeBucketName": LAKE,
            "ModelPackageGroupName": GROUP,
            "AlarmTopicArn": topic,
            "PromotionStateMachineArn": machines["succeeds"],
        }
        yield {
            "tmp": tmp_path,
            "outputs": outputs,
            "machines": machines,
            "champion": champion,
            "candidate": candidate,
        }


def _cli(stack: dict[str, Any], *args: str, machine: str = "succeeds") -> int:
    path = stack["tmp"] / "outputs.json"
    path.write_text(json.dumps({STACK: {**stack["outputs"], "PromotionStateMachineArn": stack["machines"][machine]}}))
    return main(["--usecase", str(USECASE_FILE), "--outputs-file", str(path), *args])


def _service() -> Any:
    from shared.usecase.settings import load_usecase

    return build_service(
        load_usecase(USECASE_FILE),
        deployment_table=TABLE,
        lake_bucket=LAKE,
        model_package_group=GROUP,
        alarm_topic_arn=boto3.client("sns").list_topics()["Topics"][0]["TopicArn"],
        clients=boto3.client,
    )


def _running_in_shadow(candidate: ModelRef, *, execution_arn: str = "") -> Any:
    """A promotion of ``candidate`` in shadow, as the state machine's steps leave it."""
    service = _service()
    service.prepare(model_package_arn=candidate.package_arn, requested_by="ana", execution_arn=execution_arn)
    service.start_shadow()
    return service


def _state() -> DeploymentState:
    return DeploymentStore(boto3.client("dynamodb"), TABLE).get(USECASE)


def _audit() -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    items = boto3.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="usecase = :u AND begins_with(sk, :p)",
        ExpressionAttributeValues={":u": {"S": USECASE}, ":p": {"S": "event#"}},
    )["Items"]
    return [{k: TypeDeserializer().deserialize(v) for k, v in item.items()} for item in items]


def test_promote_starts_the_state_machine_with_the_versions_package_and_the_user(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # When a version is promoted without waiting
    code = _cli(stack, "promote", str(stack["candidate"].version), "--no-wait")

    # Then the state machine got the package ARN and the CLI user, and the command returned at once
    assert code == 0, capsys.readouterr().err
    sfn = boto3.client("stepfunctions")
    (execution,) = sfn.list_executions(stateMachineArn=stack["machines"]["succeeds"])["executions"]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started == {"model_package_arn": stack["candidate"].package_arn, "requested_by": USER}
    assert f"promoting v{stack['candidate'].version}" in capsys.readouterr().out


def test_promote_follows_the_execution_and_reports_success(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # When a promotion that succeeds is followed
    code = _cli(stack, "promote", str(stack["candidate"].version), "--poll", "0.05", "--timeout", "20")

    # Then the command exits 0 and says how many state transitions it took
    out = capsys.readouterr().out
    assert code == 0, out
    assert "promoted after 1 state transitions" in out
    assert "stage idle: v1 serves" in out


def test_promote_exits_non_zero_when_the_promotion_fails(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # When a promotion that is rolled back is followed
    code = _cli(stack, "promote", str(stack["candidate"].version), "--poll", "0.05", "--timeout", "20", machine="fails")

    # Then the command exits 1 with the execution's error
    assert code == 1
    err = capsys.readouterr().err
    assert "failed" in err
    assert "CandidateRejected" in err


def test_promote_of_an_unknown_version_is_an_error(stack: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(stack, "promote", "99", "--no-wait") == 1
    assert "no model package version 99" in capsys.readouterr().err


def test_rollback_during_shadow_puts_the_champion_back_rejects_and_stops_the_execution(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a promotion in shadow whose execution is still running (a machine that waits)
    sfn = boto3.client("stepfunctions")
    waits = {"StartAt": "Bake", "States": {"Bake": {"Type": "Wait", "Seconds": 600, "End": True}}}
    machine = sfn.create_state_machine(
        name="waits", definition=json.dumps(waits), roleArn="arn:aws:iam::123456789012:role/promotion"
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    _running_in_shadow(stack["candidate"], execution_arn=execution_arn)
    assert _state().shadow is True

    # When the operator rolls back with a reason
    code = _cli(stack, "rollback", "--reason", "customers complain")

    # Then only the champion serves, the candidate is rejected, the execution stopped, and the audit names the user
    assert code == 0, capsys.readouterr().err
    state = _state()
    assert (state.stage, state.challenger, state.shadow) == ("idle", None, False)
    assert state.champion == stack["champion"]
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=stack["candidate"].package_arn)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "customers complain" in package["ApprovalDescription"]
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "ABORTED"
    rollbacks = [e for e in _audit() if e["action"] == "rollback"]
    assert [(e["actor"], e["reason"]) for e in rollbacks] == [(USER, "customers complain")]


def test_rollback_in_the_watch_window_brings_the_previous_champion_back(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a promoted candidate inside its watch window
    service = _running_in_shadow(stack["candidate"])
    service.set_weight(0)
    service.promote()
    assert _state().champion == stack["candidate"]

    # When the operator rolls back
    code = _cli(stack, "rollback")

    # Then the previous champion serves again, alone
    assert code == 0, capsys.readouterr().err
    state = _state()
    assert (state.stage, state.champion, state.challenger) == ("idle", stack["champion"], None)


def test_rollback_with_nothing_running_is_an_error(stack: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(stack, "rollback") == 1
    assert "no promotion" in capsys.readouterr().err
    assert _state().champion == stack["champion"]


def _waiting_execution() -> tuple[str, str]:
    """An execution waiting on a task token (``sqs:sendMessage.waitForTaskToken``): its ARN and the token."""
    sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
    queue = sqs.create_queue(QueueName="asks")["QueueUrl"]
    ask = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "End": True,
    }
    machine = sfn.create_state_machine(
        name="asks",
        definition=json.dumps({"StartAt": "Ask", "States": {"Ask": ask}}),
        roleArn="arn:aws:iam::123456789012:role/promotion",
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []):
            return execution_arn, json.loads(message["Body"])["token"]
    raise AssertionError("the execution never asked")


def _status_when_done(execution_arn: str) -> str:
    sfn, deadline = boto3.client("stepfunctions"), time.monotonic() + 20
    while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    return str(status)


@pytest.mark.parametrize(("command", "ends"), [("approve", "SUCCEEDED"), ("abort", "FAILED")])
def test_approve_and_abort_answer_the_waiting_task_token(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str], command: str, ends: str
) -> None:
    # Given a promotion in shadow whose execution waits for a human with a task token
    execution_arn, token = _waiting_execution()
    service = _running_in_shadow(stack["candidate"], execution_arn=execution_arn)
    service.wait_for_human(token, "too few samples")
    _cli(stack, "status")
    assert "waiting for a human decision" in capsys.readouterr().out

    # When the operator answers
    assert _cli(stack, command, "--reason", "looked at the dashboard") == 0, capsys.readouterr().err

    # Then the execution goes on (approve) or fails into its rollback path (abort), audited as the user
    assert _status_when_done(execution_arn) == ends
    decisions = [e for e in _audit() if e["action"] == command]
    assert [(e["actor"], e["reason"]) for e in decisions] == [(USER, "looked at the dashboard")]
    assert PromotionStore(boto3.client("dynamodb"), TABLE).get(USECASE).task_token is None  # type: ignore[union-attr]


def test_a_second_answer_is_refused(stack: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    # Given a promotion whose human decision was given already
    execution_arn, token = _waiting_execution()
    service = _running_in_shadow(stack["candidate"], execution_arn=execution_arn)
    service.wait_for_human(token, "too few samples")
    assert _cli(stack, "approve") == 0
    capsys.readouterr()

    # When someone answers again, Then the CLI says nothing waits and exits 1
    assert _cli(stack, "abort") == 1
    assert "not waiting for a decision" in capsys.readouterr().err
    approvals = [e for e in _audit() if e["action"] == "approve"]
    assert [e["actor"] for e in approvals] == [USER]


def test_abort_with_nothing_running_is_an_error(stack: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(stack, "abort") == 1
    assert "no promotion" in capsys.readouterr().err


def test_status_shows_the_running_stage_and_the_promotion(
    stack: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a promotion at its first canary step
    service = _running_in_shadow(stack["candidate"])
    service.set_weight(0)

    # When the operator asks for the status
    assert _cli(stack, "status") == 0

    # Then it names the stage, the canary weight and the promotion
    out = capsys.readouterr().out
    assert "stage        canary" in out
    assert "1% canary" in out
    assert f"promotion    v{stack['candidate'].version} running" in out


def test_the_decision_commands_in_the_notification_are_the_clis_own() -> None:
    # The SNS message of a waiting promotion tells the humans what to run: it must parse as this CLI
    for command in ("approve", "abort"):
        words = cli_command(USECASE, command).split()
        assert words[:3] == ["python", "-m", "cli"]
        args = parser().parse_args(words[3:])
        assert args.command == command
        assert (REPO / args.usecase).is_file()
