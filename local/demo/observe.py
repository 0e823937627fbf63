"""Reading the embedded cloud as an operator would, through boto3: what `make demo` and the e2e tests measure.

The newest promotion execution and its state transitions (what Step Functions bills), how many
predictions reached the prediction log, and when a metric first breached (for the rollback delay).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cli.progress import state_transitions as count_transitions
from local.launcher import RunningCloud
from shared.scoring import telemetry
from shared.usecase.settings import UseCase


def latest_execution(cloud: RunningCloud) -> dict[str, Any]:
    """``DescribeExecution`` of the newest promotion execution."""
    sfn = cloud.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=cloud.stack_outputs["PromotionStateMachineArn"])["executions"]
    newest = max(executions, key=lambda e: e["startDate"])
    return dict(sfn.describe_execution(executionArn=newest["executionArn"]))


def state_transitions(cloud: RunningCloud, execution_arn: str) -> int:
    """The state transitions of one execution, counted from its history."""
    events = cloud.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)
    return count_transitions(events["events"])


def logged_predictions(cloud: RunningCloud, usecase: UseCase) -> int:
    """Predictions in the lake's prediction log (one JSON Lines record each)."""
    s3, bucket = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"predictions/{usecase.name}/"):
        for item in page.get("Contents", []):
            count += len(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().splitlines())
    return count


def first_breach(cloud: RunningCloud, usecase: UseCase, metric: str, variant: str, since: datetime) -> datetime | None:
    """The start of the first second since ``since`` in which ``metric`` on [usecase, variant] was above zero."""
    dimensions = [
        {"Name": telemetry.DIMENSION_USECASE, "Value": usecase.name},
        {"Name": telemetry.DIMENSION_VARIANT, "Value": variant},
    ]
    result = cloud.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": telemetry.NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
                    "Period": 1,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=since,
        EndTime=datetime.now(UTC) + timedelta(seconds=1),
        ScanBy="TimestampAscending",
    )["MetricDataResults"][0]
    breaching = [ts for ts, value in zip(result["Timestamps"], result["Values"], strict=True) if value > 0]
    return min(breaching) if breaching else None
