"""The embedded cloud's read faults on S3 objects (``/_sluice/faults/objects``, local only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.cloud import EmbeddedCloud

TEMPLATE = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "sluice-faults"}}}}
BUCKET = "sluice-faults"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    assembly = tmp_path_factory.mktemp("cdk.out")
    template_file = assembly / "Sluice-faults.template.json"
    template_file.write_text(json.dumps(TEMPLATE))
    with EmbeddedCloud(template=template_file, state_dir=assembly / ".local", alarm_tick_s=None) as running:
        yield running


def faults(cloud: EmbeddedCloud, document: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{cloud.api_url}/_sluice/faults/objects",
        data=None if document is None else json.dumps(document).encode(),
        method="GET" if document is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def s3(cloud: EmbeddedCloud) -> Any:
    """A client whose own retries are quick: one retry per call (botocore's standard mode)."""
    return boto3.client(
        "s3",
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def test_a_read_fault_for_one_call_fails_that_call_through_its_retries_then_lets_reads_through(
    cloud: EmbeddedCloud,
) -> None:
    client = s3(cloud)
    client.put_object(Bucket=BUCKET, Key="once.jsonl", Body=b'{"a": 1}\n{"a": 2}\n')
    client.put_object(Bucket=BUCKET, Key="other.jsonl", Body=b'{"a": 3}\n')
    # Given a fault on one object for one call
    assert faults(cloud, {"bucket": BUCKET, "key": "once.jsonl", "calls": 1})["calls_left"] == 1
    # When it is read (a ranged read), then read again
    with pytest.raises(ClientError) as failed:
        client.get_object(Bucket=BUCKET, Key="once.jsonl", Range="bytes=0-8")
    again = client.get_object(Bucket=BUCKET, Key="once.jsonl", Range="bytes=0-8")["Body"].read()
    # Then the first call failed with SlowDown on each of its attempts (the SDK's retry did not absorb it) ...
    assert failed.value.response["Error"]["Code"] == "SlowDown"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert failed.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    # ... the next one read the object, and the other object was never touched
    assert again == b'{"a": 1}\n'
    assert client.get_object(Bucket=BUCKET, Key="other.jsonl")["Body"].read() == b'{"a": 3}\n'
    assert faults(cloud)["faults"] == [
        {"bucket": BUCKET, "key": "once.jsonl", "calls_left": 0, "failed_calls": 1, "served": 1}
    ]
    faults(cloud, {"bucket": BUCKET, "key": "once.jsonl", "mode": "ok"})
    assert faults(cloud)["faults"] == []


def test_a_read_fault_without_a_count_fails_every_call_until_removed(cloud: EmbeddedCloud) -> None:
    client = s3(cloud)
    client.put_object(Bucket=BUCKET, Key="always.csv", Body=b"a\n1\n")
    # Given a fault on an object with no count
    faults(cloud, {"bucket": BUCKET, "key": "always.csv"})
    # When it is read three times
    for _ in range(3):
        with pytest.raises(ClientError, match="SlowDown"):
            client.get_object(Bucket=BUCKET, Key="always.csv")
    # Then every call failed, and its metadata is still readable (only reads fail)
    assert faults(cloud)["faults"][0]["failed_calls"] == 3
    assert client.head_object(Bucket=BUCKET, Key="always.csv")["ContentLength"] == 4
    # When the fault is removed, the object reads again
    faults(cloud, {"bucket": BUCKET, "key": "always.csv", "mode": "ok"})
    assert client.get_object(Bucket=BUCKET, Key="always.csv")["Body"].read() == b"a\n1\n"


def test_a_malformed_fault_request_is_refused(cloud: EmbeddedCloud) -> None:
    # When a fault names no key
    request = urllib.request.Request(
        f"{cloud.api_url}/_sluice/faults/objects", data=json.dumps({"bucket": BUCKET}).encode(), method="POST"
    )
    # Then the control answers 400 and sets nothing
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert faults(cloud)["faults"] == []
