"""Retrain: a monitoring alarm entered ALARM (EventBridge) → start a training run, or skip it and say why.

Environment: :class:`~shared.training.environment.RetrainEnvironment`. The decision is written to the audit
history; the alarm topic receives the latest report's alert sentences with it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.deployment.adapters import DeploymentStore
from shared.environment import read_environment
from shared.lake.adapters import S3ObjectStore
from shared.monitoring.alarms import check_of_alarm
from shared.promotion.adapters import Notifier
from shared.promotion.alarms import parse_alarm_event
from shared.training.environment import RetrainEnvironment
from shared.training.retrain import notification, retrain_on_alarm
from shared.training.retrain_adapters import DeploymentAudit, latest_alerts
from shared.training.trigger import StepFunctionsRuns
from shared.usecase.settings import UseCase, load_usecase

logger = Logger()
tracer = Tracer()


@lru_cache(maxsize=1)
def settings() -> RetrainEnvironment:
    return read_environment(RetrainEnvironment, "retrain")


@lru_cache(maxsize=1)
def usecase() -> UseCase:
    return load_usecase(settings().usecase_path)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    import boto3

    alarm, env, current = parse_alarm_event(event), settings(), usecase()
    check = check_of_alarm(current.name, alarm.alarm_name)
    if not alarm.is_alarm or check is None:
        logger.info("not a monitoring alarm entering ALARM", extra={"alarm": alarm.alarm_name, "state": alarm.state})
        return {"action": "ignored", "alarm_name": alarm.alarm_name}
    decision = retrain_on_alarm(
        StepFunctionsRuns(boto3.client("stepfunctions"), state_machine_arn=env.state_machine_arn),
        DeploymentAudit(DeploymentStore(boto3.client("dynamodb"), env.deployment_table)),
        usecase=current.name,
        alarm_name=alarm.alarm_name,
        alarm_time=alarm.state_timestamp,
        now=datetime.now(UTC),
        cooldown=timedelta(hours=current.monitoring.retrain_cooldown_hours),
    )
    alerts = latest_alerts(S3ObjectStore(boto3.client("s3")), env.lake_bucket, current.name, check=check)
    Notifier(boto3.client("sns"), env.alarm_topic_arn).publish(
        f"Sluice {current.name}: {check} alert",
        notification(current.name, decision, alerts.sentences, alerts.report_key),
    )
    logger.info("retrain decision", extra={"action": decision.action, "execution": decision.execution_name})
    return {"action": decision.action, "execution_name": decision.execution_name, "reason": decision.reason}
