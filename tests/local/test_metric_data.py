"""``GetMetricData`` on the embedded cloud answers as CloudWatch does: percentiles, exact dimensions, no gaps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.services.metrics import MetricDataPatch

ACCOUNT, REGION = "123456789012", "us-east-1"
PAIR = [{"Name": "usecase", "Value": "u"}, {"Name": "variant", "Value": "shadow"}]
TRIPLE = [*PAIR, {"Name": "model_version", "Value": "2"}]


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(name, value)
    patch = MetricDataPatch(account_id=ACCOUNT, region=REGION)
    with mock_aws():
        patch.install()
        try:
            yield boto3.client("cloudwatch")
        finally:
            patch.uninstall()


def _query(query_id: str, name: str, stat: str, dimensions: list[dict[str, str]], period: int = 60) -> dict[str, Any]:
    metric = {"Namespace": "Sluice", "MetricName": name, "Dimensions": dimensions}
    return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}}


def test_percentiles_sums_and_exact_dimensions(cloudwatch: Any) -> None:
    # Given latencies 1..100 ms on [usecase, variant] and a larger series on [usecase, variant, model_version]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    cloudwatch.put_metric_data(
        Namespace="Sluice",
        MetricData=[
            {
                "MetricName": "Latency",
                "Dimensions": PAIR,
                "Values": [float(v) for v in range(1, 101)],
                "Timestamp": start,
            }
        ],
    )
    cloudwatch.put_metric_data(
        Namespace="Sluice",
        MetricData=[{"MetricName": "Latency", "Dimensions": TRIPLE, "Value": 1000.0, "Timestamp": start}],
    )
    cloudwatch.put_metric_data(
        Namespace="Other",
        MetricData=[{"MetricName": "Latency", "Dimensions": PAIR, "Value": 5000.0, "Timestamp": start}],
    )

    # When p99, Sum and SampleCount are asked on the pair of dimensions
    results = cloudwatch.get_metric_data(
        MetricDataQueries=[
            _query("p99", "Latency", "p99", PAIR),
            _query("total", "Latency", "Sum", PAIR),
            _query("count", "Latency", "SampleCount", PAIR),
        ],
        StartTime=start - timedelta(seconds=10),
        EndTime=start + timedelta(seconds=50),
    )["MetricDataResults"]
    values = {r["Id"]: r["Values"] for r in results}

    # Then only that exact dimension set in that namespace counts, the p99 is the nearest rank
    assert values["p99"] == [99.0]
    assert values["total"] == [5050.0]
    assert values["count"] == [100.0]


def test_a_period_without_data_is_left_out(cloudwatch: Any) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=40)
    cloudwatch.put_metric_data(
        Namespace="Sluice",
        MetricData=[{"MetricName": "ShadowErrors", "Dimensions": PAIR, "Value": 3.0, "Timestamp": start}],
    )
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[_query("e", "ShadowErrors", "Sum", PAIR, period=10)],
        StartTime=start - timedelta(seconds=20),
        EndTime=start + timedelta(seconds=20),
        ScanBy="TimestampAscending",
    )["MetricDataResults"][0]
    assert result["Values"] == [3.0]
    assert [t.astimezone(UTC) for t in result["Timestamps"]] == [start]
