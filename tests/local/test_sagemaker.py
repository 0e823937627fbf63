"""SageMaker training jobs in the embedded cloud: a script-mode entry point run in a subprocess.

A tiny ``sourcedir.tar.gz`` holds ``train.py``, which reads its channel and hyperparameters and
writes ``model.json`` into ``SM_MODEL_DIR``. Jobs are created through boto3 and through Step
Functions (createTrainingJob → Wait → describeTrainingJob → Choice), as the training pipeline does.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.cloud import EmbeddedCloud

STACK = "Sluice-sagemaker-test"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker"

TRAIN_PY = """
import argparse
import json
import os
import pathlib
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--mode", default="ok")
args = parser.parse_args()

channel = pathlib.Path(os.environ["SM_CHANNEL_TRAIN"])
files = sorted(str(p.relative_to(channel)) for p in channel.rglob("*") if p.is_file())
written = json.loads((pathlib.Path(os.environ["SM_INPUT_CONFIG_DIR"]) / "hyperparameters.json").read_text())
if args.mode == "fail":
    pathlib.Path(os.environ["SM_OUTPUT_FAILURE"]).write_text("ValueError: the training data is unusable")
    sys.exit(1)
if args.mode == "sleep":
    time.sleep(30)
print("validation:auc=0.875", flush=True)
model = {
    "epochs": args.epochs,
    "files": files,
    "rows": (channel / "part-0.csv").read_text().count("\\n"),
    "hps": json.loads(os.environ["SM_HPS"]),
    "written_hps": written,
    "job": os.environ["SM_TRAINING_JOB_NAME"],
    "gpus": os.environ["SM_NUM_GPUS"],
    "channels": json.loads(os.environ["SM_CHANNELS"]),
    "cwd_has_source": pathlib.Path("train.py").is_file(),
    "helper": __import__("helper").VALUE,
}
(pathlib.Path(os.environ["SM_MODEL_DIR"]) / "model.json").write_text(json.dumps(model))
"""


def _definition(failure_topic: str) -> str:
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob",
                "Parameters": {
                    "TrainingJobName.$": "$.job",
                    "AlgorithmSpecification": {"TrainingImage": "local/sklearn:1", "TrainingInputMode": "File"},
                    "RoleArn": ROLE_ARN,
                    "HyperParameters": {
                        "sagemaker_program": "train.py",
                        "sagemaker_submit_directory.$": "$.source",
                        "epochs": "2",
                        "mode.$": "$.mode",
                    },
                    "InputDataConfig": [
                        {
                            "ChannelName": "train",
                            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": "$.data"}},
                        }
                    ],
                    "OutputDataConfig": {"S3OutputPath.$": "$.output"},
                    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
                    "StoppingCondition": {"MaxRuntimeInSeconds": 60},
                },
                "ResultPath": "$.created",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Notify"}],
                "Next": "Pause",
            },
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Describe"},
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
                "Parameters": {"TrainingJobName.$": "$.job"},
                "ResultSelector": {"status.$": "$.TrainingJobStatus", "artifacts.$": "$.ModelArtifacts"},
                "ResultPath": "$.training",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Notify"}],
                "Next": "Done?",
            },
            "Done?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.training.status", "StringEquals": "Completed", "Next": "Trained"},
                    {"Variable": "$.training.status", "StringEquals": "InProgress", "Next": "Pause"},
                ],
                "Default": "Notify",
            },
            "Trained": {"Type": "Succeed"},
            "Notify": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": failure_topic, "Message.$": "$.job"},
                "ResultPath": None,
                "Next": "TrainingFailed",
            },
            "TrainingFailed": {"Type": "Fail", "Error": "TrainingFailed", "Cause": "the training job did not complete"},
        },
    }
    return json.dumps(definition)


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "LakeBucket": {"Type": "AWS::S3::Bucket"},
        "FailureTopic": {"Type": "AWS::SNS::Topic"},
        "FailureInbox": {"Type": "AWS::SQS::Queue"},
        "FailureSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "Protocol": "sqs",
                "TopicArn": {"Ref": "FailureTopic"},
                "Endpoint": {"Fn::GetAtt": ["FailureInbox", "Arn"]},
                "RawMessageDelivery": "true",
            },
        },
        "PipelineRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "states.amazonaws.com"},
                        }
                    ],
                }
            },
        },
        "TrainingPipeline": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "DefinitionString": {"Fn::Sub": [_definition("${Topic}"), {"Topic": {"Ref": "FailureTopic"}}]},
                "RoleArn": {"Fn::GetAtt": ["PipelineRole", "Arn"]},
            },
        },
    },
}


def _tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    assembly = tmp_path_factory.mktemp("cdk.out")
    with EmbeddedCloud(
        template=TEMPLATE, stack_name=STACK, asset_root=assembly, state_dir=assembly / ".local"
    ) as running:
        s3 = running.client("s3")
        bucket = running.deployment.physical_id("LakeBucket")
        s3.put_object(
            Bucket=bucket,
            Key="code/sourcedir.tar.gz",
            Body=_tarball({"train.py": TRAIN_PY, "helper.py": "VALUE = 7\n"}),
        )
        s3.put_object(Bucket=bucket, Key="training/v1/part-0.csv", Body=b"x,y\n1,0\n2,1\n")
        s3.put_object(Bucket=bucket, Key="training/v1/nested/part-1.csv", Body=b"x,y\n3,1\n")
        yield running


def _bucket(cloud: EmbeddedCloud) -> str:
    return cloud.deployment.physical_id("LakeBucket")


def _create_job(cloud: EmbeddedCloud, name: str, *, mode: str = "ok", max_runtime_s: int = 60) -> None:
    bucket = _bucket(cloud)
    cloud.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+)"}],
        },
        RoleArn=ROLE_ARN,
        HyperParameters={
            "sagemaker_program": '"train.py"',  # JSON-encoded, as the SageMaker SDK writes them
            "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/code/sourcedir.tar.gz"),
            "epochs": "3",
            "mode": json.dumps(mode),
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/training/v1/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/models"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime_s},
    )


def _wait_for_job(cloud: EmbeddedCloud, name: str, timeout: float = 20.0) -> tuple[dict[str, Any], set[str]]:
    """Poll DescribeTrainingJob until the job ends; returns the final description and every status seen."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = cloud.client("sagemaker").describe_training_job(TrainingJobName=name)
        seen.add(job["TrainingJobStatus"])
        if job["TrainingJobStatus"] in {"Completed", "Failed", "Stopped"}:
            return job, seen
        time.sleep(0.05)
    raise AssertionError(f"training job {name} still {seen} after {timeout}s")


