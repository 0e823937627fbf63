"""EventBridge schedules on the embedded cloud: ``rate(...)`` rules fire their targets on time.

moto stores a rule's ``ScheduleExpression`` but never fires it. :class:`Scheduler` does, as EventBridge
does for a rate expression: every period from the moment it first sees the rule enabled (EventBridge
counts from the rule's creation), with the ``Scheduled Event`` EventBridge sends (``source``
``aws.events``, ``resources`` the rule's ARN, ``detail`` empty), through the same delivery as pattern
rules (:meth:`local.services.events.EventRouter.deliver`: Lambda, SNS and Step Functions targets, with the
target's ``Input`` / ``InputPath`` / ``InputTransformer``). A period missed while the process was busy
fires once, not once per missed period. Not emulated: ``cron(...)`` expressions (said once per rule),
``at(...)``, EventBridge Scheduler (a different service), and targets other than the three above.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.services.events import EventRouter
from local.services.ticker import Ticker

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """The period of ``rate(N unit)`` in seconds; None for any other expression (``cron(...)``)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule_arn: str, *, account_id: str, region: str, at: datetime) -> dict[str, Any]:
    """The event EventBridge delivers for a schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler:
    """Fires the enabled ``rate(...)`` rules of the default bus (see the module docstring)."""

    def __init__(
        self,
        client_factory: Callable[[str], Any],
        router: EventRouter,
        *,
        tick_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client_factory
        self._router = router
        self._clock = clock
        self._next: dict[str, float] = {}
        self._told: set[str] = set()
        self._ticker = Ticker("local-scheduler", tick_seconds, self.tick)
        self.fired: list[str] = []
        """Rule names, once per firing (for tests and diagnostics)."""

    def tick(self) -> list[str]:
        """Fire every rule whose period has come; return their names."""
        now = self._clock()
        due: list[str] = []
        seen: set[str] = set()
        for rule in self._rules():
            name, expression = str(rule["Name"]), str(rule.get("ScheduleExpression") or "")
            if not expression or rule.get("State") != "ENABLED":
                continue
            period = rate_seconds(expression)
            if period is None:
                if name not in self._told:
                    self._told.add(name)
                    logger.info("rule %s: schedule %s is not fired locally (only rate(...) is)", name, expression)
                continue
            seen.add(name)
            next_at = self._next.setdefault(name, now + period)
            if now < next_at:
                continue
            while next_at <= now:
                next_at += period
            self._next[name] = next_at
            self._fire(rule, now)
            due.append(name)
        for gone in set(self._next) - seen:  # deleted or disabled: a later enable starts a new period
            del self._next[gone]
        return due

    def _rules(self) -> list[dict[str, Any]]:
        events = self._client("events")
        rules: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = events.list_rules(**({"NextToken": token} if token else {}))
            rules += page.get("Rules", [])
            token = page.get("NextToken")
            if not token:
                return rules

    def _fire(self, rule: dict[str, Any], now: float) -> None:
        name, arn = str(rule["Name"]), str(rule["Arn"])
        event = scheduled_event(
            arn, account_id=self._router.account_id, region=self._router.region, at=datetime.fromtimestamp(now, UTC)
        )
        targets = self._client("events").list_targets_by_rule(Rule=name).get("Targets", [])
        for target in targets:
            self._router.deliver(rule_name=name, rule_arn=arn, target=target, event=event)
        self.fired.append(name)
        logger.info("rule %s: schedule fired (%d target(s))", name, len(targets))

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._ticker.stop(timeout_s)
