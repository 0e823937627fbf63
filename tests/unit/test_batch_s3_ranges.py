"""The S3 adapter's ranged reads and listing sizes (moto in-process, no network)."""

from __future__ import annotations

import os

import boto3
from moto import mock_aws

from shared.lake.adapters import S3ObjectStore


def test_ranged_reads_and_a_listing_past_one_page() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        # Given a bucket with one object and 1,100 small ones
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="batch-bucket")
        client.put_object(Bucket="batch-bucket", Key="one.csv", Body=b"0123456789")
        for index in range(1100):
            client.put_object(Bucket="batch-bucket", Key=f"many/{index:05d}", Body=b"x")
        store = S3ObjectStore(client)
        # Then a range reads those bytes, one past the end reads fewer, one at the end reads none
        assert store.get_range("batch-bucket", "one.csv", 2, 5) == b"234"
        assert store.get_range("batch-bucket", "one.csv", 8, 20) == b"89"
        assert store.get_range("batch-bucket", "one.csv", 10, 20) == b""
        # And the listing pages through every key, with sizes and ETags
        listed = store.list_objects("batch-bucket", "many/")
        assert len(listed) == 1100
        assert {item.size for item in listed} == {1}
        assert all(item.etag for item in listed)
