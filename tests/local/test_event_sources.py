"""SQS event source mappings in the embedded cloud: batching windows, partial batch responses, S3 → SQS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.cloud import EmbeddedCloud

STACK = "Sluice-sqs-test"

HANDLER = """
def handler(event, context):
    failures = [
        {"itemIdentifier": record["messageId"]}
        for record in event["Records"]
        if record["body"] == "bad" and record["eventSource"] == "aws:sqs"
    ]
    return {"batchItemFailures": failures}
"""


def _mapping(queue: str, function: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {
            "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]},
            "FunctionName": {"Ref": function},
            "BatchSize": 10,
            **extra,
        },
    }


def _function() -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"ZipFile": HANDLER},
            "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Runtime": "python3.12",
            "Timeout": 10,
        },
    }


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "FunctionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                }
            },
        },
        "BatchQueue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 60}},
        "BatchFunction": _function(),
        "BatchMapping": _mapping(
            "BatchQueue",
            "BatchFunction",
            MaximumBatchingWindowInSeconds=1,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        ),
        "LakeBucket": {"Type": "AWS::S3::Bucket"},
        "ManifestQueue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 60}},
        "ManifestFunction": _function(),
        "ManifestMapping": _mapping("ManifestQueue", "ManifestFunction"),
        "LakeNotifications": {
            "Type": "Custom::S3BucketNotifications",
            "Properties": {
                "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:unused",
                "BucketName": {"Ref": "LakeBucket"},
                "NotificationConfiguration": {
                    "QueueConfigurations": [
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "QueueArn": {"Fn::GetAtt": ["ManifestQueue", "Arn"]},
                            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "manifests/"}]}},
                        }
                    ]
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    assembly = tmp_path_factory.mktemp("cdk.out")
    with EmbeddedCloud(
        template=TEMPLATE, stack_name=STACK, asset_root=assembly, state_dir=assembly / ".local"
    ) as running:
        running.wait_until_idle(timeout=10)  # S3's test event for the new queue configuration
        yield running


def _batches(cloud: EmbeddedCloud, mapping: str) -> list[Any]:
    mapping_id = cloud.deployment.physical_id(mapping)
    return [b for b in cloud.event_sources.batches if b.mapping_uuid == mapping_id]


def _visible_and_in_flight(cloud: EmbeddedCloud, queue: str) -> tuple[int, int]:
    attributes = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.deployment.physical_id(queue),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_messages_sent_within_the_batching_window_arrive_in_one_invocation(cloud: EmbeddedCloud) -> None:
    # Given a mapping with a 1 s batching window and batch size 10
    url = cloud.deployment.physical_id("BatchQueue")
    before = len(_batches(cloud, "BatchMapping"))

    # When 5 messages are sent quickly, one by one
    sent = [cloud.client("sqs").send_message(QueueUrl=url, MessageBody=f"m{i}")["MessageId"] for i in range(5)]
    cloud.wait_until_idle(timeout=10)

    # Then one invocation received all five, and they were deleted
    batches = _batches(cloud, "BatchMapping")[before:]
    assert [sorted(b.message_ids) for b in batches] == [sorted(sent)]
    assert batches[0].outcome == "ok"
    assert _visible_and_in_flight(cloud, "BatchQueue") == (0, 0)


def test_a_partial_batch_failure_leaves_only_the_failed_message(cloud: EmbeddedCloud) -> None:
    # Given a handler that reports the message "bad" as a batch item failure
    url = cloud.deployment.physical_id("BatchQueue")
    before = len(_batches(cloud, "BatchMapping"))

    # When a batch holds good and bad messages
    entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(["ok-1", "bad", "ok-2"])]
    sent = cloud.client("sqs").send_message_batch(QueueUrl=url, Entries=entries)["Successful"]
    bad_id = next(s["MessageId"] for s in sent if s["Id"] == "1")
    deadline = time.monotonic() + 10
    while not _batches(cloud, "BatchMapping")[before:] and time.monotonic() < deadline:
        time.sleep(0.05)

    # Then only the failed message is left on the queue (invisible until its visibility timeout)
    batch = _batches(cloud, "BatchMapping")[before]
    assert batch.outcome == "partial"
    assert batch.failed_ids == [bad_id]
    assert _visible_and_in_flight(cloud, "BatchQueue") == (0, 1)


def test_an_s3_manifest_notification_reaches_the_trigger_function_through_sqs(cloud: EmbeddedCloud) -> None:
    # Given the lake bucket notifies the manifest queue for manifests/ (Custom::S3BucketNotifications)
    before = len(_batches(cloud, "ManifestMapping"))

    # When a manifest lands, and an object outside the prefix
    s3 = cloud.client("s3")
    bucket = cloud.deployment.physical_id("LakeBucket")
    s3.put_object(Bucket=bucket, Key="manifests/v1.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="raw/ignored.csv", Body=b"x")
    cloud.wait_until_idle(timeout=10)

    # Then the trigger function got one SQS batch whose body is the S3 event for the manifest
    batches = _batches(cloud, "ManifestMapping")[before:]
    assert len(batches) == 1
    assert batches[0].outcome == "ok"
    assert _visible_and_in_flight(cloud, "ManifestQueue") == (0, 0)


def test_the_sqs_event_has_lambdas_record_shape(cloud: EmbeddedCloud) -> None:
    # Given a received SQS message
    from local.services.event_sources import sqs_record

    message = {
        "MessageId": "id-1",
        "ReceiptHandle": "rh",
        "Body": json.dumps({"a": 1}),
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {"kind": {"StringValue": "manifest", "DataType": "String"}},
    }
    # When it becomes an event record
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    # Then it carries Lambda's field names
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":q")
    assert record["messageAttributes"]["kind"]["stringValue"] == "manifest"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert set(record) >= {"messageId", "receiptHandle", "body", "md5OfBody", "awsRegion"}
