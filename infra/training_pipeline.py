"""The training pipeline: lake → training set → SageMaker training job → gate → model registry.

A Standard state machine runs one training run::

    BuildTrainingSet (λ) → CreateTrainingJob → WaitForTrainingJob ⇄ DescribeTrainingJob → TrainingJobStatus?
        Completed → RegisterModel (λ: unpack, verify, gate, CreateModelPackage) → Registered (Succeed)
        InProgress | Stopping | anything else → WaitForTrainingJob
        Failed | Stopped → a reason → NotifyFailure (SNS) → TrainingFailed (Fail)
    Every task catches States.ALL into the same NotifyFailure → TrainingFailed path.

The job is polled (request-response ``CreateTrainingJob``, then ``DescribeTrainingJob`` in a
Wait/Choice loop) rather than ``.sync``: the same definition runs on AWS and on the embedded cloud,
whose Step Functions interpreter has no ``.sync``. Both SageMaker calls go through the AWS SDK
integration (``arn:aws:states:::aws-sdk:sagemaker:...``): the CDK task for training jobs has no
spot training or checkpoints. A successful run with N polls takes 3N + 4 state transitions.

Runs start three ways: on the use case's schedule (an EventBridge rule), explicitly
(``aws stepfunctions start-execution --state-machine-arn <TrainingStateMachineArn> --name <job name>
--input '{"cutoff": "2026-01-01T00:00:00+00:00"}'``; the execution name becomes the training job's
name, so it must match ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``), and on new curated data: the lake's
manifest notifications gather in an SQS queue, and the trigger function receives them in batches
spread over ``debounce`` and starts one run unless one is already running.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, AssetHashType, Aws, CfnMapping, Duration, Fn, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.alerting import Alerting
from infra.bundling import TRAINING_DIR, training_source_bundling
from infra.layers import dependency_layer
from infra.nag import acknowledge, logical_id
from infra.python_function import python_function
from infra.settings import USECASE_FILE_IN_BUNDLE, TrainingFunctionSettings, TrainingPipelineSettings
from shared.environment import USECASE_FILE_VARIABLE, FunctionEnvironment
from shared.training.environment import RegisterEnvironment, TrainingSetEnvironment, TriggerEnvironment

SKLEARN_FRAMEWORK = "sklearn"
SKLEARN_VERSION = "1.2-1"
"""SageMaker's scikit-learn framework image, for training and for a heavy model's endpoint.

Its URI comes from the SageMaker Python SDK (``sagemaker-core``: ``sagemaker.core.image_uris``), which
reads the registry account of each region from the JSON it bundles: no network at synth time. The
scikit-learn estimators run on it (CPU only); an XGBoost use case gets :data:`XGBOOST_FRAMEWORK`'s image.
"""
XGBOOST_FRAMEWORK = "xgboost"
XGBOOST_VERSION = "3.2-0"
"""SageMaker's XGBoost framework image (GPU-capable xgboost 3.2, as requirements.txt pins for development):
the same entry point in script mode, training on the use case's GPU instance with ``device="cuda"``."""


@dataclass(frozen=True)
class Framework:
    """A SageMaker framework image, by the SDK's name and version."""

    name: str
    version: str
    serves_gpu: bool = False
    """Whether the image also serves on a GPU instance (CUDA inside: SageMaker's XGBoost image does; the
    scikit-learn one is CPU only, so a GPU endpoint of a scikit-learn model takes a GPU image of its own)."""

    @property
    def mapping_id(self) -> str:
        return f"{self.name.capitalize()}ImageAccounts"


SKLEARN_IMAGE = Framework(SKLEARN_FRAMEWORK, SKLEARN_VERSION)
ESTIMATOR_FRAMEWORKS = {"xgboost": Framework(XGBOOST_FRAMEWORK, XGBOOST_VERSION, serves_gpu=True)}
"""Estimators that need a framework image of their own; every other estimator is scikit-learn's."""


