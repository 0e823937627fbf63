"""The backfill: a Standard state machine that re-ingests every retained object under a new contract version on
a Distributed Map, then switches training's curated set; started by ``python -m cli backfill``.

Shape (as the batch machine, ``infra/batch.py``)::

    Plan (backfill_plan: refuse a version the use-case file does not carry; write the run's items.json)
      → BackfillObjects (Distributed Map; ItemReader s3:getObject of items.json, a JSON array;
                         MaxConcurrency and retries from the use case's [batch]; results discarded)
          item: BackfillObject (backfill_object; Retry StorageError)
                  └─ Catch States.ALL → FailureRecord (Pass) → RecordFailure (s3:putObject failures/<object>.json)
      → Finish (backfill_finish: re-plan; switch the pointer + audit event when every object reconciles,
                unless the run asked not to; BackfillIncompleteError with the reason otherwise)

The object function's role reads the raw bucket (any version) and the use case's manifests, and writes only the
use case's ``contract=*`` folders of the curated, quarantine and manifests areas: it can never touch the live
curated set. Only the finish function writes the pointer (``curated/<usecase>/CURRENT.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, Size
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct, IConstruct

from infra.alerting import Alerting
from infra.distributed_map import (
    acknowledge_machine_grants,
    execution_alarms,
    item_processor,
    json_array_map,
    logged_state_machine,
)
from infra.layers import dependency_layer
from infra.nag import acknowledge, logical_id
from infra.python_function import add_role_statements, python_function
from infra.settings import FUNCTIONS_DIR, LAYERS_DIR, USECASE_FILE_IN_BUNDLE
from shared.backfill.environment import BackfillEnvironment, BackfillFinishEnvironment, BackfillPlanEnvironment
from shared.lake import layout as lake_keys

X_RAY_ACK = (
    "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions."
)


@dataclass(frozen=True, kw_only=True)
class BackfillSettings:
    """The backfill of one use case: its functions' sizes, the lake prefixes they may write, and the Distributed
    Map's concurrency and retries (the use case's ``[batch]``: one home for every Distributed Map's settings)."""

    usecase_name: str
    usecase_file: Path
    max_concurrency: int
    """Objects backfilled at once (the map's ``MaxConcurrency``)."""
    retry_attempts: int
    """Retries of an object whose function failed with ``StorageError``."""
    retry_interval: Duration = field(default_factory=lambda: Duration.seconds(2))
    execution_timeout: Duration = field(default_factory=lambda: Duration.hours(24))
    source_dir: Path = FUNCTIONS_DIR / "backfill_object"
    plan_source_dir: Path = FUNCTIONS_DIR / "backfill_plan"
    finish_source_dir: Path = FUNCTIONS_DIR / "backfill_finish"
    step_memory_size_mb: int = 1024
    """The plan and finish functions (they read manifests only)."""
    requirements_file: Path = LAYERS_DIR / "ingest.txt"
    memory_size_mb: int = 2048
    timeout: Duration = field(default_factory=lambda: Duration.minutes(15))
    ephemeral_storage: Size = field(default_factory=lambda: Size.gibibytes(4))
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    service_name: str = "backfill"

    @property
    def write_prefixes(self) -> tuple[str, ...]:
        """Every contract folder of the use case's curated, quarantine and manifests areas (``…/contract=*``)."""
        name = self.usecase_name
        return tuple(
            f"{prefix}{lake_keys.CONTRACT_PARTITION}"
            for prefix in (
                lake_keys.curated_prefix(name),
                lake_keys.quarantine_prefix(name),
                lake_keys.manifest_prefix(name),
            )
        )

    @property
    def manifests_prefix(self) -> str:
        return lake_keys.manifest_prefix(self.usecase_name)

    @property
    def runs_prefix(self) -> str:
        """The runs' working files (items, failures): ``backfill-runs/<usecase>/``."""
        return lake_keys.backfill_run_prefix(self.usecase_name)

    @property
    def pointer_key(self) -> str:
        return lake_keys.curated_pointer_key(self.usecase_name)

    @property
    def failure_key_template(self) -> str:
        """``States.Format`` template of a failed object's key (use case, version, run, object id)."""
        return lake_keys.backfill_failure_key("{}", "{}", "{}", "{}")


