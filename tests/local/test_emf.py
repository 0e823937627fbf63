"""EMF lines (as powertools prints them) → PutMetricData entries, as CloudWatch Logs would extract them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from local.services.emf import EmfPublisher, parse_emf, tee_stdout


def powertools_output() -> str:
    """What a handler using powertools' Metrics prints when it flushes (captured through the tee)."""
    metrics = Metrics(namespace="Sluice", service="score")
    metrics.clear_metrics()
    metrics.add_dimension(name="usecase", value="telco_churn")
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=12.5)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=7.0)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=3)
    with tee_stdout() as tee:
        print("a plain log line")
        print(json.dumps({"level": "INFO", "message": "not EMF", "_aws": "nope"}))
        metrics.flush_metrics()
    return tee.captured()


def test_powertools_emf_becomes_metric_data() -> None:
    # Given what powertools printed for two metrics, one of them with two values
    output = powertools_output()
    # When it is parsed
    data = {datum.name: datum for datum in parse_emf(output.splitlines())}
    # Then each metric carries the namespace, the dimension set with its values, the unit and the values
    assert set(data) == {"Latency", "Predictions"}
    latency = data["Latency"]
    assert latency.namespace == "Sluice"
    assert dict(latency.dimensions) == {"usecase": "telco_churn", "service": "score"}
    assert latency.values == (12.5, 7.0)
    assert latency.unit == "Milliseconds"
    assert data["Predictions"].values == (3.0,)
    assert abs((datetime.now(UTC) - latency.timestamp).total_seconds()) < 60


def test_each_dimension_set_is_its_own_datum_and_bad_emf_is_skipped() -> None:
    # Given one document with two dimension sets, and a document claiming EMF without its metric value
    document = {
        "_aws": {
            "Timestamp": 1_700_000_000_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Sluice",
                    "Dimensions": [["usecase"], ["usecase", "variant"]],
                    "Metrics": [{"Name": "Errors"}],
                }
            ],
        },
        "usecase": "churn",
        "variant": "champion",
        "Errors": 1,
    }
    broken = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "X", "Metrics": [{"Name": "Gone"}]}]}}
    # When both are parsed
    data = parse_emf([json.dumps(document), json.dumps(broken)])
    # Then the good one gives a datum per dimension set (unit None), the bad one nothing
    assert [d.dimensions for d in data] == [(("usecase", "churn"),), (("usecase", "churn"), ("variant", "champion"))]
    assert {d.unit for d in data} == {"None"}
    assert data[0].timestamp == datetime.fromtimestamp(1_700_000_000, UTC)


class RecordingCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **arguments: Any) -> None:
        self.calls.append(arguments)


def test_the_publisher_sends_put_metric_data_per_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a publisher over a recording CloudWatch client
    cloudwatch = RecordingCloudWatch()
    publisher = EmfPublisher(lambda _service: cloudwatch)
    # When powertools' output is published
    publisher.publish_output(powertools_output())
    # Then one PutMetricData call carries both metrics, with multiple values as Values
    (call,) = cloudwatch.calls
    assert call["Namespace"] == "Sluice"
    entries = {entry["MetricName"]: entry for entry in call["MetricData"]}
    assert entries["Latency"]["Values"] == [12.5, 7.0]
    assert entries["Predictions"]["Value"] == 3.0
    assert {"Name": "usecase", "Value": "telco_churn"} in entries["Latency"]["Dimensions"]
    assert publisher.published == 2
    assert "a plain log line" in capsys.readouterr().out  # the tee still writes through
