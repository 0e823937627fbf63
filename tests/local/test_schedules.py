"""EventBridge rate schedules on the embedded cloud (local/services/schedules.py), under moto with a fake clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.services.schedules import Scheduler, rate_seconds

LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:watch"


class _Router:
    """Stands in for local.services.events.EventRouter: records what would be delivered."""

    account_id, region = "123456789012", "us-east-1"

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def deliver(self, *, rule_name: str, rule_arn: str, target: Any, event: Any) -> None:
        self.deliveries.append((rule_name, dict(target), dict(event)))


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def events() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("events", region_name="us-east-1")
        yield client


def _rule(events: Any, name: str, expression: str, *, state: str = "ENABLED") -> None:
    events.put_rule(Name=name, ScheduleExpression=expression, State=state)
    events.put_targets(
        Rule=name, Targets=[{"Id": "t", "Arn": LAMBDA_ARN, "Input": json.dumps({"action": "end_watch"})}]
    )


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(5 minutes)", 300), ("rate(1 minute)", 60), ("rate(2 hours)", 7200), ("rate(7 days)", 604800)],
)
def test_rate_expressions_have_their_period(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_is_not_a_rate() -> None:
    assert rate_seconds("cron(0 12 * * ? *)") is None


def test_a_rate_rule_fires_every_period_with_the_scheduled_event_and_its_input(events: Any) -> None:
    # Given an enabled rate(5 minutes) rule, a disabled one and a cron one, each with a Lambda target
    _rule(events, "watch", "rate(5 minutes)")
    _rule(events, "paused", "rate(1 minute)", state="DISABLED")
    _rule(events, "nightly", "cron(0 3 * * ? *)")
    clock, router = _Clock(), _Router()
    scheduler = Scheduler(lambda service: events, router, clock=clock)  # type: ignore[arg-type]
    # When time passes: first sight, just short of a period, a period, then three periods at once
    fired = [scheduler.tick()]
    for step in (299, 1, 900):
        clock.now += step
        fired.append(scheduler.tick())
    # Then the enabled rate rule fired at its period, once for the missed ones; the others never
    assert fired == [[], [], ["watch"], ["watch"]]
    rule_name, target, event = router.deliveries[0]
    assert (rule_name, target["Arn"], json.loads(target["Input"])) == ("watch", LAMBDA_ARN, {"action": "end_watch"})
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
    assert event["resources"] == [events.describe_rule(Name="watch")["Arn"]]


def test_a_rule_disabled_then_enabled_starts_a_new_period(events: Any) -> None:
    # Given a rate(1 minute) rule seen once
    _rule(events, "watch", "rate(1 minute)")
    clock, router = _Clock(), _Router()
    scheduler = Scheduler(lambda service: events, router, clock=clock)  # type: ignore[arg-type]
    scheduler.tick()
    # When it is disabled past its period, then enabled again
    events.disable_rule(Name="watch")
    clock.now += 90
    assert scheduler.tick() == []
    events.enable_rule(Name="watch")
    assert scheduler.tick() == []
    # Then it fires a full period after being enabled, not at once
    clock.now += 60
    assert scheduler.tick() == ["watch"]
