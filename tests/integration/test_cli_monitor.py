"""``python -m cli monitor`` under moto: prints the latest report's alerts and its path; exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cli.__main__ import main
from shared.lake import layout as lake
from tests.unit.test_monitoring_service import BUCKET, shifted_run

USECASE, STACK = "telco_churn", "Sluice-telco-churn"


def test_monitor_prints_the_latest_report_and_exits_by_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(name, value)
    store, summary, _ = shifted_run()  # a report with alerts, written by the service
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({STACK: {"LakeBucketName": BUCKET}}))
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        json_key, html_key = (
            lake.report_json_key(USECASE, summary.run_id),
            lake.report_html_key(USECASE, summary.run_id),
        )
        s3.put_object(Bucket=BUCKET, Key=json_key, Body=store.body(BUCKET, summary.report_json_key))
        pointer = {**summary.to_json(), "usecase": USECASE, "report_json_key": json_key, "report_html_key": html_key}
        s3.put_object(Bucket=BUCKET, Key=lake.latest_report_key(USECASE), Body=json.dumps(pointer).encode())
        # When the latest report is printed, then with --fail-on-violation
        assert main(["--outputs-file", str(outputs), "monitor"]) == 0
        printed = capsys.readouterr().out
        assert main(["--outputs-file", str(outputs), "monitor", "--fail-on-violation"]) == 2
        # And --run without the function's output is a clear error
        assert main(["--outputs-file", str(outputs), "monitor", "--run"]) == 1
    # Then the alerts' sentences and the HTML report's path were printed
    assert "contract=Month-to-month" in printed
    assert f"s3://{BUCKET}/{html_key}" in printed
    assert "MonitorFunctionName" in capsys.readouterr().err
