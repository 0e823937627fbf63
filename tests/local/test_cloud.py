"""The embedded cloud, from a small hand-written template shaped like CDK's output.

One cloud per module (starting it takes well under a second); each test drives it through boto3
at its endpoint URL, as a user would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.cloud import EmbeddedCloud

STACK = "Sluice-test"
NOTIFICATION_HELPER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"

INGEST_HANDLER = """
import json
import os

import boto3

import settings  # a sibling module: each function must see its own


def lambda_handler(event, context):
    if "Records" not in event:
        return {
            "echo": event,
            "function": context.function_name,
            "flavour": settings.FLAVOUR,
            "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 10_000,
        }
    s3 = boto3.client("s3")  # AWS_ENDPOINT_URL points at the embedded cloud
    for record in event["Records"]:
        marker = {
            "key": record["s3"]["object"]["key"],
            "versionId": record["s3"]["object"].get("versionId"),
            "sequencer": record["s3"]["object"].get("sequencer"),
            "greeting": os.environ["GREETING"],
            "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "flavour": settings.FLAVOUR,
        }
        s3.put_object(
            Bucket=os.environ["CURATED_BUCKET"],
            Key="markers/" + record["s3"]["object"]["key"],
            Body=json.dumps(marker).encode(),
        )
    return {"written": len(event["Records"])}
"""

FAILING_HANDLER = """
import settings


def lambda_handler(event, context):
    raise ValueError("cannot ingest " + settings.FLAVOUR)