def framework_for(estimator: str) -> Framework:
    """The framework image a use case's estimator trains (and a heavy model serves) on."""
    return ESTIMATOR_FRAMEWORKS.get(estimator, SKLEARN_IMAGE)


IMAGE_SCOPES = ("training", "inference")
"""The image serves both: the training job runs it, and so does the endpoint's model."""


class FrameworkImageError(ValueError):
    """The SDK lists no image of the framework version for a region (or not one image for all)."""


@dataclass(frozen=True, kw_only=True)
class FrameworkImage:
    """A framework image as the template uses it; each part a literal or a token of the stack's region."""

    uri: str
    account: str
    repository: str


def framework_image_registries(framework: str, version: str) -> dict[str, str]:
    """Region → registry account of ``framework`` ``version``, for every region the SDK lists with both
    a training and an inference image (from the same account)."""
    from sagemaker.core import image_uris

    config = image_uris.config_for_framework(framework)
    per_scope = []
    for scope in IMAGE_SCOPES:
        scoped = config.get(scope, config)
        versions = scoped["versions"]
        per_scope.append(versions[scoped.get("version_aliases", {}).get(version, version)]["registries"])
    training, *others = per_scope
    return {
        region: account
        for region, account in sorted(training.items())
        if all(other.get(region) == account for other in others)
    }


def framework_image_uri(framework: str, version: str, region: str) -> str:
    """The SDK's image URI of ``framework`` ``version`` in ``region``, one for training and inference."""
    from sagemaker.core import image_uris

    try:
        uris = {image_uris.retrieve(framework, region, version, image_scope=scope) for scope in IMAGE_SCOPES}
    except ValueError as exc:
        raise FrameworkImageError(f"no {framework} {version} image in {region}: {exc}") from exc
    if len(uris) != 1:
        raise FrameworkImageError(f"{framework} {version} has different training and inference images: {uris}")
    return uris.pop()


def framework_image(scope: Construct, mapping_id: str, *, framework: str, version: str) -> FrameworkImage:
    """The image for the stack's region: the SDK's URI where the region is known at synth time; in a
    region-agnostic stack, the account comes from a ``Mappings`` entry (``mapping_id``) that holds every
    region the SDK lists, looked up at deploy time."""
    stack = Stack.of(scope)
    region = stack.region
    if not Token.is_unresolved(region):
        uri = framework_image_uri(framework, version, region)
        account, _, rest = uri.partition(".dkr.ecr.")
        return FrameworkImage(uri=uri, account=account, repository=rest.split("/", 1)[1].split(":", 1)[0])
    registries = framework_image_registries(framework, version)
    if not registries:
        raise FrameworkImageError(f"the SDK lists no region with a {framework} {version} image")
    reference_region = "us-east-1" if "us-east-1" in registries else next(iter(registries))
    path = framework_image_uri(framework, version, reference_region).split("/", 1)[1]
    mapping = CfnMapping(
        scope,
        mapping_id,
        mapping={region: {"account": account} for region, account in registries.items()},
    )
    account = mapping.find_in_map(Aws.REGION, "account")
    uri = Fn.join("", [account, ".dkr.ecr.", Aws.REGION, ".", Aws.URL_SUFFIX, f"/{path}"])
    return FrameworkImage(uri=uri, account=account, repository=path.split(":", 1)[0])


TRAINING_JOB_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
SAGEMAKER_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
TRAINING_CHANNEL = "train"
"""The input channel of the training set: the container sees it as ``SM_CHANNEL_TRAIN``."""
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
BATCH_SIZE = 100
SQS_BATCH_WITHOUT_WINDOW = 10
"""Lambda allows batches over 10 SQS messages only with a batching window."""


def hyperparameter(value: Any) -> str:
    """Script mode's encoding: every hyperparameter is a JSON document in a string."""
    return json.dumps(value)


