"""The review SLA alarm tried as deployed: its properties read from the synthesized template, the real sweep handler
run under moto over items of known ages, the EMF it prints turned into metrics by the embedded cloud's own EMF
publisher, and the alarm evaluated by the embedded cloud's own evaluation over its complete period."""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from infra.assembly import synthesize
from local.services.alarms import ALARM, OK, AlarmSpec, MotoMetricSource, alarm_values, evaluate_datapoints
from local.services.emf import EmfPublisher, parse_emf, tee_stdout
from shared.review import telemetry
from shared.review.adapters import TABLE_SCHEMA, DynamoReviewStore
from shared.review.routing import Reason
from shared.review.types import ReviewItem
from tests.fakes import FakeLambdaContext

REPO = Path(__file__).resolve().parents[2]
STACK, LAKE, TABLE, USECASE = "Sluice-telco-churn", "sluice-lake", "sluice-review", "telco_churn"
REGION = "us-east-1"


@dataclass(frozen=True, kw_only=True)
class DeployedAlarm:
    spec: AlarmSpec
    actions: list[Any]
    topic_ref: str
    """Logical id the stack's ``AlarmTopicArn`` output refers to: the alarm topic."""


@pytest.fixture(scope="module")
def deployed() -> DeployedAlarm:
    template: dict[str, Any] = synthesize().template(STACK)
    alarms = {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("MetricName") == telemetry.OLDEST_ITEM_AGE
    }
    assert len(alarms) == 1, f"one SLA alarm on {telemetry.OLDEST_ITEM_AGE}, found {sorted(alarms)}"
    [(logical_id, properties)] = alarms.items()
    # the template's properties are DescribeAlarms' fields; the name and ARN are given at deploy time
    described = {
        **properties,
        "AlarmName": logical_id,
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{DEFAULT_ACCOUNT_ID}:alarm:{logical_id}",
    }
    return DeployedAlarm(
        spec=AlarmSpec.from_describe(described),
        actions=list(properties.get("AlarmActions", [])),
        topic_ref=template["Outputs"]["AlarmTopicArn"]["Value"]["Ref"],
    )


@pytest.fixture
def sweep(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=LAKE)
        boto3.client("dynamodb", region_name=REGION).create_table(TableName=TABLE, **TABLE_SCHEMA)
        monkeypatch.setenv("LAKE_BUCKET", LAKE)
        monkeypatch.setenv("REVIEW_TABLE", TABLE)
        monkeypatch.setenv("SLUICE_USECASE_FILE", str(REPO / "usecases" / "telco_churn.toml"))
        handler = importlib.import_module("functions.review_sweep.handler")
        handler.service.cache_clear()
        yield handler
        handler.service.cache_clear()


def _queue_items(*ages: timedelta) -> None:
    """Items routed for review ``ages`` ago, written through the review table's own store."""
    store = DynamoReviewStore(boto3.client("dynamodb", region_name=REGION), TABLE)
    now = datetime.now(UTC)
    for n, age in enumerate(ages):
        queued = now - age
        item = ReviewItem(
            usecase=USECASE, item_id=f"item-{n}", request_id=f"request-{n}", index=0, variant="champion",
            model_version=1, score=0.45, threshold=0.45, predicted_at=queued, created_at=queued,
            reasons=(Reason.IN_BAND,), inclusion_probability=1.0, priority=1,
        )  # fmt: skip
        assert store.create(item)


def _sweep_and_evaluate(handler: Any, spec: AlarmSpec) -> tuple[str, list[float | None]]:
    """Run the sweep, publish what it printed as EMF, and evaluate the alarm over the first complete period holding
    the sweep's datapoint (CloudWatch evaluates on minute boundaries)."""
    with tee_stdout() as printed:
        handler.lambda_handler({}, FakeLambdaContext())
    output = printed.captured()
    [swept_at] = {d.timestamp for d in parse_emf(output.splitlines()) if d.name == telemetry.OLDEST_ITEM_AGE}
    EmfPublisher(lambda name: boto3.client(name, region_name=REGION)).publish_output(output)
    evaluated_at = math.floor(swept_at.timestamp() / 60) * 60 + 60
    values = alarm_values(spec, MotoMetricSource(account_id=DEFAULT_ACCOUNT_ID, region=REGION), evaluated_at)
    decision = evaluate_datapoints(
        values,
        threshold=spec.threshold,
        comparison_operator=spec.comparison_operator,
        datapoints_to_alarm=spec.datapoints_to_alarm,
        treat_missing_data=spec.treat_missing_data,
    )
    return decision.state, values


def test_an_item_older_than_the_sla_sets_off_the_alarm(sweep: Any, deployed: DeployedAlarm) -> None:
    # Given an item queued longer ago than the alarm's threshold (the SLA) beside a fresh one
    sla = timedelta(seconds=deployed.spec.threshold)
    oldest = sla + timedelta(hours=1)
    _queue_items(oldest, timedelta(minutes=5))
    # When the sweep runs and the alarm is evaluated over its period
    state, values = _sweep_and_evaluate(sweep, deployed.spec)
    # Then the oldest item's age is the period's one datapoint, past the SLA: ALARM, whose action is the alarm topic
    assert values == [pytest.approx(oldest.total_seconds(), abs=60)]
    assert state == ALARM
    assert deployed.actions == [{"Ref": deployed.topic_ref}]


def test_only_young_items_keep_the_alarm_ok(sweep: Any, deployed: DeployedAlarm) -> None:
    # Given items all queued well within the SLA
    sla = timedelta(seconds=deployed.spec.threshold)
    oldest = sla / 2
    _queue_items(oldest, timedelta(minutes=5))
    # When the sweep runs and the alarm is evaluated over its period
    state, values = _sweep_and_evaluate(sweep, deployed.spec)
    # Then the oldest item's age is measured, within the SLA: OK
    assert values == [pytest.approx(oldest.total_seconds(), abs=60)]
    assert state == OK
