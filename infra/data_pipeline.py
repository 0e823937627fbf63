"""The data pipeline: raw uploads → ingest + validate → the lake (curated, quarantine, manifests).

An object created in the raw bucket invokes the ingest function asynchronously (S3 notifications
arrive at least once, so the function is idempotent through a DynamoDB table). After its retries
an event lands in a dead-letter queue, and a message there raises an alarm on the alert topic.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.alerting import Alerting
from infra.layers import dependency_layer
from infra.nag import acknowledge, logical_id
from infra.python_function import python_function
from infra.settings import USECASE_FILE_IN_BUNDLE, DataPipelineSettings
from shared.ingest.environment import IngestEnvironment

# The layout aws_lambda_powertools.utilities.idempotency.DynamoDBPersistenceLayer expects by default.
IDEMPOTENCY_KEY_ATTRIBUTE = "id"
IDEMPOTENCY_EXPIRY_ATTRIBUTE = "expiration"
IDEMPOTENCY_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")

CDK_BUCKET_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler"
"""Id prefix of the stack-wide function CDK adds to configure S3 bucket notifications."""


class DataPipeline(Construct):
    """Raw bucket, ingest function, lake bucket, idempotency table, and the failure path to alerting."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DataPipelineSettings,
        shared_code_layer: lambda_.ILayerVersion,
        alerting: Alerting,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.access_logs_bucket = self._build_access_logs_bucket()
        self.raw_bucket = self._build_data_bucket("RawBucket", logs_prefix="raw/")
        self.lake_bucket = self._build_data_bucket("LakeBucket", logs_prefix="lake/")
        self.idempotency_table = self._build_idempotency_table()
        self.dead_letter_queue = self._build_dead_letter_queue()
        self.ingest_role = self._build_ingest_role()
        self.ingest_function = self._build_ingest_function(shared_code_layer=shared_code_layer)
        self._grant_ingest_least_privilege()
        self._build_raw_upload_trigger()
        self.dead_letter_alarm = self._build_dead_letter_alarm()
        alerting.notify_on_alarm(self.dead_letter_alarm)

    # --- storage -------------------------------------------------------------------------------

    def _build_access_logs_bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption S3 log delivery supports
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=self.settings.access_log_retention)],
        )

    def _build_data_bucket(self, construct_id: str, *, logs_prefix: str) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=logs_prefix,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=self.settings.noncurrent_version_retention,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )

    def _build_idempotency_table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=IDEMPOTENCY_KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=IDEMPOTENCY_EXPIRY_ATTRIBUTE,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
        )

    # --- the ingest function -------------------------------------------------------------------

    def _build_dead_letter_queue(self) -> sqs.Queue:
        return Alerting.dead_letter_queue(
            self,
            "IngestDeadLetterQueue",
            retention=self.settings.ingest.dead_letter_retention,
            collects="the ingest function's dead-letter queue (its async on-failure destination)",
        )

    def _build_ingest_role(self) -> iam.Role:
        return iam.Role(
            self,
            "IngestFunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Ingest function: read raw uploads, write the lake, record idempotency",
        )

    def _build_ingest_function(self, *, shared_code_layer: lambda_.ILayerVersion) -> lambda_.Function:
        ingest = self.settings.ingest
        return python_function(
            self,
            "IngestFunction",
            source_dir=ingest.source_dir,
            usecase_file=self.settings.usecase_file,
            description=f"Validate uploads of {self.settings.usecase_name} against its contract into the lake",
            memory_size_mb=ingest.memory_size_mb,
            timeout=ingest.timeout,
            ephemeral_storage_size=ingest.ephemeral_storage,
            role=self.ingest_role,
            log_group_id="IngestLogGroup",
            log_retention=ingest.log_retention,
            layers=[
                dependency_layer(self, "IngestDependencies", requirements_file=ingest.requirements_file),
                shared_code_layer,
            ],
            environment=IngestEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                lake_bucket=self.lake_bucket.bucket_name,
                idempotency_table=self.idempotency_table.table_name,
                service_name=ingest.service_name,
                metrics_namespace=ingest.metrics_namespace,
                log_level=ingest.log_level,
            ),
            retry_attempts=ingest.retry_attempts,
            max_event_age=ingest.max_event_age,
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )

    def _grant_ingest_least_privilege(self) -> None:
        settings = self.settings
        role = self.ingest_role
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRawUploads",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.raw_bucket.arn_for_objects("*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteLakePrefixes",
                actions=["s3:PutObject"],
                resources=[self.lake_bucket.arn_for_objects(f"{prefix}*") for prefix in settings.lake_write_prefixes],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadLakeManifests",
                actions=["s3:GetObject"],
                resources=[self.lake_bucket.arn_for_objects(f"{settings.manifests_area_prefix}*")],
            )
        )
        # Without s3:ListBucket, S3 answers HeadObject/GetObject on a missing key with 403, not 404, and
        # the manifest exists-check could not tell "not ingested yet" from "denied". The function writes
        # every key of the lake itself, so listing the lake's key names reveals nothing new to it.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TellMissingManifestsFromDenied",
                actions=["s3:ListBucket"],
                resources=[self.lake_bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RecordIdempotency",
                actions=list(IDEMPOTENCY_TABLE_ACTIONS),
                resources=[self.idempotency_table.table_arn],
            )
        )
        policy = role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.raw_bucket)}.Arn>/*]",
            "Uploads arrive under any key of the raw bucket; the function may only read them (Get, GetVersion).",
        )
        for prefix in settings.lake_write_prefixes:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{logical_id(self.lake_bucket)}.Arn>/{prefix}*]",
                f"Object keys under the lake's {prefix} prefix are derived from each upload; "
                "access is limited to that prefix.",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
            "support no resource-level permissions.",
        )

    def _build_raw_upload_trigger(self) -> None:
        self.raw_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3_notifications.LambdaDestination(self.ingest_function)
        )
        # CDK adds one stack-wide function that writes bucket notification configurations at deployment.
        for child in Stack.of(self).node.children:
            if child.node.id.startswith(CDK_BUCKET_NOTIFICATIONS_HANDLER):
                acknowledge(
                    child.node.find_child("Role"),
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's bucket-notification function runs only during deployment; the AWS managed basic "
                    "execution policy only lets it write its own logs.",
                )

    def notify_on_new_manifests(self, queue: sqs.IQueue, *, prefix: str) -> None:
        """Send object-created events of the lake's manifests under ``prefix`` to ``queue``.

        A manifest is the last object ingest writes for an upload, so its arrival means new curated
        data (the training pipeline's retraining trigger). The raw bucket's notification is unaffected.
        """
        if not prefix.startswith(self.settings.manifests_area_prefix):
            raise ValueError(
                f"{prefix!r} is not under the lake's manifests prefix {self.settings.manifests_area_prefix!r}"
            )
        self.lake_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3_notifications.SqsDestination(queue), s3.NotificationKeyFilter(prefix=prefix)
        )

    # --- failure alarm -------------------------------------------------------------------------

    def _build_dead_letter_alarm(self) -> cloudwatch.Alarm:
        return Alerting.dead_letter_alarm(
            self,
            "IngestDeadLetterAlarm",
            queue=self.dead_letter_queue,
            description=(
                f"Uploads of {self.settings.usecase_name} failed ingestion after retries; "
                "their events wait in the ingest dead-letter queue."
            ),
        )
