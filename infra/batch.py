"""Batch prediction of one use case: a Standard state machine that plans a job, scores its chunks on a
Distributed Map and folds their results into the job's manifest; started by an upload under the raw bucket's
``batch/`` prefix or by ``python -m cli batch``.

Shape (every state one transition; the map's children are Standard executions of two or three states)::

    Plan (batch_plan: list, pin the model, write plan.json + chunks.json)
      → ScoreChunks (Distributed Map; ItemReader s3:getObject of chunks.json, a JSON array;
                     MaxConcurrency and ToleratedFailurePercentage from [batch]; results discarded)
          item: ScoreChunk (batch_worker; Retry StorageError, [batch] retry_attempts)
                  └─ Catch States.ALL → FailureRecord (Pass) → RecordFailure (s3:putObject failures/<chunk>.json)
      → Finish (batch_finish: fold results/ + failures/ into manifest.json; JobFailedError past the tolerance)

The machine relies on none of the gaps of moto's interpreter (``docs/batch.md``): its items come from a JSON
array it wrote itself (no S3 listing reader, no JSON Lines or manifest reader), it uses no ``ItemBatcher`` and no
``ResultWriter`` (each worker writes its result under a deterministic key; the finish step folds them), and the
tolerance is enforced by the fold, since every item catches its failure (on AWS and on moto alike).

Execution name = the job id: a job started twice finds its execution (``ExecutionAlreadyExists``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct, IConstruct

from infra import layers
from infra.alerting import Alerting
from infra.distributed_map import (
    acknowledge_machine_grants,
    execution_alarms,
    item_processor,
    json_array_map,
    logged_state_machine,
)
from infra.nag import acknowledge, logical_id
from infra.python_function import add_role_statements, python_function
from infra.settings import USECASE_FILE_IN_BUNDLE, BatchFunctionSettings, BatchStackSettings
from shared.batch.environment import (
    BatchFinishEnvironment,
    BatchPlanEnvironment,
    BatchStartEnvironment,
    BatchWorkerEnvironment,
)

X_RAY_ACK = (
    "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions."
)


class BatchPrediction(Construct):
    """The batch state machine, its four functions, its start rule and its alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: BatchStackSettings,
        raw_bucket: s3.IBucket,
        lake_bucket: s3.IBucket,
        deployment_table: dynamodb.ITable,
        dependency_layer: lambda_.ILayerVersion,
        shared_code_layer: lambda_.ILayerVersion,
        alerting: Alerting,
    ) -> None:
        """``dependency_layer``: pyarrow, numpy, pydantic, powertools (the ingest layer) for the plan, finish and
        start functions. The worker, which also runs the model, gets a layer of its own (``layers/batch.txt``):
        the ingest and scoring layers together are over Lambda's 250 MB for a function and its layers."""
        super().__init__(scope, construct_id)
        self.settings = settings
        self.raw_bucket = raw_bucket
        self.lake_bucket = lake_bucket
        self.deployment_table = deployment_table
        self.alerting = alerting
        self.layers = [dependency_layer, shared_code_layer]
        self.worker_dependencies = self._build_worker_dependencies()
        self.worker_layers = [self.worker_dependencies, shared_code_layer]
        self.plan_function = self._build_plan_function()
        self.worker_function = self._build_worker_function()
        self.finish_function = self._build_finish_function()
        self.state_machine = self._build_state_machine()
        self.start_function = self._build_start_function()
        self.start_rule = self._build_start_rule()
        self.alarms = self._build_alarms()
        for alarm in self.alarms:
            alerting.notify_on_alarm(alarm)

    # --- functions -------------------------------------------------------------------------------

    def _function(
        self, construct_id: str, *, fn: BatchFunctionSettings, description: str, environment: dict[str, str], **kw: Any
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
            layers=kw.pop("layers", self.layers),
            log_retention=settings.log_retention,
            environment=environment,
            ephemeral_storage_size=fn.ephemeral_storage,
            **kw,
        )

    def _powertools(self, fn: BatchFunctionSettings) -> dict[str, str]:
        return {
            "service_name": fn.service_name,
            "metrics_namespace": self.settings.metrics_namespace,
            "log_level": self.settings.log_level,
        }

    def _lake_objects(self, *prefixes: str) -> list[str]:
        return [self.lake_bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]

    def _source_reads(self) -> list[iam.PolicyStatement]:
        """Jobs score objects of the raw bucket (any prefix: ``batch/`` uploads and retained raw data)."""
        return [
            iam.PolicyStatement(
                sid="ReadSources", actions=["s3:GetObject"], resources=[self.raw_bucket.arn_for_objects("*")]
            ),
            iam.PolicyStatement(sid="ListSources", actions=["s3:ListBucket"], resources=[self.raw_bucket.bucket_arn]),
        ]

    def _acknowledge_prefixes(self, policy: IConstruct, *prefixes: str, raw: bool = True) -> None:
        lake_id = logical_id(self.lake_bucket)
        for prefix in prefixes:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{prefix}*]",
                f"Batch objects under the lake's {prefix} prefix are keyed by job and chunk hashes; access is "
                "limited to this use case's prefix.",
            )
        if raw:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{logical_id(self.raw_bucket)}.Arn>/*]",
                "A batch job scores any object a user names in the raw bucket (read only).",
            )
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", X_RAY_ACK + " ListModelPackages has none either.")

    def _registry_statements(self) -> list[iam.PolicyStatement]:
        here = Stack.of(self)
        group = self.settings.model_package_group_name
        return [
            iam.PolicyStatement(
                sid="DescribeModelPackages",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[here.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*")],
            ),
            iam.PolicyStatement(sid="ListModelPackages", actions=["sagemaker:ListModelPackages"], resources=["*"]),
            iam.PolicyStatement(
                sid="ReadDeploymentState", actions=["dynamodb:GetItem"], resources=[self.deployment_table.table_arn]
            ),
        ]

    def _acknowledge_registry(self, policy: IConstruct) -> None:
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            f"model-package/{self.settings.model_package_group_name}/*]",
            "A job names a version of this use case's model package group; the function describes it only.",
        )

    def _build_plan_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._function(
            "PlanFunction",
            fn=settings.plan,
            description=f"Plan a {settings.usecase_name} batch job: objects, model, chunks",
            environment=BatchPlanEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                lake_bucket=lake.bucket_name,
                deployment_table=self.deployment_table.table_name,
                model_package_group=settings.model_package_group_name,
                **self._powertools(settings.plan),
            ),
        )
        reads = (settings.models_prefix, settings.training_output_prefix, settings.batch_prefix)
        policy = add_role_statements(
            function,
            [
                *self._source_reads(),
                iam.PolicyStatement(sid="ReadModels", actions=["s3:GetObject"], resources=self._lake_objects(*reads)),
                iam.PolicyStatement(
                    sid="WritePlan", actions=["s3:PutObject"], resources=self._lake_objects(settings.batch_prefix)
                ),
                *self._registry_statements(),
            ],
        )
        self._acknowledge_prefixes(policy, *reads)
        self._acknowledge_registry(policy)
        return function

    def _build_worker_dependencies(self) -> lambda_.LayerVersion:
        return layers.dependency_layer(
            self,
            "WorkerDependencies",
            requirements_file=self.settings.worker_requirements_file,
            aws_services=self.settings.worker_aws_services,
        )

    def _build_worker_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._function(
            "WorkerFunction",
            fn=settings.worker,
            description=f"Score one chunk of a {settings.usecase_name} batch job",
            environment=BatchWorkerEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE, lake_bucket=lake.bucket_name, **self._powertools(settings.worker)
            ),
            layers=self.worker_layers,
        )
        policy = add_role_statements(
            function,
            [
                *self._source_reads(),
                iam.PolicyStatement(
                    sid="ReadModelsAndResults",
                    actions=["s3:GetObject"],
                    resources=self._lake_objects(settings.models_prefix, settings.batch_prefix),
                ),
                iam.PolicyStatement(
                    sid="WriteBatchOutputsAndPredictionLog",
                    actions=["s3:PutObject"],
                    resources=self._lake_objects(settings.batch_prefix, settings.predictions_prefix),
                ),
                iam.PolicyStatement(
                    sid="ListOwnResults",
                    actions=["s3:ListBucket"],
                    resources=[lake.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{settings.batch_prefix}*"]}},
                ),
            ],
        )
        self._acknowledge_prefixes(policy, settings.models_prefix, settings.batch_prefix, settings.predictions_prefix)
        return function

    def _build_finish_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._function(
            "FinishFunction",
            fn=settings.finish,
            description=f"Fold a {settings.usecase_name} batch job's chunk results into its manifest",
            environment=BatchFinishEnvironment.lambda_environment(
                lake_bucket=lake.bucket_name, **self._powertools(settings.finish)
            ),
        )
        policy = add_role_statements(
            function,
            [
                iam.PolicyStatement(
                    sid="ReadWriteJob",
                    actions=["s3:GetObject", "s3:PutObject"],
                    resources=self._lake_objects(settings.batch_prefix),
                ),
                iam.PolicyStatement(
                    sid="ListJob",
                    actions=["s3:ListBucket"],
                    resources=[lake.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{settings.batch_prefix}*"]}},
                ),
            ],
        )
        self._acknowledge_prefixes(policy, settings.batch_prefix, raw=False)
        return function

    def _build_start_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._function(
            "StartFunction",
            fn=settings.start,
            description=f"Start a {settings.usecase_name} batch job for an upload under batch/",
            environment=BatchStartEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                lake_bucket=lake.bucket_name,
                deployment_table=self.deployment_table.table_name,
                model_package_group=settings.model_package_group_name,
                state_machine_arn=self.state_machine.state_machine_arn,
                **self._powertools(settings.start),
            ),
        )
        self.state_machine.grant_start_execution(function)
        reads = (settings.training_output_prefix,)
        policy = add_role_statements(
            function,
            [
                *self._source_reads(),
                iam.PolicyStatement(sid="ReadMetrics", actions=["s3:GetObject"], resources=self._lake_objects(*reads)),
                *self._registry_statements(),
            ],
        )
        self._acknowledge_prefixes(policy, *reads)
        self._acknowledge_registry(policy)
        return function

    # --- state machine ---------------------------------------------------------------------------

    def _build_state_machine(self) -> sfn.StateMachine:
        settings, lake = self.settings, self.lake_bucket
        plan = tasks.LambdaInvoke(
            self, "Plan", lambda_function=self.plan_function, payload_response_only=True, result_path="$.job"
        )
        score = item_processor(
            self,
            "ScoreChunk",
            function=self.worker_function,
            retry_attempts=settings.retry_attempts,
            retry_interval=settings.retry_interval,
            failure_key=sfn.JsonPath.format(
                settings.failure_key_template,
                sfn.JsonPath.string_at("$.context.usecase"),
                sfn.JsonPath.string_at("$.context.job_id"),
                sfn.JsonPath.string_at("$.chunk.chunk_key"),
            ),
            failure_document={"chunk": sfn.JsonPath.object_at("$.chunk")},
            lake_bucket=lake,
            failure_objects=self._lake_objects(settings.batch_prefix),
        )
        score_chunks = json_array_map(
            self,
            "ScoreChunks",
            lake_bucket=lake,
            items_key=sfn.JsonPath.string_at("$.job.chunks_key"),
            item_selector={
                "chunk": sfn.JsonPath.object_at("$$.Map.Item.Value"),
                "context": sfn.JsonPath.object_at("$.job.context"),
            },
            max_concurrency=settings.max_concurrency,
            tolerated_failure_percentage=settings.tolerated_failure_percentage,
            processor=score,
        )
        finish = tasks.LambdaInvoke(
            self,
            "Finish",
            lambda_function=self.finish_function,
            payload=sfn.TaskInput.from_object(
                {"usecase": sfn.JsonPath.string_at("$.job.usecase"), "job_id": sfn.JsonPath.string_at("$.job.job_id")}
            ),
            payload_response_only=True,
            result_path="$.manifest",
        )
        state_machine = logged_state_machine(
            self,
            comment=f"Score a {settings.usecase_name} batch job: plan, chunks on a Distributed Map, manifest",
            definition=plan.next(score_chunks).next(finish),
            timeout=settings.execution_timeout,
            log_retention=settings.log_retention,
        )
        acknowledge_machine_grants(
            state_machine,
            functions=(self.plan_function, self.worker_function, self.finish_function),
            lake_bucket=lake,
            items_file="chunks.json its plan step wrote under batch-predictions/<usecase>/",
            acknowledge_own_prefixes=lambda policy: self._acknowledge_prefixes(
                policy, settings.batch_prefix, raw=False
            ),
        )
        return state_machine

    # --- start and alarms ------------------------------------------------------------------------

    def _build_start_rule(self) -> events.Rule:
        self.raw_bucket.enable_event_bridge_notification()
        return events.Rule(
            self,
            "StartOnUpload",
            description=f"An object created under the raw bucket's {self.settings.upload_prefix} starts a batch job",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.raw_bucket.bucket_name]},
                    "object": {"key": [{"prefix": self.settings.upload_prefix}]},
                },
            ),
            targets=[targets.LambdaFunction(self.start_function, retry_attempts=2, max_event_age=Duration.hours(1))],
        )

    def _build_alarms(self) -> list[cloudwatch.Alarm]:
        name = self.settings.usecase_name
        return execution_alarms(
            self,
            self.state_machine,
            description=lambda what: f"A {name} batch job {what}; its manifest (or the execution) says why.",
        )