class Backfill(Construct):
    """The backfill's state machine, its three functions with least-privilege roles, and its alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: BackfillSettings,
        raw_bucket: s3.IBucket,
        lake_bucket: s3.IBucket,
        deployment_table: dynamodb.ITable,
        shared_code_layer: lambda_.ILayerVersion,
        alerting: Alerting,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.lake_bucket = lake_bucket
        self.deployment_table = deployment_table
        self.layers: list[lambda_.ILayerVersion] = [
            dependency_layer(self, "BackfillDependencies", requirements_file=settings.requirements_file),
            shared_code_layer,
        ]
        self.role = iam.Role(
            self,
            "BackfillFunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Backfill function: read retained raw versions and manifests, write contract=* folders",
        )
        self.function = python_function(
            self,
            "BackfillFunction",
            source_dir=settings.source_dir,
            usecase_file=settings.usecase_file,
            description=f"Re-ingest one object of {settings.usecase_name} under a new contract version",
            memory_size_mb=settings.memory_size_mb,
            timeout=settings.timeout,
            ephemeral_storage_size=settings.ephemeral_storage,
            role=self.role,
            log_group_id="BackfillLogGroup",
            log_retention=settings.log_retention,
            layers=self.layers,
            environment=BackfillEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                lake_bucket=lake_bucket.bucket_name,
                service_name=settings.service_name,
            ),
            retry_attempts=0,
        )
        self._grant_least_privilege(raw_bucket, lake_bucket)
        self.plan_function = self._build_plan_function()
        self.finish_function = self._build_finish_function()
        self.state_machine = self._build_state_machine()
        self.alarms = self._build_alarms()
        for alarm in self.alarms:
            alerting.notify_on_alarm(alarm)

    def _grant_least_privilege(self, raw_bucket: s3.IBucket, lake_bucket: s3.IBucket) -> None:
        settings, role = self.settings, self.role
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRetainedRawVersions",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[raw_bucket.arn_for_objects("*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadUseCaseManifests",
                actions=["s3:GetObject"],
                resources=[lake_bucket.arn_for_objects(f"{settings.manifests_prefix}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteContractFolders",
                actions=["s3:PutObject"],
                resources=[lake_bucket.arn_for_objects(f"{prefix}*") for prefix in settings.write_prefixes],
            )
        )
        # As ingest: without ListBucket a missing manifest answers 403, and "not backfilled yet" reads as denied.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TellMissingManifestsFromDenied", actions=["s3:ListBucket"], resources=[lake_bucket.bucket_arn]
            )
        )
        policy = role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{logical_id(raw_bucket)}.Arn>/*]",
            "A backfill re-reads uploads under any key of the raw bucket (any retained version); read only.",
        )
        for prefix in (settings.manifests_prefix, *settings.write_prefixes):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{logical_id(lake_bucket)}.Arn>/{prefix}*]",
                f"Keys under {prefix} are derived from each object and contract version; access is limited to it.",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
            "support no resource-level permissions.",
        )

    # --- the run's steps -------------------------------------------------------------------------

    def _lake_objects(self, *prefixes: str) -> list[str]:
        return [self.lake_bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]

    def _step_function(
        self, construct_id: str, *, source_dir: Path, description: str, environment: dict[str, str]
    ) -> lambda_.Function:
        settings = self.settings
        return python_function(
            self,
            construct_id,
            source_dir=source_dir,
            usecase_file=settings.usecase_file,
            description=description,
            memory_size_mb=settings.step_memory_size_mb,
            timeout=settings.timeout,
            layers=self.layers,
            log_retention=settings.log_retention,
            environment=environment,
        )

    def _acknowledge(self, policy: IConstruct, *prefixes: str) -> None:
        lake_id = logical_id(self.lake_bucket)
        for prefix in prefixes:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{prefix}*]",
                f"Keys under {prefix} are derived from each object, contract version and run; access is limited "
                "to this use case's prefix.",
            )
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", X_RAY_ACK)

    def _list_statement(self, sid: str, *prefixes: str) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=["s3:ListBucket"],
            resources=[self.lake_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
        )

    def _build_plan_function(self) -> lambda_.Function:
        settings = self.settings
        function = self._step_function(
            "PlanFunction",
            source_dir=settings.plan_source_dir,
            description=f"Plan a {settings.usecase_name} backfill run: the objects not reconciled yet",
            environment=BackfillPlanEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                lake_bucket=self.lake_bucket.bucket_name,
                service_name="backfill-plan",
            ),
        )
        policy = add_role_statements(
            function,
            [
                iam.PolicyStatement(
                    sid="ReadManifests",
                    actions=["s3:GetObject"],
                    resources=self._lake_objects(settings.manifests_prefix),
                ),
                self._list_statement("ListManifests", settings.manifests_prefix),
                iam.PolicyStatement(
                    sid="WriteRunItems", actions=["s3:PutObject"], resources=self._lake_objects(settings.runs_prefix)
                ),
            ],
        )
        self._acknowledge(policy, settings.manifests_prefix, settings.runs_prefix)
        return function

    def _build_finish_function(self) -> lambda_.Function:
        settings = self.settings
        function = self._step_function(
            "FinishFunction",
            source_dir=settings.finish_source_dir,
            description=f"Reconcile a {settings.usecase_name} backfill and switch training's curated set",
            environment=BackfillFinishEnvironment.lambda_environment(
                lake_bucket=self.lake_bucket.bucket_name,
                deployment_table=self.deployment_table.table_name,
                service_name="backfill-finish",
            ),
        )
        policy = add_role_statements(
            function,
            [
                iam.PolicyStatement(
                    sid="ReadManifestsAndRuns",
                    actions=["s3:GetObject"],
                    resources=[
                        *self._lake_objects(settings.manifests_prefix, settings.runs_prefix),
                        self.lake_bucket.arn_for_objects(settings.pointer_key),
                    ],
                ),
                self._list_statement("ListManifestsAndRuns", settings.manifests_prefix, settings.runs_prefix),
                iam.PolicyStatement(
                    sid="SwitchThePointer",
                    actions=["s3:PutObject"],
                    resources=[self.lake_bucket.arn_for_objects(settings.pointer_key)],
                ),
                iam.PolicyStatement(
                    sid="RecordTheSwitch",
                    actions=["dynamodb:PutItem", "dynamodb:Query"],
                    resources=[self.deployment_table.table_arn],
                ),
            ],
        )
        self._acknowledge(policy, settings.manifests_prefix, settings.runs_prefix)
        return function

    def _build_state_machine(self) -> sfn.StateMachine:
        settings, lake = self.settings, self.lake_bucket
        # No JSONPath payloads (moto's grammar refuses "Payload.$" on a direct invoke): each task gets its whole
        # state, the plan step's output replaces the execution input, and the map's items are flat.
        plan = tasks.LambdaInvoke(self, "Plan", lambda_function=self.plan_function, payload_response_only=True)
        backfill_one = item_processor(
            self,
            "BackfillObject",
            function=self.function,
            retry_attempts=settings.retry_attempts,
            retry_interval=settings.retry_interval,
            failure_key=sfn.JsonPath.format(
                settings.failure_key_template,
                sfn.JsonPath.string_at("$.usecase"),
                sfn.JsonPath.string_at("$.contract_version"),
                sfn.JsonPath.string_at("$.run"),
                sfn.JsonPath.string_at("$.object_id"),
            ),
            failure_document={
                "item": {
                    "manifest_key": sfn.JsonPath.string_at("$.manifest_key"),
                    "object_id": sfn.JsonPath.string_at("$.object_id"),
                    "source_key": sfn.JsonPath.string_at("$.source_key"),
                },
            },
            lake_bucket=lake,
            failure_objects=self._lake_objects(settings.runs_prefix),
            result_path=sfn.JsonPath.DISCARD,
        )
        objects = json_array_map(
            self,
            "BackfillObjects",
            lake_bucket=lake,
            items_key=sfn.JsonPath.string_at("$.items_key"),
            item_selector={
                **{
                    field: sfn.JsonPath.string_at(f"$$.Map.Item.Value.{field}")
                    for field in ("manifest_key", "contract_version", "object_id", "source_key")
                },
                "usecase": sfn.JsonPath.string_at("$.usecase"),
                "run": sfn.JsonPath.string_at("$.run"),
            },
            max_concurrency=settings.max_concurrency,
            processor=backfill_one,
        )
        finish = tasks.LambdaInvoke(
            self,
            "Finish",
            lambda_function=self.finish_function,
            payload_response_only=True,
            result_path="$.summary",
        )
        state_machine = logged_state_machine(
            self,
            comment=f"Backfill {settings.usecase_name} under a new contract version: plan, objects on a "
            "Distributed Map, reconcile and switch",
            definition=plan.next(objects).next(finish),
            timeout=settings.execution_timeout,
            log_retention=settings.log_retention,
        )
        acknowledge_machine_grants(
            state_machine,
            functions=(self.plan_function, self.function, self.finish_function),
            lake_bucket=lake,
            items_file="items.json its plan step wrote under backfill-runs/<usecase>/",
            acknowledge_own_prefixes=lambda policy: self._acknowledge(policy, settings.runs_prefix),
        )
        return state_machine

    def _build_alarms(self) -> list[cloudwatch.Alarm]:
        name = self.settings.usecase_name
        return execution_alarms(
            self,
            self.state_machine,
            description=lambda what: (
                f"A {name} backfill run {what}; the execution's cause names the objects "
                "not reconciled (run python -m cli backfill again to resume)."
            ),
        )
