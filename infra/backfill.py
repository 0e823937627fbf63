"""The backfill: one function that re-ingests one retained object under a new contract version.

The CLI (``python -m cli backfill``) lists the objects and invokes it per object with bounded concurrency,
then switches training's curated set; a Step Functions Map could drive the same function. Its role reads the
raw bucket (any version) and the use case's manifests, and writes only the use case's ``contract=*`` folders
of the curated, quarantine and manifests areas: it can never touch the live curated set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.layers import dependency_layer
from infra.nag import acknowledge, logical_id
from infra.python_function import python_function
from infra.settings import FUNCTIONS_DIR, LAYERS_DIR, USECASE_FILE_IN_BUNDLE
from shared.backfill.environment import BackfillEnvironment
from shared.lake import layout as lake_keys


@dataclass(frozen=True, kw_only=True)
class BackfillSettings:
    """The backfill function of one use case: its size, and the lake prefixes it may write."""

    usecase_name: str
    usecase_file: Path
    source_dir: Path = FUNCTIONS_DIR / "backfill_object"
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


class Backfill(Construct):
    """The backfill function and its least-privilege role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: BackfillSettings,
        raw_bucket: s3.IBucket,
        lake_bucket: s3.IBucket,
        shared_code_layer: lambda_.ILayerVersion,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
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
            layers=[
                dependency_layer(self, "BackfillDependencies", requirements_file=settings.requirements_file),
                shared_code_layer,
            ],
            environment=BackfillEnvironment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                lake_bucket=lake_bucket.bucket_name,
                service_name=settings.service_name,
            ),
            retry_attempts=0,
        )
        self._grant_least_privilege(raw_bucket, lake_bucket)

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