def _wait_for_execution(cloud: EmbeddedCloud, arn: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = cloud.client("stepfunctions").describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return dict(execution)
        time.sleep(0.1)
    raise AssertionError(f"execution {arn} still running after {timeout}s")


def test_a_training_job_runs_the_entry_point_and_uploads_its_model(cloud: EmbeddedCloud) -> None:
    # Given a script-mode job over the train/ channel
    # When it is created
    _create_job(cloud, "churn-ok")

    # Then it is InProgress first, then Completed with its artifacts and times
    job, seen = _wait_for_job(cloud, "churn-ok")
    assert "InProgress" in seen
    assert job["TrainingJobStatus"] == "Completed"
    assert job["SecondaryStatus"] == "Completed"
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{_bucket(cloud)}/models/churn-ok/output/model.tar.gz"
    assert job["TrainingEndTime"] >= job["TrainingStartTime"]
    assert job["BillableTimeInSeconds"] >= 1
    assert [m["MetricName"] for m in job["FinalMetricDataList"]] == ["validation:auc"]
    assert job["FinalMetricDataList"][0]["Value"] == pytest.approx(0.875)
    # ... and model.tar.gz holds what the script wrote into SM_MODEL_DIR
    body = cloud.client("s3").get_object(Bucket=_bucket(cloud), Key="models/churn-ok/output/model.tar.gz")["Body"]
    with tarfile.open(fileobj=io.BytesIO(body.read()), mode="r:gz") as archive:
        model = json.loads(archive.extractfile("model.json").read())  # type: ignore[union-attr]
    assert model["epochs"] == 3
    assert model["files"] == ["nested/part-1.csv", "part-0.csv"]
    assert model["rows"] == 3
    assert model["hps"] == {"epochs": 3, "mode": "ok"}
    assert model["written_hps"]["epochs"] == "3"
    assert model["job"] == "churn-ok"
    assert model["gpus"] == "0"
    assert model["channels"] == ["train"]
    assert model["cwd_has_source"] is True
    assert model["helper"] == 7
    # ... and the job's output is kept next to its directory
    assert "validation:auc=0.875" in cloud.training.runs["churn-ok"].stdout_log.read_text()


def test_a_failing_script_fails_the_job_with_the_reason_it_wrote(cloud: EmbeddedCloud) -> None:
    # Given a script that writes output/failure and exits 1
    # When the job runs
    _create_job(cloud, "churn-fail", mode="fail")

    # Then the job is Failed with that reason
    job, _ = _wait_for_job(cloud, "churn-fail")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ValueError: the training data is unusable"
    assert "ModelArtifacts" not in job


def test_a_job_past_its_max_runtime_is_killed_and_failed(cloud: EmbeddedCloud) -> None:
    # Given a script that sleeps longer than MaxRuntimeInSeconds
    started = time.monotonic()
    # When the job runs
    _create_job(cloud, "churn-slow", mode="sleep", max_runtime_s=1)

    # Then it is killed soon after a second and Failed as MaxRuntimeExceeded
    job, _ = _wait_for_job(cloud, "churn-slow")
    assert time.monotonic() - started < 10
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("MaxRuntimeExceeded")
    assert job["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_stop_training_job_stops_a_running_job(cloud: EmbeddedCloud) -> None:
    # Given a long-running job
    _create_job(cloud, "churn-stop", mode="sleep")
    # When it is stopped
    cloud.client("sagemaker").stop_training_job(TrainingJobName="churn-stop")
    # Then it ends Stopped
    job, _ = _wait_for_job(cloud, "churn-stop")
    assert job["TrainingJobStatus"] == "Stopped"


def _start(cloud: EmbeddedCloud, job: str, mode: str) -> str:
    bucket = _bucket(cloud)
    execution_input = {
        "job": job,
        "mode": mode,
        "source": f"s3://{bucket}/code/sourcedir.tar.gz",
        "data": f"s3://{bucket}/training/v1",
        "output": f"s3://{bucket}/pipeline-models",
    }
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.deployment.physical_id("TrainingPipeline"), input=json.dumps(execution_input)
    )
    return str(started["executionArn"])


def test_the_pipeline_polls_a_training_job_to_success(cloud: EmbeddedCloud) -> None:
    # Given the createTrainingJob → Wait → describeTrainingJob → Choice loop
    # When an execution starts
    arn = _start(cloud, "pipeline-ok", "ok")

    # Then it succeeds once the job has completed, having seen the job's artifacts
    execution = _wait_for_execution(cloud, arn)
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["training"]["status"] == "Completed"
    assert output["training"]["artifacts"]["S3ModelArtifacts"].endswith("pipeline-ok/output/model.tar.gz")
    assert output["created"]["TrainingJobArn"].endswith("training-job/pipeline-ok")


def test_the_pipeline_fails_and_notifies_when_training_fails(cloud: EmbeddedCloud) -> None:
    # Given the same state machine and a script that fails
    # When an execution starts
    arn = _start(cloud, "pipeline-fail", "fail")

    # Then the Choice routes to the SNS notification and the execution fails
    execution = _wait_for_execution(cloud, arn)
    assert execution["status"] == "FAILED"
    assert execution.get("error") == "TrainingFailed"
    inbox = cloud.deployment.physical_id("FailureInbox")
    messages = cloud.client("sqs").receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    assert "pipeline-fail" in [m["Body"] for m in messages]
