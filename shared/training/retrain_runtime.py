"""The retrain function's service: a monitoring alarm's state change → start a training run or skip it, audited
and announced. Built once from :class:`~shared.training.environment.RetrainEnvironment` (clients on first use)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.clients import client_factory
from shared.deployment.adapters import DeploymentStore
from shared.environment import read_environment
from shared.lake.adapters import S3ObjectStore
from shared.monitoring.alarms import check_of_alarm
from shared.promotion.adapters import Notifier
from shared.promotion.alarms import AlarmStateChange
from shared.training.environment import RetrainEnvironment
from shared.training.retrain import RetrainAudit, notification, retrain_on_alarm
from shared.training.retrain_adapters import DeploymentAudit, ReportStore, latest_alerts
from shared.training.trigger import StepFunctionsRuns, TrainingRuns
from shared.usecase.settings import UseCase, load_usecase


@dataclass(frozen=True, kw_only=True)
class RetrainService:
    usecase: UseCase
    runs: TrainingRuns
    audit: RetrainAudit
    reports: ReportStore
    lake_bucket: str
    notifier: Notifier

    def handle(self, alarm: AlarmStateChange, *, now: datetime) -> dict[str, Any]:
        """Ignore what is not one of this use case's monitoring alarms entering ALARM; otherwise decide, audit
        (inside :func:`retrain_on_alarm`) and announce the decision with the latest report's alert sentences."""
        name = self.usecase.name
        check = check_of_alarm(name, alarm.alarm_name)
        if not alarm.is_alarm or check is None:
            return {"action": "ignored", "alarm_name": alarm.alarm_name}
        decision = retrain_on_alarm(
            self.runs,
            self.audit,
            usecase=name,
            alarm_name=alarm.alarm_name,
            alarm_time=alarm.state_timestamp,
            now=now,
            cooldown=timedelta(hours=self.usecase.monitoring.retrain_cooldown_hours),
        )
        alerts = latest_alerts(self.reports, self.lake_bucket, name, check=check)
        self.notifier.publish(
            f"Sluice {name}: {check} alert", notification(name, decision, alerts.sentences, alerts.report_key)
        )
        return {"action": decision.action, "execution_name": decision.execution_name, "reason": decision.reason}


def service_from_environment(function: str = "retrain") -> RetrainService:
    settings = read_environment(RetrainEnvironment, function)
    client = client_factory()
    return RetrainService(
        usecase=load_usecase(settings.usecase_path),
        runs=StepFunctionsRuns(client("stepfunctions"), state_machine_arn=settings.state_machine_arn),
        audit=DeploymentAudit(DeploymentStore(client("dynamodb"), settings.deployment_table)),
        reports=S3ObjectStore(client("s3")),
        lake_bucket=settings.lake_bucket,
        notifier=Notifier(client("sns"), settings.alarm_topic_arn),
    )
