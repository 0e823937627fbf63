"""Promotion: a candidate model goes offline gate → replay → shadow → canary steps → champion, and rolls back
on a failed stage, a broken step, a human's abort or a candidate alarm.

The promotion state machine (Standard) runs one promotion; its input is
``{"model_package_arn": str, "requested_by": str}``::

    Prepare → OfflineGate → OfflineVerdict ─pass→ Replay → ReplayVerdict ─pass→ StartShadow → BakeShadow (Wait)
        → AnalyzeShadow → ShadowVerdict
            pass         → StartCanary
            inconclusive → CanExtendShadowBake: extensions < max ? ExtendShadowBake → BakeShadow
                           : AskHumanAboutShadow (task token) → HumanDecisionOnShadow: approve ? StartCanary
    StartCanary ($.canary = {steps, index: 0}) → SetWeight (steps[index]) → BakeCanary (Wait) → AnalyzeCanary
        → CanaryVerdict
            pass         → LastCanaryStep: index = last ? Promote : NextCanaryStep (index + 1) → SetWeight
            inconclusive → CanExtendCanaryBake: extensions < max ? ExtendCanaryBake → BakeCanary
                           : AskHumanAboutCanary (task token) → HumanDecisionOnCanary: approve ? LastCanaryStep
    Promote → Finish (timeline) → Promoted (Succeed)

    any verdict "fail" → CandidateRejected ─┐
    a human's abort, any Task's error ──────┴→ Rollback (λ) → NotifyRollback (SNS) → RolledBack (Fail, the reason)
    Rollback's own error → NotifyRollbackFailed (SNS) → RollbackFailed (Fail)

Every Lambda task retries on Lambda service errors only and catches ``States.ALL`` into the rollback
path, so a broken step never leaves the candidate serving. Two exceptions, on purpose: the tasks of
the rollback path catch into its terminal states (no loop), and ``Finish`` (the timeline, written
after ``Promote``) catches into ``Promoted``: a missing timeline does not undo a promotion, which the
watch-window alarms keep guarding. The offline gate and the replay pass or fail (an inconclusive
verdict fails them); shadow and canary analyses may also be inconclusive (too few samples), which
bakes again up to ``max_bake_extensions`` times and then asks a human (``approve`` / ``abort``:
``SendTaskSuccess`` with ``{"decision": "approve"}`` / ``SendTaskFailure``; no answer within
``human_decision_timeout`` rolls back). The canary is a loop over a step index (``$.canary.index``
into the constant ``$.canary.steps``), not one state per step.

State transitions per promotion (Standard bills each): with N canary steps the happy path takes
6N + 12 (36 for the default 0.01 → 0.05 → 0.25 → 1.0): Prepare, OfflineGate, OfflineVerdict, Replay,
ReplayVerdict, StartShadow, BakeShadow, AnalyzeShadow, ShadowVerdict, StartCanary (10); per step
SetWeight, BakeCanary, AnalyzeCanary, CanaryVerdict, LastCanaryStep (5N) and NextCanaryStep between
steps (N - 1); Promote, Finish, Promoted (3). Each bake extension adds 5 (CanExtend…, Extend…, the
Wait, the analysis, the verdict), asking a human 2 more (the ask, the decision), each Lambda retry 1,
and a rollback from a stage 4 (CandidateRejected, Rollback, NotifyRollback, RolledBack).

The promotion step function (``functions/promotion_step``) runs every task; its event is
``{"action": ..., "usecase", "execution_arn", "execution_name", "model_package_arn", "requested_by", ...}``:

    action          extra fields                                 returns (what the state machine keeps)
    prepare         -                                            (discarded)
    offline_gate    -                                            {"verdict": "pass"|"fail", "reason"} → $.verdict
    replay          -                                            {"verdict": "pass"|"fail", "reason"} → $.verdict
    start_shadow    -                                            (discarded; $.bake = {"extensions": 0})
    set_weight      stage "canary", step (index), weight         (discarded; $.bake = {"extensions": 0})
    analyze         stage "shadow"|"canary", step, weight,       {"verdict": "pass"|"fail"|"inconclusive",
                    extensions (bakes so far beyond the first)    "reason"} → $.verdict
                    — the window starts when the stage did (the function's own record)
    wait_for_human  stage, reason, task_token                    (returns at once; the answer comes by token)
    promote         -                                            (discarded)
    finish          -                                            (discarded; writes the timeline)
    rollback        error ({"Error", "Cause"}), reason           (discarded; undoes only what this execution did)
    end_watch       (from the schedule: only action and usecase) stage watch → idle once the window has passed

Candidate alarms (static, one set per use case; names ``sluice-<usecase>-candidate-<what>``) watch the
score function's metrics on dimensions [usecase, variant] — ``challenger`` during the canary,
``shadow`` during the shadow stage, ``champion`` for the watch-window pair
(``...-candidate-watch-<what>``). An alarm entering ALARM reaches the rollback function through an
EventBridge rule on the name prefix (and notifies the alarm topic). Alarms are static; what arms them
is the deployment stage: the rollback function acts on a candidate alarm while a promotion is in
shadow or canary, and on a watch alarm only while the stage is ``watch`` and the promotion is younger
than ``watch_window``. A scheduled rule (``watch_check_schedule``, every 5 minutes) calls the
promotion step function with ``{"action": "end_watch"}``, which returns a finished watch to ``idle``.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct, IConstruct

from infra.alerting import Alerting
from infra.nag import acknowledge, logical_id
from infra.python_function import python_function
from infra.settings import USECASE_FILE_IN_BUNDLE, PromotionFunctionSettings, PromotionSettings
from infra.training_pipeline import LAMBDA_SERVICE_ERRORS
from shared.promotion import alarms as alarm_names
from shared.promotion.environment import PromotionEnvironment, RollbackEnvironment
from shared.promotion.steps import DECISION_APPROVE, StepAction
from shared.promotion.transitions import PromotionOutcome, Stage, Verdict
from shared.scoring import telemetry

# Where the state machine keeps what flows between states.
VERDICT_PATH = "$.verdict"
BAKE_PATH = "$.bake"
CANARY_PATH = "$.canary"
HUMAN_PATH = "$.human"
FAILURE_PATH = "$.failure"

# The DynamoDB actions of each function on the deployment table (state item, promotion item, audit events).
DEPLOYMENT_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
X_RAY_ACK = (
    "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions."
)


class Promotion(Construct):
    """Candidate alarms, the rollback function and its rule, the promotion step function and state machine,
    the watch-window schedule and the use case's dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PromotionSettings,
        lake_bucket: s3.IBucket,
        deployment_table: dynamodb.ITable,
        shared_code_layer: lambda_.ILayerVersion,
        scoring_layer: lambda_.ILayerVersion,
        alerting: Alerting,
        endpoint_role: iam.IRole | None = None,
    ) -> None:
        """``endpoint_role``: the role a heavy model's endpoint runs its models as (the serving endpoint's);
        with it, the promotion shapes that endpoint too (models, configurations, variant weights)."""
        super().__init__(scope, construct_id)
        self.settings = settings
        self.endpoint_role = endpoint_role if settings.endpoint_name is not None else None
        self.lake_bucket = lake_bucket
        self.deployment_table = deployment_table
        self.alerting = alerting
        self.layers = [scoring_layer, shared_code_layer]
        self.candidate_alarms = self._build_candidate_alarms()
        self.watch_alarms = self._build_watch_alarms()
        for alarm in self.alarms:
            alerting.notify_on_alarm(alarm)
        self.dead_letter_queue = self._build_dead_letter_queue()
        alerting.notify_on_alarm(self._build_dead_letter_alarm())
        self.step_function = self._build_step_function()
        self.state_machine = self._build_state_machine()
        self.rollback_function = self._build_rollback_function()
        self.rollback_rule = self._build_rollback_rule()
        self.watch_schedule = self._build_watch_schedule()
        self.dashboard = self._build_dashboard()

    @property
    def alarms(self) -> list[cloudwatch.Alarm]:
        return [*self.candidate_alarms.values(), *self.watch_alarms.values()]

    @property
    def dashboard_name(self) -> str:
        return self.settings.dashboard_name

    # --- alarms ----------------------------------------------------------------------------------

    def _metric(self, metric_name: str, variant: str, statistic: str) -> cloudwatch.Metric:
        """One score-function metric on the alarms' dimension set [usecase, variant]."""
        return cloudwatch.Metric(
            namespace=telemetry.NAMESPACE,
            metric_name=metric_name,
            dimensions_map={
                telemetry.DIMENSION_USECASE: self.settings.usecase_name,
                telemetry.DIMENSION_VARIANT: variant,
            },
            statistic=statistic,
            period=self.settings.alarm_period,
        )

    def _rate(self, numerator: str, denominator: str, variant: str) -> cloudwatch.MathExpression:
        """``100 * numerator / denominator`` per period. A period without errors counts 0 errors (FILL 0);
        a period with errors and nothing counted below them divides by 1 (FILL 1), so a candidate whose
        every request fails still breaches; a period without either gives 0 (not breaching)."""
        n, d = f"{numerator.lower()}_{variant}", f"{denominator.lower()}_{variant}"  # ids unique per graph
        return cloudwatch.MathExpression(
            expression=f"100 * FILL({n}, 0) / FILL({d}, 1)",
            using_metrics={
                n: self._metric(numerator, variant, cloudwatch.Stats.SUM),
                d: self._metric(denominator, variant, cloudwatch.Stats.SUM),
            },
            label=f"{numerator} per 100 {denominator} ({variant})",
            period=self.settings.alarm_period,
        )

    def _alarm(self, what: str, *, metric: cloudwatch.IMetric, threshold: float, description: str) -> cloudwatch.Alarm:
        """``sluice-<usecase>-candidate-<what>`` (names from :mod:`shared.promotion.alarms`)."""
        settings = self.settings
        name = alarm_names.candidate_alarm_name(settings.usecase_name, what)
        return cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in what.split("-")) + "Alarm",
            alarm_name=name,
            alarm_description=f"{description} Entering ALARM rolls the promotion of {settings.usecase_name} back.",
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=settings.alarm_evaluation_periods,
            datapoints_to_alarm=settings.alarm_datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _build_candidate_alarms(self) -> dict[str, cloudwatch.Alarm]:
        s, t, a = self.settings, telemetry, alarm_names
        return {
            a.ERROR_RATE: self._alarm(
                a.ERROR_RATE,
                metric=self._rate(t.ERRORS, t.PREDICTIONS, t.CHALLENGER),
                threshold=s.max_error_rate * 100,
                description="The canary (challenger) fails more requests than max_error_rate (percent).",
            ),
            a.LATENCY_P99: self._alarm(
                a.LATENCY_P99,
                metric=self._metric(t.LATENCY, t.CHALLENGER, cloudwatch.Stats.p(99)),
                threshold=s.latency_budget_ms,
                description="The canary's (challenger's) p99 latency exceeds latency_budget_ms.",
            ),
            a.FALLBACK_RATE: self._alarm(
                a.FALLBACK_RATE,
                metric=self._rate(t.FALLBACKS, t.PREDICTIONS, t.CHALLENGER),
                threshold=s.max_fallback_rate * 100,
                description="The canary (challenger) falls back more often than max_fallback_rate (percent).",
            ),
            a.DIVERGENCE: self._alarm(
                a.DIVERGENCE,
                metric=self._metric(t.SCORE_DELTA, t.SHADOW, cloudwatch.Stats.AVERAGE),
                threshold=s.max_divergence,
                description="The shadow's scores differ from the champion's by more than max_divergence on average.",
            ),
            a.SHADOW_ERRORS: self._alarm(
                a.SHADOW_ERRORS,
                metric=self._rate(t.SHADOW_ERRORS, t.SHADOW_SCORES, t.SHADOW),
                threshold=s.max_error_rate * 100,
                description="The shadow fails to score more requests than max_error_rate (percent).",
            ),
        }

    def _build_watch_alarms(self) -> dict[str, cloudwatch.Alarm]:
        s, t, a = self.settings, telemetry, alarm_names
        return {
            a.WATCH_ERROR_RATE: self._alarm(
                a.WATCH_ERROR_RATE,
                metric=self._rate(t.ERRORS, t.PREDICTIONS, t.CHAMPION),
                threshold=s.max_error_rate * 100,
                description="The champion fails more requests than max_error_rate (percent); acts during the watch "
                "window after a promotion only.",
            ),
            a.WATCH_LATENCY_P99: self._alarm(
                a.WATCH_LATENCY_P99,
                metric=self._metric(t.LATENCY, t.CHAMPION, cloudwatch.Stats.p(99)),
                threshold=s.latency_budget_ms,
                description="The champion's p99 latency exceeds latency_budget_ms; acts during the watch window "
                "after a promotion only.",
            ),
        }

    # --- failure handling ------------------------------------------------------------------------

    def _build_dead_letter_queue(self) -> sqs.Queue:
        return Alerting.dead_letter_queue(
            self,
            "DeadLetterQueue",
            retention=self.settings.dead_letter_retention,
            collects="the dead-letter queue of the rollback rule, the watch schedule and the rollback function's "
            "asynchronous invocations",
        )

    def _build_dead_letter_alarm(self) -> cloudwatch.Alarm:
        return Alerting.dead_letter_alarm(
            self,
            "DeadLetterAlarm",
            queue=self.dead_letter_queue,
            description=(
                f"A rollback or watch-window event of {self.settings.usecase_name} was not handled after retries; "
                "it waits in the promotion dead-letter queue. Check the deployment state by hand."
            ),
        )

    # --- functions -------------------------------------------------------------------------------

    def _build_function(
        self,
        construct_id: str,
        *,
        fn: PromotionFunctionSettings,
        description: str,
        environment: type[PromotionEnvironment] = PromotionEnvironment,
        variables: dict[str, str] | None = None,
        **options: Any,
    ) -> lambda_.Function:
        """``variables``: the function's own, by ``environment``'s field names, after the promotion's."""
        settings = self.settings
        heavy = settings.endpoint_name is not None and self.endpoint_role is not None
        function = python_function(
            self,
            construct_id,
            source_dir=fn.source_dir,
            usecase_file=settings.usecase_file,
            description=description,
            memory_size_mb=fn.memory_size_mb,
            timeout=fn.timeout,
            layers=self.layers,
            log_retention=settings.log_retention,
            environment=environment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                deployment_table=self.deployment_table.table_name,
                lake_bucket=self.lake_bucket.bucket_name,
                alarm_topic_arn=self.alerting.topic.topic_arn,
                model_package_group=settings.model_package_group_name,
                endpoint_name=settings.endpoint_name if heavy else None,
                endpoint_role_arn=self.endpoint_role.role_arn if heavy and self.endpoint_role is not None else None,
                **(variables or {}),
                service_name=fn.service_name,
                metrics_namespace=telemetry.NAMESPACE,
                log_level=settings.log_level,
            ),
            **options,
        )
        role = function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadWriteDeploymentState",
                actions=list(DEPLOYMENT_TABLE_ACTIONS),
                resources=[self.deployment_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="NotifyAlarmTopic", actions=["sns:Publish"], resources=[self.alerting.topic.topic_arn]
            )
        )
        # Both functions end a promotion (step: rollback/finish; rollback: on an alarm) by writing its timeline.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteTimelines",
                actions=["s3:PutObject"],
                resources=[self.lake_bucket.arn_for_objects(f"{settings.promotions_prefix}*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ReadCandidateMetrics", actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        for statement in self._endpoint_statements():
            role.add_to_principal_policy(statement)
        # The alarm topic is KMS-encrypted: publishing to it needs the key.
        self.alerting.topic_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
        return function

    def _build_step_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._build_function(
            "StepFunction",
            fn=settings.step,
            description=f"Run one step of a {settings.usecase_name} promotion (gate, replay, analyze, weights)",
        )
        # Models and their metrics.json (the offline gate), the prediction log (replay).
        read_prefixes = (settings.models_prefix, settings.predictions_prefix)
        statements = [
            iam.PolicyStatement(
                sid="ReadModelsAndPredictions",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{prefix}*") for prefix in read_prefixes],
            ),
            # Replay lists the prediction log; listing also makes a missing object 404 rather than 403.
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket"],
                resources=[lake.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in read_prefixes]}},
            ),
            iam.PolicyStatement(
                sid="DescribeAndApproveModelPackages",
                actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                resources=[self._model_package_arn("*")],
            ),
        ]
        role = function.role
        assert role is not None
        for statement in statements:
            role.add_to_principal_policy(statement)
        policy = role.node.find_child("DefaultPolicy")
        lake_id = logical_id(lake)
        for prefix in read_prefixes:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{prefix}*]",
                f"Objects under the lake's {prefix} prefix are keyed by run id or date; the promotion function "
                "reads that prefix only.",
            )
        self._acknowledge_model_packages(policy)
        self._acknowledge_shared_statements(policy)
        return function

    def _build_rollback_function(self) -> lambda_.Function:
        settings = self.settings
        function = self._build_function(
            "RollbackFunction",
            fn=settings.rollback,
            description=f"Roll a {settings.usecase_name} promotion back when a candidate alarm fires",
            environment=RollbackEnvironment,
            variables={
                "promotion_state_machine_arn": self.state_machine.state_machine_arn,
                "candidate_alarm_prefix": settings.alarm_name_prefix,
                "watch_alarm_prefix": settings.watch_alarm_name_prefix,
            },
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
            retry_attempts=2,
            max_event_age=settings.rollback_max_event_age,
        )
        statements = [
            iam.PolicyStatement(
                sid="RejectModelPackages",
                actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                resources=[self._model_package_arn("*")],
            ),
            iam.PolicyStatement(
                sid="StopPromotionExecutions",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[self._execution_arn("*")],
            ),
            iam.PolicyStatement(
                sid="ReadCandidateAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=[self._alarm_arn(f"{settings.alarm_name_prefix}*")],
            ),
        ]
        role = function.role
        assert role is not None
        for statement in statements:
            role.add_to_principal_policy(statement)
        policy = role.node.find_child("DefaultPolicy")
        self._acknowledge_model_packages(policy)
        self._acknowledge_shared_statements(policy)
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:<{logical_id(self.state_machine)}.Name>:*]",
            "Promotion executions are named when they start; the rollback function may describe and stop "
            "executions of the promotion state machine only.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:"
            f"alarm:{settings.alarm_name_prefix}*]",
            "The rollback function reads the state of this use case's candidate alarms (one name prefix) only.",
        )
        return function

    def _endpoint_statements(self) -> list[iam.PolicyStatement]:
        """A heavy model's endpoint: models per package version, one configuration per deployment revision,
        variant weights (both functions shape it: the steps forward, a rollback back)."""
        name, role = self.settings.endpoint_name, self.endpoint_role
        if name is None or role is None:
            return []
        return [
            iam.PolicyStatement(
                sid="ShapeHeavyEndpoint",
                actions=[
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:UpdateEndpointWeightsAndCapacities",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateModel",
                ],
                resources=[
                    self._sagemaker_arn("endpoint", name),
                    self._sagemaker_arn("endpoint-config", f"{name}*"),
                    self._sagemaker_arn("model", f"{name}*"),
                ],
            ),
            iam.PolicyStatement(
                sid="PassEndpointRole",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
        ]

    def _acknowledge_shared_statements(self, policy: IConstruct) -> None:
        settings = self.settings
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.lake_bucket)}.Arn>/{settings.promotions_prefix}*]",
            "Timelines are keyed by execution name under the use case's promotions prefix; the function may "
            "only put objects there.",
        )
        if self._endpoint_statements():
            name = str(settings.endpoint_name).lower()
            for resource in ("endpoint-config", "model"):
                acknowledge(
                    policy,
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                    f"{resource}/{name}*]",
                    "A promotion creates one SageMaker model per package version and one endpoint configuration "
                    "per deployment revision, all named after the endpoint.",
                )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:GetMetricData supports no resource-level permission (analyses and timelines read the "
            "score function's metrics); " + X_RAY_ACK,
        )

    def _acknowledge_model_packages(self, policy: IConstruct) -> None:
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            f"model-package/{self.settings.model_package_group_name}/*]",
            "Candidates are versions of this use case's model package group, numbered by SageMaker as they are "
            "registered; the function may describe them and set their approval status only.",
        )

    # --- the state machine -----------------------------------------------------------------------

    def _payload(self, action: str, **fields: Any) -> dict[str, Any]:
        return {
            "action": action,
            "usecase": self.settings.usecase_name,
            "execution_arn": sfn.JsonPath.string_at("$$.Execution.Id"),
            "execution_name": sfn.JsonPath.string_at("$$.Execution.Name"),
            "model_package_arn": sfn.JsonPath.string_at("$.model_package_arn"),
            "requested_by": sfn.JsonPath.string_at("$.requested_by"),
            **fields,
        }

    def _task(
        self,
        construct_id: str,
        action: str,
        *,
        fields: dict[str, Any] | None = None,
        result_selector: dict[str, Any] | None = None,
        result_path: str | None = None,
    ) -> tasks.LambdaInvoke:
        """A ``lambda:invoke`` of the step function that retries on Lambda service errors only."""
        task = tasks.LambdaInvoke(
            self,
            construct_id,
            lambda_function=self.step_function,
            payload=sfn.TaskInput.from_object(self._payload(action, **(fields or {}))),
            retry_on_service_exceptions=False,
            result_selector=result_selector,
            result_path=result_path if result_path is not None else sfn.JsonPath.DISCARD,
        )
        task.add_retry(errors=LAMBDA_SERVICE_ERRORS, interval=Duration.seconds(2), max_attempts=6, backoff_rate=2)
        return task

    def _verdict_task(self, construct_id: str, action: str, stage: str, **fields: Any) -> tasks.LambdaInvoke:
        return self._task(
            construct_id,
            action,
            fields={"stage": stage, **fields},
            result_selector={
                "stage": stage,
                "verdict": sfn.JsonPath.string_at("$.Payload.verdict"),
                "reason": sfn.JsonPath.string_at("$.Payload.reason"),
            },
            result_path=VERDICT_PATH,
        )

    def _bake_start_task(self, construct_id: str, action: str, **fields: Any) -> tasks.LambdaInvoke:
        """A task that changes what the candidate serves: a bake starts, with no extension yet. The function
        records when the stage started; the state machine keeps only the extension count."""
        return self._task(construct_id, action, fields=fields, result_selector={"extensions": 0}, result_path=BAKE_PATH)

    def _ask_human(self, construct_id: str, stage: str) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            construct_id,
            lambda_function=self.step_function,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                self._payload(
                    StepAction.WAIT_FOR_HUMAN.value,
                    stage=stage,
                    reason=sfn.JsonPath.string_at(f"{VERDICT_PATH}.reason"),
                    task_token=sfn.JsonPath.task_token,
                )
            ),
            retry_on_service_exceptions=False,
            task_timeout=sfn.Timeout.duration(self.settings.human_decision_timeout),
            result_path=HUMAN_PATH,
        )
        task.add_retry(errors=LAMBDA_SERVICE_ERRORS, interval=Duration.seconds(2), max_attempts=6, backoff_rate=2)
        return task

    def _extend_bake(self, construct_id: str) -> sfn.Pass:
        return sfn.Pass(
            self,
            construct_id,
            parameters={"extensions": sfn.JsonPath.math_add(sfn.JsonPath.number_at(f"{BAKE_PATH}.extensions"), 1)},
            result_path=BAKE_PATH,
        )

    def _build_rollback_path(self) -> sfn.IChainable:
        """Rollback (λ) → NotifyRollback (SNS) → RolledBack (Fail); reads the reason at ``$.failure``."""
        settings = self.settings
        rolled_back = sfn.Fail(
            self, "RolledBack", error_path=f"{FAILURE_PATH}.Error", cause_path=f"{FAILURE_PATH}.Cause"
        )
        rollback_failed = sfn.Fail(
            self, "RollbackFailed", error="RollbackFailed", cause="The rollback step failed; see the alarm topic"
        )

        def notify(construct_id: str, subject: str, extra: dict[str, Any]) -> tasks.SnsPublish:
            return tasks.SnsPublish(
                self,
                construct_id,
                topic=self.alerting.topic,
                subject=subject,
                message=sfn.TaskInput.from_object(
                    {
                        "usecase": settings.usecase_name,
                        "execution": sfn.JsonPath.string_at("$$.Execution.Id"),
                        "model_package_arn": sfn.JsonPath.string_at("$.model_package_arn"),
                        "error": sfn.JsonPath.string_at(f"{FAILURE_PATH}.Error"),
                        "reason": sfn.JsonPath.string_at(f"{FAILURE_PATH}.Cause"),
                        **extra,
                    }
                ),
                result_path=sfn.JsonPath.DISCARD,
            )

        notify_rolled_back = notify(
            "NotifyRollback", f"Sluice: promotion of {settings.usecase_name} rolled back", {"rolled_back": True}
        )
        notify_rolled_back.add_catch(rolled_back, errors=[sfn.Errors.ALL], result_path="$.notify_error")
        notify_rolled_back.next(rolled_back)
        notify_failed = notify(
            "NotifyRollbackFailed",
            f"Sluice: promotion of {settings.usecase_name} could NOT be rolled back",
            {"rolled_back": False, "rollback_error": sfn.JsonPath.string_at("$.rollback_error.Cause")},
        )
        notify_failed.add_catch(rollback_failed, errors=[sfn.Errors.ALL], result_path="$.notify_error")
        notify_failed.next(rollback_failed)
        rollback = self._task(
            "Rollback",
            StepAction.ROLLBACK.value,
            fields={
                "error": sfn.JsonPath.object_at(FAILURE_PATH),
                "reason": sfn.JsonPath.string_at(f"{FAILURE_PATH}.Cause"),
            },
        )
        rollback.add_catch(notify_failed, errors=[sfn.Errors.ALL], result_path="$.rollback_error")
        return rollback.next(notify_rolled_back)

    def _build_definition(self) -> sfn.IChainable:
        settings = self.settings
        rollback = self._build_rollback_path()
        rejected = sfn.Pass(
            self,
            "CandidateRejected",
            parameters={
                "Error": "CandidateRejected",
                "Cause": sfn.JsonPath.format(
                    "{} failed: {}",
                    sfn.JsonPath.string_at(f"{VERDICT_PATH}.stage"),
                    sfn.JsonPath.string_at(f"{VERDICT_PATH}.reason"),
                ),
            },
            result_path=FAILURE_PATH,
        ).next(rollback)
        human_rejected = sfn.Pass(
            self,
            "HumanRejected",
            parameters={"Error": "HumanRejected", "Cause": "A human did not approve the candidate"},
            result_path=FAILURE_PATH,
        ).next(rollback)

        # --- gates, then shadow ---
        prepare = self._task("Prepare", StepAction.PREPARE.value)
        offline_gate = self._verdict_task("OfflineGate", StepAction.OFFLINE_GATE.value, Stage.OFFLINE_GATE.value)
        replay = self._verdict_task("Replay", StepAction.REPLAY.value, Stage.REPLAY.value)
        start_shadow = self._bake_start_task("StartShadow", StepAction.START_SHADOW.value)
        bake_shadow = sfn.Wait(self, "BakeShadow", time=sfn.WaitTime.duration(settings.shadow_bake))
        analyze_shadow = self._verdict_task(
            "AnalyzeShadow",
            StepAction.ANALYZE.value,
            Stage.SHADOW.value,
            weight=0,
            extensions=sfn.JsonPath.number_at(f"{BAKE_PATH}.extensions"),
        )
        ask_about_shadow = self._ask_human("AskHumanAboutShadow", Stage.SHADOW.value)

        # --- the canary loop ---
        start_canary = sfn.Pass(
            self,
            "StartCanary",
            result=sfn.Result.from_object({"steps": list(settings.canary_steps), "index": 0}),
            result_path=CANARY_PATH,
        )
        weight = sfn.JsonPath.array_get_item(
            sfn.JsonPath.list_at(f"{CANARY_PATH}.steps"), sfn.JsonPath.number_at(f"{CANARY_PATH}.index")
        )
        step = sfn.JsonPath.number_at(f"{CANARY_PATH}.index")
        set_weight = self._bake_start_task(
            "SetWeight", StepAction.SET_WEIGHT.value, stage=Stage.CANARY.value, step=step, weight=weight
        )
        bake_canary = sfn.Wait(self, "BakeCanary", time=sfn.WaitTime.duration(settings.canary_bake))
        analyze_canary = self._verdict_task(
            "AnalyzeCanary",
            StepAction.ANALYZE.value,
            Stage.CANARY.value,
            step=step,
            weight=weight,
            extensions=sfn.JsonPath.number_at(f"{BAKE_PATH}.extensions"),
        )
        ask_about_canary = self._ask_human("AskHumanAboutCanary", Stage.CANARY.value)
        next_step = sfn.Pass(
            self,
            "NextCanaryStep",
            parameters={
                "steps": sfn.JsonPath.list_at(f"{CANARY_PATH}.steps"),
                "index": sfn.JsonPath.math_add(sfn.JsonPath.number_at(f"{CANARY_PATH}.index"), 1),
            },
            result_path=CANARY_PATH,
        )
        promote = self._task("Promote", StepAction.PROMOTE.value)
        finish = self._task("Finish", StepAction.FINISH.value)
        promoted = sfn.Succeed(self, "Promoted")

        for task in (
            prepare,
            offline_gate,
            replay,
            start_shadow,
            analyze_shadow,
            ask_about_shadow,
            set_weight,
            analyze_canary,
            ask_about_canary,
            promote,
        ):
            task.add_catch(rollback, errors=[sfn.Errors.ALL], result_path=FAILURE_PATH)
        finish.add_catch(promoted, errors=[sfn.Errors.ALL], result_path="$.timeline_error")

        verdict = f"{VERDICT_PATH}.verdict"
        passed = sfn.Condition.string_equals(verdict, Verdict.PASS.value)
        inconclusive = sfn.Condition.string_equals(verdict, Verdict.INCONCLUSIVE.value)
        approved = sfn.Condition.string_equals(f"{HUMAN_PATH}.decision", DECISION_APPROVE)
        may_extend = sfn.Condition.number_less_than(f"{BAKE_PATH}.extensions", settings.max_bake_extensions)
        last_step = sfn.Condition.number_greater_than_equals(f"{CANARY_PATH}.index", len(settings.canary_steps) - 1)

        is_last_step = sfn.Choice(self, "LastCanaryStep").when(last_step, promote).otherwise(next_step)
        next_step.next(set_weight)
        promote.next(finish).next(promoted)
        live_verdict = functools.partial(
            self._live_verdict, passed=passed, inconclusive=inconclusive, may_extend=may_extend, rejected=rejected
        )
        set_weight.next(bake_canary).next(analyze_canary).next(
            live_verdict("Canary", bake=bake_canary, on_pass=is_last_step, ask=ask_about_canary)
        )
        ask_about_canary.next(
            sfn.Choice(self, "HumanDecisionOnCanary").when(approved, is_last_step).otherwise(human_rejected)
        )
        start_canary.next(set_weight)
        ask_about_shadow.next(
            sfn.Choice(self, "HumanDecisionOnShadow").when(approved, start_canary).otherwise(human_rejected)
        )
        start_shadow.next(bake_shadow).next(analyze_shadow).next(
            live_verdict("Shadow", bake=bake_shadow, on_pass=start_canary, ask=ask_about_shadow)
        )
        replay.next(sfn.Choice(self, "ReplayVerdict").when(passed, start_shadow).otherwise(rejected))
        offline_gate.next(sfn.Choice(self, "OfflineVerdict").when(passed, replay).otherwise(rejected))
        return prepare.next(offline_gate)

    def _live_verdict(
        self,
        stage: str,
        *,
        bake: sfn.IChainable,
        on_pass: sfn.IChainable,
        ask: sfn.IChainable,
        passed: sfn.Condition,
        inconclusive: sfn.Condition,
        may_extend: sfn.Condition,
        rejected: sfn.IChainable,
    ) -> sfn.Choice:
        """A live stage's verdict: pass goes on; inconclusive bakes again while it may, then asks a human;
        fail rolls back (the shadow's and each canary step's, the same)."""
        return (
            sfn.Choice(self, f"{stage}Verdict")
            .when(passed, on_pass)
            .when(
                inconclusive,
                sfn.Choice(self, f"CanExtend{stage}Bake")
                .when(may_extend, self._extend_bake(f"Extend{stage}Bake").next(bake))
                .otherwise(ask),
            )
            .otherwise(rejected)
        )

    def _build_state_machine(self) -> sfn.StateMachine:
        settings = self.settings
        log_group = logs.LogGroup(self, "StateMachineLogGroup", retention=settings.log_retention)
        state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=f"Promote a {settings.usecase_name} model: offline gate, replay, shadow, canary, or roll back",
            definition_body=sfn.DefinitionBody.from_chainable(self._build_definition()),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=settings.execution_timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        # The alarm topic is KMS-encrypted: publishing to it needs the key (CDK's SNS task grants sns:Publish only).
        self.alerting.topic_key.grant(state_machine, "kms:Decrypt", "kms:GenerateDataKey")
        policy = state_machine.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.step_function)}.Arn>:*]",
            "CDK grants invoking any version or alias of the promotion's own step function (its ARN with ':*').",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:*LogDelivery, Describe*) and X-Ray tracing support no "
            "resource-level permissions.",
        )
        return state_machine

    # --- rules -----------------------------------------------------------------------------------

    def _build_rollback_rule(self) -> events.Rule:
        settings = self.settings
        return events.Rule(
            self,
            "RollbackRule",
            description=f"A {settings.usecase_name} candidate alarm entered ALARM: roll the promotion back",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={
                    "alarmName": events.Match.prefix(settings.alarm_name_prefix),
                    "state": {"value": ["ALARM"]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.rollback_function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=settings.rollback_retry_attempts,
                    max_event_age=settings.rollback_max_event_age,
                )
            ],
        )

    def _build_watch_schedule(self) -> events.Rule:
        settings = self.settings
        return events.Rule(
            self,
            "WatchSchedule",
            description=f"End the post-promotion watch of {settings.usecase_name} once its window has passed",
            schedule=events.Schedule.expression(settings.watch_check_schedule),
            targets=[
                targets.LambdaFunction(
                    self.step_function,
                    event=events.RuleTargetInput.from_object(
                        {"action": StepAction.END_WATCH.value, "usecase": settings.usecase_name}
                    ),
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=2,
                    max_event_age=Duration.minutes(10),
                )
            ],
        )

    # --- the dashboard ---------------------------------------------------------------------------

    def _build_dashboard(self) -> cloudwatch.Dashboard:
        settings, t = self.settings, telemetry
        served = (t.CHAMPION, t.CHALLENGER)
        width = 12
        sum_, p99, avg = cloudwatch.Stats.SUM, cloudwatch.Stats.p(99), cloudwatch.Stats.AVERAGE

        def graph(title: str, metrics: list[cloudwatch.IMetric], **options: Any) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=metrics, width=width, height=6, **options)

        def buckets(variant: str) -> list[cloudwatch.IMetric]:
            return [
                cloudwatch.Metric(
                    namespace=t.NAMESPACE,
                    metric_name=t.SCORE_BUCKET,
                    dimensions_map={
                        t.DIMENSION_USECASE: settings.usecase_name,
                        t.DIMENSION_VARIANT: variant,
                        t.DIMENSION_BUCKET: bucket,
                    },
                    statistic=sum_,
                    period=settings.alarm_period,
                    label=bucket,
                )
                for bucket in t.SCORE_BUCKETS
            ]

        machine = self.state_machine
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=settings.dashboard_name)
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Candidate and watch-window alarms (ALARM rolls back)", alarms=self.alarms, width=24, height=3
            )
        )
        dashboard.add_widgets(
            graph(
                "Traffic per variant",
                [
                    *(self._metric(t.PREDICTIONS, variant, sum_).with_(label=variant) for variant in served),
                    self._metric(t.SHADOW_SCORES, t.SHADOW, sum_).with_(label=t.SHADOW),
                ],
            ),
            graph("Error rate (%)", [self._rate(t.ERRORS, t.PREDICTIONS, variant) for variant in served]),
        )
        dashboard.add_widgets(
            graph(
                "p99 latency (ms)",
                [self._metric(t.LATENCY, variant, p99).with_(label=variant) for variant in served],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=settings.latency_budget_ms, label="budget")],
            ),
            graph("Fallback rate (%)", [self._rate(t.FALLBACKS, t.PREDICTIONS, variant) for variant in served]),
        )
        dashboard.add_widgets(
            graph(
                "Shadow vs champion: mean |score delta|",
                [self._metric(t.SCORE_DELTA, t.SHADOW, avg).with_(label=t.SHADOW)],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=settings.max_divergence, label="max")],
            ),
            graph(
                "Promotion executions",
                [
                    machine.metric_started(label="started"),
                    machine.metric_succeeded(label=PromotionOutcome.PROMOTED.value),
                    machine.metric_failed(label="rolled back"),
                    machine.metric_aborted(label="aborted"),
                    machine.metric_timed_out(label="timed out"),
                ],
            ),
        )
        dashboard.add_widgets(
            graph("Score distribution: champion", buckets(t.CHAMPION), stacked=True),
            graph("Score distribution: challenger", buckets(t.CHALLENGER), stacked=True),
        )
        return dashboard

    # --- ARNs ------------------------------------------------------------------------------------

    def _sagemaker_arn(self, resource: str, name: str) -> str:
        # SageMaker lower-cases endpoint (and endpoint configuration) names in ARNs.
        return Stack.of(self).format_arn(service="sagemaker", resource=resource, resource_name=name.lower())

    def _model_package_arn(self, version: str) -> str:
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{self.settings.model_package_group_name}/{version}",
        )

    def _execution_arn(self, name: str) -> str:
        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:{name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _alarm_arn(self, name: str) -> str:
        return Stack.of(self).format_arn(
            service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
