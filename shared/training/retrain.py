"""Retraining from evidence: a monitoring alarm entering ALARM may start one training run.

A run starts unless the last run started by monitoring is younger than the use case's cooldown
(``[monitoring] retrain_cooldown_hours``) or a training execution is in progress (one at a time, whatever
started it). Every decision — started, or skipped and why — is appended to the deployment table's audit history
(action :data:`RETRAIN_STARTED` or :data:`RETRAIN_SKIPPED`, actor :data:`ACTOR`); the cooldown reads the latest
:data:`RETRAIN_STARTED` event back. The execution is named after the alarm's state-change time, so a redelivered
event finds it already there and starts nothing. The new version goes through promotion as any other: nothing
here approves or promotes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from shared.training.trigger import EXECUTION_NAME_MAX, TrainingRuns

RetrainAction = Literal["retrain_started", "retrain_skipped"]
RETRAIN_STARTED: RetrainAction = "retrain_started"
RETRAIN_SKIPPED: RetrainAction = "retrain_skipped"
ACTOR = "monitoring"
TRIGGER = "monitoring_alarm"
"""``trigger`` of the training execution's input (the data trigger's is ``new_data``)."""


class RetrainAudit(Protocol):
    def last_started(self, usecase: str) -> datetime | None:
        """When monitoring last started a training run of ``usecase`` (None: never)."""
        ...

    def record(self, usecase: str, event: dict[str, Any], *, at: datetime) -> None: ...


@dataclass(frozen=True, kw_only=True)
class RetrainDecision:
    action: RetrainAction
    execution_name: str
    reason: str
    alarm_name: str
    cooldown_until: datetime | None = None
    in_progress: tuple[str, ...] = ()

    @property
    def started(self) -> bool:
        return self.action == RETRAIN_STARTED

    def audit_event(self, *, at: datetime) -> dict[str, Any]:
        """The audit item's fields (the deployment store adds ``at`` and the keys)."""
        return {
            "time": at.isoformat(),
            "actor": ACTOR,
            "action": self.action,
            "reason": self.reason,
            "alarm_name": self.alarm_name,
            "execution_name": self.execution_name,
            "cooldown_until": self.cooldown_until.isoformat() if self.cooldown_until else "",
            "in_progress": list(self.in_progress),
        }


def retrain_execution_name(usecase: str, alarm_time: datetime) -> str:
    """``telco-churn-retrain-20261123t001500``: one per alarm state change (redeliveries share it)."""
    name = f"{usecase.replace('_', '-')}-retrain-{alarm_time.astimezone(UTC):%Y%m%dt%H%M%S}"
    return name[-EXECUTION_NAME_MAX:].lstrip("-")


def decide_retrain(
    *,
    usecase: str,
    alarm_name: str,
    alarm_time: datetime,
    now: datetime,
    last_started: datetime | None,
    in_progress: Sequence[str],
    cooldown: timedelta,
) -> RetrainDecision:
    """Start, or skip because of the cooldown or a run in progress (the cooldown is checked first)."""
    name = retrain_execution_name(usecase, alarm_time)
    if last_started is not None and now < last_started + cooldown:
        until = last_started + cooldown
        return RetrainDecision(
            action=RETRAIN_SKIPPED,
            execution_name=name,
            alarm_name=alarm_name,
            cooldown_until=until,
            reason=f"cooldown: monitoring started a run at {last_started.isoformat()}; none before {until.isoformat()}",
        )
    if in_progress:
        return RetrainDecision(
            action=RETRAIN_SKIPPED,
            execution_name=name,
            alarm_name=alarm_name,
            in_progress=tuple(in_progress),
            reason=f"a training run is in progress: {', '.join(in_progress)}",
        )
    return RetrainDecision(
        action=RETRAIN_STARTED, execution_name=name, alarm_name=alarm_name, reason=f"{alarm_name} entered ALARM"
    )


def retrain_on_alarm(
    runs: TrainingRuns,
    audit: RetrainAudit,
    *,
    usecase: str,
    alarm_name: str,
    alarm_time: datetime,
    now: datetime,
    cooldown: timedelta,
) -> RetrainDecision:
    """Decide, start the run if so decided, and write the decision to the audit history."""
    decision = decide_retrain(
        usecase=usecase,
        alarm_name=alarm_name,
        alarm_time=alarm_time,
        now=now,
        last_started=audit.last_started(usecase),
        in_progress=runs.running(),
        cooldown=cooldown,
    )
    if decision.started:
        document = {"trigger": TRIGGER, "alarm_name": alarm_name, "requested_at": now.isoformat()}
        if not runs.start(decision.execution_name, document):
            decision = RetrainDecision(
                action=RETRAIN_SKIPPED,
                execution_name=decision.execution_name,
                alarm_name=alarm_name,
                reason=f"{decision.execution_name} already exists (a redelivered alarm event)",
            )
    audit.record(usecase, decision.audit_event(at=now), at=now)
    return decision


def notification(usecase: str, decision: RetrainDecision, sentences: Sequence[str], report_key: str | None) -> str:
    """The message the alarm topic receives: the report's alert sentences, where the report is, the decision."""
    lines = [f"Monitoring alarm {decision.alarm_name} of {usecase}."]
    if sentences:
        lines += ["", "Alerts of the latest monitoring run:", *(f"- {sentence}" for sentence in sentences)]
    else:
        lines += ["", "No monitoring report with alerts was found; see the monitor's logs."]
    if report_key:
        lines.append(f"Report: {report_key}")
    verb = "started" if decision.started else "skipped"
    lines += ["", f"Retraining {verb}: {decision.reason} (execution {decision.execution_name})."]
    if decision.started:
        lines.append("The new version will go through promotion as any other; nothing is promoted automatically.")
    return "\n".join(lines)
