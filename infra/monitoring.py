"""Production monitoring of one use case: the monitor on its schedule, the monitoring alarms, retraining from
evidence, and the dashboard's monitoring section.

The monitor function (numpy + pyarrow from the ingest dependency layer; no pandas or scipy) runs every
``[monitoring] schedule_minutes`` (an EventBridge ``rate`` rule, only when ``enabled``; the CLI invokes it by
name too). Its role reads the use case's ``predictions/``, ``feedback/`` and ``models/`` (baselines) prefixes and
reads and writes ``monitoring/<usecase>/`` only — the one prefix it writes. It prints its metrics as EMF
(:mod:`shared.monitoring.telemetry`), so it needs no ``cloudwatch:PutMetricData``.

One alarm per check type watches the run's alert count of that check (``<CheckType>Alerts``, dimension
``usecase``): Sum over one schedule period ≥ 1, missing data not breaching. Each notifies the alarm topic and,
entering ALARM, reaches the retrain function through an EventBridge rule matching the monitoring alarms' name
prefix (:mod:`shared.monitoring.alarms`). The retrain function starts the training state machine (cooldown, one
run at a time; :mod:`shared.training.retrain`), writes its decision to the deployment table's audit history and
publishes the latest report's alert sentences to the alarm topic — the sentence an alarm cannot carry.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.alerting import Alerting
from infra.nag import acknowledge, logical_id
from infra.python_function import add_role_statements, python_function
from infra.settings import USECASE_FILE_IN_BUNDLE, MonitoringFunctionSettings, MonitoringStackSettings
from shared.monitoring import telemetry
from shared.monitoring.alarms import ALARM_MEANINGS, ALARMED_CHECKS
from shared.monitoring.environment import MonitorEnvironment
from shared.monitoring.types import CheckType
from shared.promotion.alarms import ALARM_STATE, EVENT_DETAIL_TYPE, EVENT_SOURCE
from shared.training.environment import RetrainEnvironment

X_RAY_ACK = (
    "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions."
)
MONITOR_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
"""The monitor reads which versions serve (the deployment state)."""
RETRAIN_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:Query")
"""The retrain function appends audit events and reads the last retraining one back (its own use case only)."""


class Monitoring(Construct):
    """The monitor function and its schedule, the monitoring alarms, the retrain function and its rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MonitoringStackSettings,
        lake_bucket: s3.IBucket,
        deployment_table: dynamodb.ITable,
        training_state_machine: sfn.IStateMachine,
        shared_code_layer: lambda_.ILayerVersion,
        dependency_layer: lambda_.ILayerVersion,
        alerting: Alerting,
        dashboard: cloudwatch.Dashboard | None = None,
    ) -> None:
        """``dependency_layer``: numpy, pyarrow, pydantic, powertools (the ingest layer); ``dashboard``: the use
        case's dashboard, which gains a monitoring section."""
        super().__init__(scope, construct_id)
        self.settings = settings
        self.lake_bucket = lake_bucket
        self.deployment_table = deployment_table
        self.training_state_machine = training_state_machine
        self.alerting = alerting
        self.layers = [dependency_layer, shared_code_layer]
        self.dead_letter_queue = self._build_dead_letter_queue()
        alerting.notify_on_alarm(self._build_dead_letter_alarm())
        self.monitor_function = self._build_monitor_function()
        alerting.notify_on_alarm(self._build_monitor_errors_alarm())
        self.schedule_rule = self._build_schedule_rule() if settings.enabled else None
        self.alarms = self._build_alarms()
        for alarm in self.alarms.values():
            alerting.notify_on_alarm(alarm)
        self.retrain_function = self._build_retrain_function()
        self.retrain_rule = self._build_retrain_rule()
        if dashboard is not None:
            self.add_dashboard_section(dashboard)

    # --- failure handling ------------------------------------------------------------------------

    def _build_dead_letter_queue(self) -> sqs.Queue:
        return Alerting.dead_letter_queue(
            self,
            "DeadLetterQueue",
            retention=self.settings.dead_letter_retention,
            collects="the dead-letter queue of the monitoring schedule, the retraining rule and the retrain "
            "function's asynchronous invocations",
        )

    def _build_dead_letter_alarm(self) -> cloudwatch.Alarm:
        return Alerting.dead_letter_alarm(
            self,
            "DeadLetterAlarm",
            queue=self.dead_letter_queue,
            description=(
                f"A monitoring schedule or retraining event of {self.settings.usecase_name} was not handled after "
                "retries; it waits in the monitoring dead-letter queue."
            ),
        )

    def _build_monitor_errors_alarm(self) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            "MonitorErrorsAlarm",
            alarm_description=(
                f"The {self.settings.usecase_name} monitor failed: no report and no alert counts for this run. "
                "See the monitor function's logs."
            ),
            metric=self.monitor_function.metric_errors(
                period=self.settings.alarm_period, statistic=cloudwatch.Stats.SUM
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    # --- functions -------------------------------------------------------------------------------

    def _function(
        self,
        construct_id: str,
        *,
        fn: MonitoringFunctionSettings,
        description: str,
        environment: dict[str, str],
        **options: Any,
    ) -> lambda_.Function:
        settings = self.settings
        return python_function(
            self,
            construct_id,
            source_dir=fn.source_dir,
            usecase_file=settings.usecase_file,
            description=description,
            memory_size_mb=fn.memory_size_mb,
            timeout=fn.timeout,
            layers=self.layers,
            log_retention=settings.log_retention,
            environment=environment,
            **options,
        )

    def _powertools(self, fn: MonitoringFunctionSettings) -> dict[str, str]:
        return {
            "service_name": fn.service_name,
            "metrics_namespace": self.settings.metrics_namespace,
            "log_level": self.settings.log_level,
        }

    def _build_monitor_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._function(
            "MonitorFunction",
            fn=settings.monitor,
            description=f"Monitor {settings.usecase_name}'s served traffic and labels against the training baseline",
            environment=MonitorEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                lake_bucket=lake.bucket_name,
                deployment_table=self.deployment_table.table_name,
                model_package_group=settings.model_package_group_name,
                **self._powertools(settings.monitor),
            ),
            retry_attempts=0,  # a failed run is not retried: the next scheduled run covers its windows
        )
        read_prefixes = (
            settings.predictions_prefix,
            settings.feedback_prefix,
            settings.models_prefix,
            settings.monitoring_prefix,
        )
        statements = [
            iam.PolicyStatement(
                sid="ReadTrafficLabelsBaselines",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{prefix}*") for prefix in read_prefixes],
            ),
            iam.PolicyStatement(
                sid="WriteMonitoring",
                actions=["s3:PutObject"],
                resources=[lake.arn_for_objects(f"{settings.monitoring_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket"],
                resources=[lake.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in read_prefixes]}},
            ),
            iam.PolicyStatement(
                sid="ReadDeploymentState",
                actions=list(MONITOR_TABLE_ACTIONS),
                resources=[self.deployment_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="DescribeModelPackages",
                actions=["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"],
                resources=[self._model_package_arn("*"), self._model_package_group_arn()],
            ),
            iam.PolicyStatement(sid="ListModelPackages", actions=["sagemaker:ListModelPackages"], resources=["*"]),
        ]
        policy = add_role_statements(function, statements)
        lake_id = logical_id(lake)
        for prefix in read_prefixes:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{prefix}*]",
                f"Objects under the lake's {prefix} prefix are keyed by hour, day, run id or version; the monitor "
                "reads that prefix only (and writes only under its own monitoring prefix).",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            f"model-package/{settings.model_package_group_name}/*]",
            "Served versions are versions of this use case's model package group, numbered by SageMaker as they "
            "are registered; the monitor describes them (their baselines) only.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "sagemaker:ListModelPackages supports no resource-level permission (the monitor lists its group's "
            "versions, read only); " + X_RAY_ACK,
        )
        return function

    def _build_retrain_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._function(
            "RetrainFunction",
            fn=settings.retrain,
            description=(
                f"Start a {settings.usecase_name} training run when a monitoring alarm fires (cooldown, one at a time)"
            ),
            environment=RetrainEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                state_machine_arn=self.training_state_machine.state_machine_arn,
                deployment_table=self.deployment_table.table_name,
                lake_bucket=lake.bucket_name,
                alarm_topic_arn=self.alerting.topic.topic_arn,
                **self._powertools(settings.retrain),
            ),
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
            retry_attempts=settings.retry_attempts,
            max_event_age=settings.max_event_age,
        )
        statements = [
            iam.PolicyStatement(
                sid="StartTrainingRuns",
                actions=["states:ListExecutions", "states:StartExecution"],
                resources=[self.training_state_machine.state_machine_arn],
            ),
            iam.PolicyStatement(
                sid="AuditRetraining",
                actions=list(RETRAIN_TABLE_ACTIONS),
                resources=[self.deployment_table.table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [settings.usecase_name]}},
            ),
            iam.PolicyStatement(
                sid="ReadReports",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{settings.reports_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="ListReports",
                actions=["s3:ListBucket"],
                resources=[lake.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{settings.reports_prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="NotifyAlarmTopic", actions=["sns:Publish"], resources=[self.alerting.topic.topic_arn]
            ),
        ]
        policy = add_role_statements(function, statements)
        role = function.role
        assert role is not None
        # The alarm topic is KMS-encrypted: publishing to it needs the key.
        self.alerting.topic_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{logical_id(lake)}.Arn>/{settings.reports_prefix}*]",
            "Reports are keyed by run id under the use case's reports prefix; the retrain function reads the "
            "newest one's alert sentences only.",
        )
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", X_RAY_ACK)
        return function

    # --- rules -----------------------------------------------------------------------------------

    def _build_schedule_rule(self) -> events.Rule:
        settings = self.settings
        return events.Rule(
            self,
            "ScheduleRule",
            description=f"Run the {settings.usecase_name} monitor every {settings.schedule_minutes} minutes",
            schedule=events.Schedule.expression(settings.schedule),
            targets=[
                targets.LambdaFunction(
                    self.monitor_function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=settings.retry_attempts,
                    max_event_age=Duration.minutes(settings.schedule_minutes),
                )
            ],
        )

    def _build_retrain_rule(self) -> events.Rule:
        settings = self.settings
        return events.Rule(
            self,
            "RetrainRule",
            description=f"A {settings.usecase_name} monitoring alarm entered ALARM: consider a training run",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE],
                detail_type=[EVENT_DETAIL_TYPE],
                detail={
                    "alarmName": events.Match.prefix(settings.alarm_name_prefix),
                    "state": {"value": [ALARM_STATE]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.retrain_function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=settings.retry_attempts,
                    max_event_age=settings.max_event_age,
                )
            ],
        )

    # --- alarms ----------------------------------------------------------------------------------

    def alert_count(self, check: CheckType) -> cloudwatch.Metric:
        """The run's alert count of ``check`` (dimension ``usecase``), summed over one schedule period."""
        return cloudwatch.Metric(
            namespace=telemetry.NAMESPACE,
            metric_name=telemetry.ALERT_METRICS[check],
            dimensions_map={telemetry.DIMENSION_USECASE: self.settings.usecase_name},
            statistic=cloudwatch.Stats.SUM,
            period=self.settings.alarm_period,
        )

    def _build_alarms(self) -> dict[CheckType, cloudwatch.Alarm]:
        settings = self.settings
        alarms: dict[CheckType, cloudwatch.Alarm] = {}
        for check in ALARMED_CHECKS:
            construct_id = "".join(part.title() for part in check.split("_")) + "Alarm"
            alarms[check] = cloudwatch.Alarm(
                self,
                construct_id,
                alarm_name=settings.alarm_name(check),
                alarm_description=(
                    f"{ALARM_MEANINGS[check]} ({settings.usecase_name}). The alert sentences — what, where, how "
                    f"sure — are in the latest report under s3://<lake>/{settings.reports_prefix} and in the "
                    "retrain function's notification that follows this alarm."
                ),
                metric=self.alert_count(check),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                datapoints_to_alarm=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        return alarms

    # --- the dashboard ---------------------------------------------------------------------------

    def add_dashboard_section(self, dashboard: cloudwatch.Dashboard) -> None:
        """Monitoring alarms; alert counts per check type; score drift (PSI) and per-feature drift (PSI, every
        feature and version through a SEARCH expression)."""
        settings, t = self.settings, telemetry
        period = settings.alarm_period
        usecase = settings.usecase_name
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"## Monitoring\nReports: `s3://<lake>/{settings.reports_prefix}` · `python -m cli monitor`",
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Monitoring alarms (ALARM considers a training run)",
                alarms=list(self.alarms.values()),
                width=24,
                height=3,
            )
        )

        def search(metric_name: str, dimensions: tuple[str, ...]) -> cloudwatch.MathExpression:
            """Every series of ``metric_name`` of this use case, one per value of the other dimensions."""
            schema = ",".join([t.NAMESPACE, *dimensions])
            expression = (
                f'SEARCH(\'{{{schema}}} MetricName="{metric_name}" {t.DIMENSION_USECASE}="{usecase}"\', '
                f"'Average', {int(period.to_seconds())})"
            )
            return cloudwatch.MathExpression(expression=expression, using_metrics={}, period=period)

        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Alerts per check type (per run)",
                left=[self.alert_count(check).with_(label=check) for check in ALARMED_CHECKS],
                width=12,
                height=6,
                stacked=True,
            ),
            cloudwatch.GraphWidget(
                title="Prediction drift: score PSI per model version",
                left=[search(t.PREDICTION_DRIFT_PSI, t.VERSION_DIMENSIONS)],
                width=12,
                height=6,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Feature drift: PSI per feature and model version",
                left=[search(t.FEATURE_DRIFT, t.FEATURE_DIMENSIONS)],
                width=12,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="AUC per segment (realized) and overall estimate (CBPE)",
                left=[
                    search(t.SEGMENT_METRICS["auc"], t.SEGMENT_DIMENSIONS),
                    search(t.ESTIMATED_AUC, t.SEGMENT_DIMENSIONS),
                ],
                width=12,
                height=6,
            ),
        )

    # --- ARNs ------------------------------------------------------------------------------------

    def _model_package_arn(self, version: str) -> str:
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{self.settings.model_package_group_name}/{version}",
        )

    def _model_package_group_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource="model-package-group",
            resource_name=self.settings.model_package_group_name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