def _git(*args: str) -> str | None:
    """The output of one git command in the repository, or None where git or the checkout is missing."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 - a fixed git command, no user input
            [git, *args],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def code_version(source_hash: str) -> str:
    """What lineage records as the code: the git commit the app was synthesized from (``-dirty`` with
    uncommitted changes to tracked files) and the content hash of the training source bundle, which
    pins the code even where there is no git checkout (``nogit``)."""
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else False
    return f"{(commit or 'nogit')[:12]}{'-dirty' if dirty else ''}+src.{source_hash[:12]}"


class TrainingPipeline(Construct):
    """Model package group, training source, training role, functions, state machine and its triggers."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: TrainingPipelineSettings,
        lake_bucket: s3.IBucket,
        shared_code_layer: lambda_.ILayerVersion,
        alerting: Alerting,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.lake_bucket = lake_bucket
        self.alerting = alerting
        self.model_package_group = self._build_model_package_group()
        self.source, self.code_version = self._build_training_source()
        self.image_uri = self._training_image_uri()
        self.training_role = self._build_training_role()
        self.dependencies = dependency_layer(self, "Dependencies", requirements_file=settings.requirements_file)
        self.layers = [self.dependencies, shared_code_layer]
        self.training_set_function = self._build_training_set_function()
        self.register_function = self._build_register_function()
        self.state_machine = self._build_state_machine()
        self.schedule_rule = self._build_schedule()
        self.trigger_dead_letter_queue, self.trigger_queue = self._build_trigger_queues()
        self.trigger_function = self._build_trigger_function()
        alerting.notify_on_alarm(self._build_trigger_dead_letter_alarm())

    # --- registry, code and image --------------------------------------------------------------

    def _build_model_package_group(self) -> sagemaker.CfnModelPackageGroup:
        return sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=self.settings.model_package_group_name,
            model_package_group_description=f"Models of the {self.settings.usecase_name} use case, gated and versioned",
        )

    @property
    def model_package_group_name(self) -> str:
        return self.settings.model_package_group_name

    def _build_training_source(self) -> tuple[s3_assets.Asset, str]:
        bundling, asset_hash = training_source_bundling(self.settings.usecase_file)
        asset = s3_assets.Asset(
            self,
            "TrainingSource",
            path=str(TRAINING_DIR),
            asset_hash=asset_hash,
            asset_hash_type=AssetHashType.CUSTOM,
            bundling=bundling,
        )
        return asset, code_version(asset_hash)

    def _training_image_uri(self) -> str:
        framework = framework_for(self.settings.job.estimator)
        image = framework_image(self, framework.mapping_id, framework=framework.name, version=framework.version)
        self.image_account = image.account
        self.image_repository_arn = Fn.join(
            "", [f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:", image.account, f":repository/{image.repository}"]
        )
        return image.uri

    # --- the training role ---------------------------------------------------------------------

    def _build_training_role(self) -> iam.Role:
        settings, lake = self.settings, self.lake_bucket
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "TrainingJobRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker training jobs of {settings.usecase_name}: read training sets, write outputs",
        )
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=TRAINING_JOB_LOG_GROUP,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        statements = [
            iam.PolicyStatement(
                sid="ReadTrainingSets",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{settings.training_sets_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket"],
                resources=[lake.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{settings.training_sets_prefix}*", f"{settings.sagemaker_prefix}*"]}
                },
            ),
            iam.PolicyStatement(
                sid="WriteJobOutputAndCheckpoints",
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[lake.arn_for_objects(f"{settings.sagemaker_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="ReadTrainingCode",
                actions=["s3:GetObject"],
                resources=[self.source.bucket.arn_for_objects(self.source.s3_object_key)],
            ),
            iam.PolicyStatement(
                sid="WriteTrainingLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[log_group_arn, f"{log_group_arn}:log-stream:*"],
            ),
            iam.PolicyStatement(
                sid="PullTrainingImage",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[self.image_repository_arn],
            ),
            iam.PolicyStatement(sid="AuthenticateToEcr", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="PublishTrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringEquals": {"cloudwatch:namespace": [SAGEMAKER_METRICS_NAMESPACE, settings.metrics_namespace]}
                },
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        policy = role.node.find_child("DefaultPolicy")
        lake_id = logical_id(lake)
        for prefix in (settings.training_sets_prefix, settings.sagemaker_prefix):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{prefix}*]",
                f"Training jobs read and write object keys derived from their run id under {prefix} only.",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
            f"log-group:{TRAINING_JOB_LOG_GROUP}:log-stream:*]",
            "SageMaker names each training job's log stream after the job; the role may write streams of "
            "SageMaker's training-job log group only.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource-level permission, and cloudwatch:PutMetricData "
            "is limited by the cloudwatch:namespace condition to SageMaker's and Sluice's namespaces.",
        )
        return role

    # --- functions -----------------------------------------------------------------------------

    def _build_function(
        self,
        construct_id: str,
        *,
        fn: TrainingFunctionSettings,
        description: str,
        environment: type[FunctionEnvironment],
        variables: dict[str, str],
    ) -> lambda_.Function:
        """``variables``: the function's own, by ``environment``'s field names, after powertools'."""
        return python_function(
            self,
            construct_id,
            source_dir=fn.source_dir,
            usecase_file=self.settings.usecase_file,
            description=description,
            memory_size_mb=fn.memory_size_mb,
            timeout=fn.timeout,
            ephemeral_storage_size=fn.ephemeral_storage,
            layers=self.layers,
            log_retention=self.settings.log_retention,
            environment=environment.lambda_environment(
                service_name=fn.service_name,
                metrics_namespace=self.settings.metrics_namespace,
                log_level=self.settings.log_level,
                **variables,
            ),
        )

    def _acknowledge_function_policy(self, function: lambda_.Function, prefixes: list[str]) -> None:
        assert function.role is not None
        policy = function.role.node.find_child("DefaultPolicy")
        lake_id = logical_id(self.lake_bucket)
        for prefix in prefixes:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{prefix}*]",
                f"Object keys under the lake's {prefix} prefix are derived from run ids and uploads; "
                "access is limited to that prefix.",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
            "support no resource-level permissions.",
        )

    def _build_training_set_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._build_function(
            "TrainingSetFunction",
            fn=settings.training_set,
            description=f"Build a training set of {settings.usecase_name} from the lake's curated data",
            environment=TrainingSetEnvironment,
            variables={"usecase_file": USECASE_FILE_IN_BUNDLE, "lake_bucket": lake.bucket_name},
        )
        curated = settings.curated_prefix
        role = function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadCuratedDataAndManifests",
                actions=["s3:GetObject"],
                resources=[
                    lake.arn_for_objects(f"{prefix}*")
                    for prefix in (curated, settings.manifests_prefix, settings.training_sets_prefix)
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteTrainingSets",
                actions=["s3:PutObject"],
                resources=[lake.arn_for_objects(f"{settings.training_sets_prefix}*")],
            )
        )
        # Listing finds the curated files of a use case; the role may read all of them anyway.
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ListLake", actions=["s3:ListBucket"], resources=[lake.bucket_arn])
        )
        self._acknowledge_function_policy(function, [curated, settings.manifests_prefix, settings.training_sets_prefix])
        return function

    def _build_register_function(self) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._build_function(
            "RegisterFunction",
            fn=settings.register,
            description=f"Gate a trained {settings.usecase_name} model and register it in its model package group",
            environment=RegisterEnvironment,
            variables={
                "usecase_file": USECASE_FILE_IN_BUNDLE,
                "lake_bucket": lake.bucket_name,
                "model_package_group": settings.model_package_group_name,
                "inference_image": self.image_uri,
            },
        )
        role = function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadJobOutput",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{settings.sagemaker_prefix}*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteUnpackedModels",
                actions=["s3:PutObject"],
                resources=[lake.arn_for_objects(f"{settings.models_prefix}*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RegisterModelPackages",
                actions=["sagemaker:CreateModelPackage"],
                resources=[self._model_package_arn("*")],
            )
        )
        self._acknowledge_function_policy(function, [settings.sagemaker_prefix, settings.models_prefix])
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            f"model-package/{settings.model_package_group_name}/*]",
            "Each registration creates the next version of this use case's model package group; "
            "versions are numbered by SageMaker.",
        )
        return function

    def register_for_endpoint(self, *, image_uri: str, inference_program: str, inference_code: s3_assets.Asset) -> None:
        """Register the models for the endpoint that serves them: their packages' container is the endpoint's
        image with its inference code (``SAGEMAKER_PROGRAM``, ``SAGEMAKER_SUBMIT_DIRECTORY``), which the model
        created from a package at promotion runs with (the GPU source archive on a GPU endpoint)."""
        variables = RegisterEnvironment.lambda_environment(
            inference_image=image_uri,
            inference_program=inference_program,
            inference_code_url=inference_code.s3_object_url,
        )
        for name, value in variables.items():
            self.register_function.add_environment(name, value)

    def _model_package_arn(self, version: str) -> str:
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{self.settings.model_package_group_name}/{version}",
        )

    def _training_job_arn(self) -> str:
        return Stack.of(self).format_arn(service="sagemaker", resource="training-job", resource_name="*")

    # --- the state machine ---------------------------------------------------------------------

    def _hyperparameters(self) -> dict[str, Any]:
        job = self.settings.job
        fixed = {name: hyperparameter(value) for name, value in job.hyperparameters.items()}
        return {
            **fixed,
            "sagemaker_program": hyperparameter(job.entry_point),
            "sagemaker_submit_directory": f'"{self.source.s3_object_url}"',
            "sagemaker_region": f'"{Aws.REGION}"',
            "code_version": hyperparameter(self.code_version),
            "cutoff": sfn.JsonPath.json_to_string(sfn.JsonPath.string_at("$.training_set.cutoff")),
            "training_job_name": sfn.JsonPath.json_to_string(sfn.JsonPath.string_at("$$.Execution.Name")),
        }

    def _create_training_job_parameters(self) -> dict[str, Any]:
        settings, job, lake = self.settings, self.settings.job, self.lake_bucket
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": int(job.max_runtime.to_seconds())}
        parameters: dict[str, Any] = {
            "TrainingJobName": sfn.JsonPath.string_at("$$.Execution.Name"),
            "RoleArn": self.training_role.role_arn,
            "AlgorithmSpecification": {"TrainingImage": self.image_uri, "TrainingInputMode": "File"},
            "HyperParameters": self._hyperparameters(),
            "InputDataConfig": [
                {
                    "ChannelName": TRAINING_CHANNEL,
                    "InputMode": "File",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": sfn.JsonPath.string_at("$.training_set.s3_uri"),
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "OutputDataConfig": {
                "S3OutputPath": f"s3://{lake.bucket_name}/{settings.training_output_prefix}",
            },
            "ResourceConfig": {
                "InstanceType": job.instance_type,
                "InstanceCount": job.instance_count,
                "VolumeSizeInGB": job.volume_size_gb,
            },
            "StoppingCondition": stopping,
            "Environment": {USECASE_FILE_VARIABLE: USECASE_FILE_IN_BUNDLE},
        }
        if job.use_spot:
            stopping["MaxWaitTimeInSeconds"] = int(job.max_wait.to_seconds())
            parameters["EnableManagedSpotTraining"] = True
            parameters["CheckpointConfig"] = {
                "S3Uri": sfn.JsonPath.format(
                    f"s3://{lake.bucket_name}/{settings.sagemaker_prefix}checkpoints/{{}}/",
                    sfn.JsonPath.string_at("$$.Execution.Name"),
                )
            }
        return parameters

    def _lambda_task(
        self,
        construct_id: str,
        function: lambda_.IFunction,
        payload: dict[str, Any],
        *,
        result_path: str,
        result_fields: tuple[str, ...],
    ) -> tasks.LambdaInvoke:
        """A ``lambda:invoke`` task keeping ``result_fields`` of the function's response at ``result_path``."""
        task = tasks.LambdaInvoke(
            self,
            construct_id,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(payload),
            retry_on_service_exceptions=False,
            result_selector={name: sfn.JsonPath.object_at(f"$.Payload.{name}") for name in result_fields},
            result_path=result_path,
        )
        task.add_retry(errors=LAMBDA_SERVICE_ERRORS, interval=Duration.seconds(2), max_attempts=6, backoff_rate=2)
        return task

    def _build_state_machine(self) -> sfn.StateMachine:
        settings = self.settings
        failure = "$.failure"
        notify = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=self.alerting.topic,
            subject=f"Sluice: training of {settings.usecase_name} failed",
            message=sfn.TaskInput.from_object(
                {
                    "usecase": settings.usecase_name,
                    "execution": sfn.JsonPath.string_at("$$.Execution.Id"),
                    "error": sfn.JsonPath.string_at(f"{failure}.Error"),
                    "cause": sfn.JsonPath.string_at(f"{failure}.Cause"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        notify.next(sfn.Fail(self, "TrainingFailed", error_path=f"{failure}.Error", cause_path=f"{failure}.Cause"))

        build = self._lambda_task(
            "BuildTrainingSet",
            self.training_set_function,
            {
                "run_id": sfn.JsonPath.string_at("$$.Execution.Name"),
                "started_at": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                "request": sfn.JsonPath.object_at("$"),
            },
            result_path="$.training_set",
            result_fields=("report", "s3_uri", "cutoff"),
        )
        create = tasks.CallAwsService(
            self,
            "CreateTrainingJob",
            service="sagemaker",
            action="createTrainingJob",
            iam_action="sagemaker:CreateTrainingJob",
            iam_resources=[self._training_job_arn()],
            parameters=self._create_training_job_parameters(),
            result_path="$.training_job",
        )
        wait = sfn.Wait(self, "WaitForTrainingJob", time=sfn.WaitTime.duration(settings.poll_interval))
        describe = tasks.CallAwsService(
            self,
            "DescribeTrainingJob",
            service="sagemaker",
            action="describeTrainingJob",
            iam_action="sagemaker:DescribeTrainingJob",
            iam_resources=[self._training_job_arn()],
            parameters={"TrainingJobName": sfn.JsonPath.string_at("$$.Execution.Name")},
            result_path="$.job",
        )
        register = self._lambda_task(
            "RegisterModel",
            self.register_function,
            {
                "run_id": sfn.JsonPath.string_at("$$.Execution.Name"),
                "job_name": sfn.JsonPath.string_at("$.job.TrainingJobName"),
                "model_data_url": sfn.JsonPath.string_at("$.job.ModelArtifacts.S3ModelArtifacts"),
            },
            result_path="$.registration",
            result_fields=("package_arn", "version", "approval_status", "model_prefix"),
        )
        for task in (build, create, describe, register):
            task.add_catch(notify, errors=[sfn.Errors.ALL], result_path=failure)

        job_failed = sfn.Pass(
            self,
            "TrainingJobFailed",
            parameters={
                "Error": "TrainingJobFailed",
                "Cause": sfn.JsonPath.format(
                    "Training job {} failed: {}",
                    sfn.JsonPath.string_at("$.job.TrainingJobName"),
                    sfn.JsonPath.string_at("$.job.FailureReason"),
                ),
            },
            result_path=failure,
        ).next(notify)
        job_stopped = sfn.Pass(
            self,
            "TrainingJobStopped",
            parameters={
                "Error": "TrainingJobStopped",
                "Cause": sfn.JsonPath.format(
                    "Training job {} was stopped ({})",
                    sfn.JsonPath.string_at("$.job.TrainingJobName"),
                    sfn.JsonPath.string_at("$.job.SecondaryStatus"),
                ),
            },
            result_path=failure,
        ).next(notify)
        status = "$.job.TrainingJobStatus"
        check = (
            sfn.Choice(self, "TrainingJobStatus")
            .when(sfn.Condition.string_equals(status, "Completed"), register.next(sfn.Succeed(self, "Registered")))
            .when(sfn.Condition.string_equals(status, "Failed"), job_failed)
            .when(sfn.Condition.string_equals(status, "Stopped"), job_stopped)
            .when(
                sfn.Condition.or_(
                    sfn.Condition.string_equals(status, "InProgress"), sfn.Condition.string_equals(status, "Stopping")
                ),
                wait,
            )
            .otherwise(wait)
        )
        definition = build.next(create).next(wait).next(describe).next(check)

        log_group = logs.LogGroup(self, "StateMachineLogGroup", retention=settings.log_retention)
        state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=f"Train, gate and register a model of {settings.usecase_name}",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.seconds(settings.job.max_wait.to_seconds() + 3600),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="PassTrainingRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[self.training_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # The alarm topic is KMS-encrypted: publishing to it needs the key (CDK's SNS task grants sns:Publish only).
        self.alerting.topic_key.grant(state_machine, "kms:Decrypt", "kms:GenerateDataKey")
        self._acknowledge_state_machine_policy(state_machine)
        return state_machine

    def _acknowledge_state_machine_policy(self, state_machine: sfn.StateMachine) -> None:
        policy = state_machine.role.node.find_child("DefaultPolicy")
        for function in (self.training_set_function, self.register_function):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{logical_id(function)}.Arn>:*]",
                "CDK grants invoking any version or alias of the pipeline's own function (its ARN with ':*').",
            )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*]",
            "Training jobs are named after executions, which are not known before they start; "
            "the state machine may only create and describe training jobs.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:*LogDelivery, Describe*) and X-Ray tracing support no "
            "resource-level permissions.",
        )

    # --- triggers ------------------------------------------------------------------------------

    def _build_schedule(self) -> events.Rule:
        return events.Rule(
            self,
            "Schedule",
            description=f"Retrain {self.settings.usecase_name} on its schedule",
            schedule=events.Schedule.expression(self.settings.schedule),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine, input=events.RuleTargetInput.from_object({"trigger": "schedule"})
                )
            ],
        )

    def _build_trigger_queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        settings = self.settings
        dead_letters = Alerting.dead_letter_queue(
            self,
            "TriggerDeadLetterQueue",
            retention=settings.dead_letter_retention,
            collects="the training trigger queue's dead-letter queue",
            items="notifications",
        )
        window = settings.debounce.to_seconds()
        queue = sqs.Queue(
            self,
            "TriggerQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=settings.queue_retention,
            # Lambda's rule: at least six times the function timeout, plus the batching window.
            visibility_timeout=Duration.seconds(6 * settings.trigger.timeout.to_seconds() + window),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=settings.max_receive_count, queue=dead_letters),
        )
        return dead_letters, queue

    def _build_trigger_function(self) -> lambda_.Function:
        settings = self.settings
        function = self._build_function(
            "TriggerFunction",
            fn=settings.trigger,
            description=f"Start one training run of {settings.usecase_name} for a batch of new curated data",
            environment=TriggerEnvironment,
            variables={
                "usecase": settings.usecase_name,
                "state_machine_arn": self.state_machine.state_machine_arn,
                "debounce_seconds": str(int(settings.debounce.to_seconds())),
            },
        )
        role = function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StartOneTrainingRun",
                actions=["states:ListExecutions", "states:StartExecution"],
                resources=[self.state_machine.state_machine_arn],
            )
        )
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
            "support no resource-level permissions.",
        )
        window = settings.debounce
        batch_size = BATCH_SIZE if window.to_seconds() > 0 else SQS_BATCH_WITHOUT_WINDOW
        function.add_event_source(
            event_sources.SqsEventSource(
                self.trigger_queue,
                batch_size=batch_size,
                max_batching_window=window if window.to_seconds() > 0 else None,
                report_batch_item_failures=True,
                max_concurrency=2,
            )
        )
        return function

    def _build_trigger_dead_letter_alarm(self) -> cloudwatch.Alarm:
        return Alerting.dead_letter_alarm(
            self,
            "TriggerDeadLetterAlarm",
            queue=self.trigger_dead_letter_queue,
            description=(
                f"New-data notifications of {self.settings.usecase_name} could not start a training run "
                "after retries; they wait in the trigger dead-letter queue."
            ),
        )