"""


def _role(service: str) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": service}}],
            },
            "ManagedPolicyArns": [
                {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                        ],
                    ]
                }
            ],
        },
    }


def _function(asset: str, environment: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {
                "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
                "S3Key": "x.zip",
            },
            "Handler": "handler.lambda_handler",
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Runtime": "python3.12",
            "Timeout": 10,
            "MemorySize": 256,
            "Environment": {"Variables": environment},
        },
        "DependsOn": ["FunctionRole"],
        "Metadata": {"aws:asset:path": asset, "aws:asset:property": "Code"},
    }


STATE_MACHINE_DEFINITION = {
    "Fn::Join": [
        "",
        [
            '{"StartAt":"Score","States":{"Score":{"Type":"Task","Resource":"arn:',
            {"Ref": "AWS::Partition"},
            ':states:::lambda:invoke","Parameters":{"FunctionName":"',
            {"Fn::GetAtt": ["IngestFunction", "Arn"]},
            '","Payload.$":"$"},"OutputPath":"$.Payload","End":true}}}',
        ],
    ]
}

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "dev"},
        "BootstrapVersion": {
            "Type": "AWS::SSM::Parameter::Value<String>",
            "Default": "/cdk-bootstrap/hnb659fds/version",
        },
    },
    "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    "Resources": {
        "RawBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "VersioningConfiguration": {"Status": "Enabled"},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "LifecycleConfiguration": {
                    "Rules": [{"Id": "expire-tmp", "Status": "Enabled", "Prefix": "tmp/", "ExpirationInDays": 7}]
                },
            },
        },
        "RawBucketPolicy": {  # CDK's enforceSSL: must not block the plain-HTTP local endpoint
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "RawBucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": "s3:*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Resource": [
                                {"Fn::GetAtt": ["RawBucket", "Arn"]},
                                {"Fn::Join": ["", [{"Fn::GetAtt": ["RawBucket", "Arn"]}, "/*"]]},
                            ],
                        }
                    ],
                },
            },
        },
        "CuratedBucket": {"Type": "AWS::S3::Bucket"},
        "ProdOnlyTable": {
            "Type": "AWS::DynamoDB::Table",
            "Condition": "IsProd",
            "Properties": {
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        },
        "FailureQueue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}},
        "FunctionRole": _role("lambda.amazonaws.com"),
        "IngestFunction": _function(
            "asset.ingest",
            {"CURATED_BUCKET": {"Ref": "CuratedBucket"}, "GREETING": {"Fn::Sub": "hello from ${AWS::StackName}"}},
        ),
        "FailingFunction": _function("asset.failing", {}),
        "FailingInvokeConfig": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": "FailingFunction"},
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": 1,
                "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["FailureQueue", "Arn"]}}},
            },
        },
        "IngestPermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": ["IngestFunction", "Arn"]},
                "Principal": "s3.amazonaws.com",
                "SourceAccount": {"Ref": "AWS::AccountId"},
                "SourceArn": {"Fn::GetAtt": ["RawBucket", "Arn"]},
            },
        },
        f"{NOTIFICATION_HELPER}Role": _role("lambda.amazonaws.com"),
        NOTIFICATION_HELPER: {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": {"ZipFile": "def handler(event, context): raise RuntimeError('must not run')"},
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": [f"{NOTIFICATION_HELPER}Role", "Arn"]},
                "Runtime": "python3.11",
            },
        },
        "RawBucketNotifications": {
            "Type": "Custom::S3BucketNotifications",
            "Properties": {
                "ServiceToken": {"Fn::GetAtt": [NOTIFICATION_HELPER, "Arn"]},
                "BucketName": {"Ref": "RawBucket"},
                "NotificationConfiguration": {
                    "LambdaFunctionConfigurations": [
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "LambdaFunctionArn": {"Fn::GetAtt": ["IngestFunction", "Arn"]},
                            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"}]}},
                        },
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "LambdaFunctionArn": {"Fn::GetAtt": ["FailingFunction", "Arn"]},
                            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "poison/"}]}},
                        },
                    ]
                },
                "Managed": True,
            },
            "DependsOn": ["IngestPermission"],
        },
        "StateMachineRole": _role("states.amazonaws.com"),
        "Pipeline": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "DefinitionString": STATE_MACHINE_DEFINITION,
                "RoleArn": {"Fn::GetAtt": ["StateMachineRole", "Arn"]},
            },
        },
        "HttpApi": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "scoring", "ProtocolType": "HTTP"}},
        "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:deflate64:xyz"}},
    },
    "Outputs": {
        "RawBucketName": {"Value": {"Ref": "RawBucket"}},
        "PipelineArn": {"Value": {"Ref": "Pipeline"}},
        "FailureQueueUrl": {"Value": {"Ref": "FailureQueue"}},
        "ApiUrl": {"Value": {"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]}},
        "ProdTable": {"Value": {"Ref": "ProdOnlyTable"}, "Condition": "IsProd"},
    },
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    assembly = tmp_path_factory.mktemp("cdk.out")
    for asset, source, flavour in (
        ("asset.ingest", INGEST_HANDLER, "ingest"),
        ("asset.failing", FAILING_HANDLER, "poison"),
    ):
        (assembly / asset).mkdir()
        (assembly / asset / "handler.py").write_text(source)
        (assembly / asset / "settings.py").write_text(f"FLAVOUR = {flavour!r}\n")
    template_file = assembly / f"{STACK}.template.json"
    template_file.write_text(json.dumps(TEMPLATE))
    with EmbeddedCloud(template=template_file, state_dir=assembly / ".local", retry_backoff_s=0.01) as running:
        yield running


def _physical_id(cloud: EmbeddedCloud, logical_id: str) -> str:
    return cloud.deployment.physical_id(logical_id)


def test_s3_put_runs_the_handler_in_process_with_the_template_environment(cloud: EmbeddedCloud) -> None:
    # Given the raw bucket notifies the ingest function for raw/ (a Custom::S3BucketNotifications)
    s3 = cloud.client("s3")
    raw, curated = _physical_id(cloud, "RawBucket"), _physical_id(cloud, "CuratedBucket")

    # When a file lands under raw/
    put = s3.put_object(Bucket=raw, Key="raw/2024/churn.csv", Body=b"a,b\n1,2\n")
    cloud.wait_until_idle(timeout=10)

    # Then the handler ran with the template's environment and wrote its marker through the endpoint
    marker = json.loads(s3.get_object(Bucket=curated, Key="markers/raw%2F2024%2Fchurn.csv")["Body"].read())
    assert marker["greeting"] == f"hello from {STACK}"
    assert marker["function"] == _physical_id(cloud, "IngestFunction")
    assert marker["task_root"].endswith("asset.ingest")
    assert marker["flavour"] == "ingest"
    # ... and the event carries what real S3 sends for a versioned bucket
    assert marker["versionId"] == put["VersionId"]
    assert marker["sequencer"]


def test_s3_events_carry_increasing_sequencers(cloud: EmbeddedCloud) -> None:
    # Given two puts to the raw bucket
    s3 = cloud.client("s3")
    raw, curated = _physical_id(cloud, "RawBucket"), _physical_id(cloud, "CuratedBucket")

    # When both are delivered
    for key in ("raw/seq-1.csv", "raw/seq-2.csv"):
        s3.put_object(Bucket=raw, Key=key, Body=b"x")
    cloud.wait_until_idle(timeout=10)

    # Then the later event's sequencer sorts after the earlier one's
    first, second = (
        json.loads(s3.get_object(Bucket=curated, Key=f"markers/raw%2Fseq-{n}.csv")["Body"].read())["sequencer"]
        for n in (1, 2)
    )
    assert first < second


def test_a_failing_async_invocation_is_retried_then_lands_on_the_failure_destination(cloud: EmbeddedCloud) -> None:
    # Given the failing function's EventInvokeConfig: one retry, OnFailure → FailureQueue
    s3, sqs = cloud.client("s3"), cloud.client("sqs")
    failing = _physical_id(cloud, "FailingFunction")
    before = sum(1 for r in cloud.lambdas.invocations if r.function_name == failing)

    # When an object under poison/ arrives
    s3.put_object(Bucket=_physical_id(cloud, "RawBucket"), Key="poison/bad.csv", Body=b"!")
    cloud.wait_until_idle(timeout=10)

    # Then the handler ran 1 + MaximumRetryAttempts times
    attempts = [r for r in cloud.lambdas.invocations if r.function_name == failing][before:]
    assert [r.attempt for r in attempts] == [1, 2]
    assert {r.outcome for r in attempts} == {"ValueError"}
    # ... and the destination record, shaped as Lambda sends it, is on the queue
    messages = sqs.receive_message(QueueUrl=cloud.outputs["FailureQueueUrl"], WaitTimeSeconds=1)["Messages"]
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].startswith(
        f"arn:aws:lambda:us-east-1:123456789012:function:{failing}"
    )
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "poison%2Fbad.csv"
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "cannot ingest poison"


def test_a_state_machine_from_the_template_runs_its_lambda_task(cloud: EmbeddedCloud) -> None:
    # Given the Pipeline state machine with a lambda:invoke task
    sfn = cloud.client("stepfunctions")

    # When it is executed
    arn = sfn.start_execution(stateMachineArn=cloud.outputs["PipelineArn"], input=json.dumps({"ping": 1}))[
        "executionArn"
    ]
    deadline = time.monotonic() + 15
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.1)

    # Then it succeeded with the handler's result
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["echo"] == {"ping": 1}


def test_request_response_invoke_returns_the_handler_result(cloud: EmbeddedCloud) -> None:
    # Given the ingest function
    lambda_client = cloud.client("lambda")

    # When it is invoked synchronously through the API
    response = lambda_client.invoke(FunctionName=_physical_id(cloud, "IngestFunction"), Payload=b'{"hello": "world"}')

    # Then the payload is its JSON result, computed with its own sibling module and context
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {
        "echo": {"hello": "world"},
        "function": _physical_id(cloud, "IngestFunction"),
        "flavour": "ingest",
        "remaining_ok": True,
    }


def test_request_response_invoke_of_a_failing_handler_returns_the_error_payload(cloud: EmbeddedCloud) -> None:
    # Given the failing function
    lambda_client = cloud.client("lambda")

    # When it is invoked synchronously
    response = lambda_client.invoke(FunctionName=_physical_id(cloud, "FailingFunction"), Payload=b"{}")

    # Then Lambda's error shape comes back, flagged Unhandled
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "cannot ingest poison"
    assert error["stackTrace"]


def test_an_event_invoke_is_accepted_and_runs_later(cloud: EmbeddedCloud) -> None:
    # Given the ingest function
    name = _physical_id(cloud, "IngestFunction")
    before = len(cloud.lambdas.invocations)

    # When it is invoked with InvocationType=Event
    response = cloud.client("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=b'{"async": true}')
    cloud.wait_until_idle(timeout=10)

    # Then the call returned 202 at once and the handler ran on the worker
    assert response["StatusCode"] == 202
    ran = list(cloud.lambdas.invocations)[before:]
    assert [(r.function_name, r.invocation_type, r.outcome) for r in ran] == [(name, "Event", "ok")]


def test_outputs_and_deployment_files_are_written(cloud: EmbeddedCloud) -> None:
    # Given a running cloud
    # When its files are read
    outputs = json.loads(cloud.outputs_file.read_text())
    deployment = json.loads(cloud.deployment_file.read_text())

    # Then outputs.json has the cdk --outputs-file shape, unmet conditions left out
    assert set(outputs) == {STACK}
    assert outputs[STACK]["RawBucketName"] == _physical_id(cloud, "RawBucket")
    assert outputs[STACK]["PipelineArn"].startswith("arn:aws:states:us-east-1:123456789012:stateMachine:")
    assert outputs[STACK]["ApiUrl"] == "local-not-emulated:HttpApi.ApiEndpoint"
    assert "ProdTable" not in outputs[STACK]
    # ... and deployment.json reports what is and is not emulated
    treatments = {r["logicalId"]: r["treatment"] for r in deployment["resources"]}
    assert treatments["HttpApi"] == "not emulated"
    assert treatments[NOTIFICATION_HELPER] == "skipped"
    assert treatments["CDKMetadata"] == "skipped"
    assert treatments["RawBucketNotifications"] == "emulated"
    assert "ProdOnlyTable" not in treatments
    assert deployment["notEmulatedTypes"] == ["AWS::ApiGatewayV2::Api"]


def test_bucket_settings_from_the_template_are_applied(cloud: EmbeddedCloud) -> None:
    # Given the raw bucket's template properties
    s3 = cloud.client("s3")
    raw = _physical_id(cloud, "RawBucket")

    # When its configuration is read back
    # Then versioning, encryption, public access block and lifecycle are as declared
    assert s3.get_bucket_versioning(Bucket=raw)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=raw)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=raw)["PublicAccessBlockConfiguration"].values())
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=raw)["Rules"]
    assert lifecycle[0]["Expiration"]["Days"] == 7
    # ... and its CloudFormation-style name is lowercase and short enough
    assert raw == raw.lower()
    assert len(raw) <= 63
    assert raw.startswith("sluice-test-rawbucket-")
