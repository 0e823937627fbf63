"""The scoring API: REST API (API key + usage plan) → score function → prediction log and review queues.

::

    client ──x-api-key──► API Gateway (REST, stage ``api``) ──proxy──► score λ (onnxruntime)
        POST /v1/{usecase}/predict        API key         │ reads the deployment table (champion / challenger)
        POST /v2/models/{usecase}/infer  API key         │ (bulk scoring, Open Inference Protocol columns)
        POST /v1/{usecase}/feedback       API key         │ reads models/{usecase}/ (ONNX), writes feedback/{usecase}/
        GET  /v1/{usecase}/openapi.json   public          │ heavy models: sagemaker:InvokeEndpoint
                                                          ├──► prediction-log queue ──(batches)──► prediction-log λ
                                                          │                           (writes predictions/{usecase}/)
                                                          └──► human-review queue (scores inside the review band)

Callers authenticate with an API key; its usage plan throttles them at the use case's
``[serving]`` rate and burst (API Gateway answers 429 beyond it) and applies its daily quota.
IAM authorization is the option for internal callers (a second method set or a private API), not
built here. ``openapi.json`` describes the API and serves no data, so it is public, under a low
method-level throttle.

The score function's state lives in the deployment table (``usecase`` / ``sk``; the promotion
workflow writes it) and in its own idempotency table: powertools' records for a retried
``Idempotency-Key``. The table is not shared with the data pipeline's: scoring records expire and
scale with request traffic, ingest records with uploads, and each capability owns its state.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.alerting import Alerting
from infra.data_pipeline import (
    IDEMPOTENCY_EXPIRY_ATTRIBUTE,
    IDEMPOTENCY_KEY_ATTRIBUTE,
    IDEMPOTENCY_TABLE_ACTIONS,
)
from infra.layers import dependency_layer
from infra.nag import acknowledge, logical_id
from infra.python_function import python_function
from infra.settings import USECASE_FILE_IN_BUNDLE, PredictionLogSettings, ScoreFunctionSettings, ScoringApiSettings
from shared.environment import UseCaseEnvironment
from shared.scoring.environment import PredictionLogEnvironment, ScoreSettings

# shared/deployment/adapters.py's table layout: the state is the item sk = "state", audit events sk = "event#...".
DEPLOYMENT_PARTITION_KEY = "usecase"
DEPLOYMENT_SORT_KEY = "sk"

API_VERSION = "v1"
OPEN_INFERENCE_VERSION = "v2"
"""The Open Inference Protocol's path prefix (``/v2/models/{usecase}/infer``)."""
USECASE_PATH_PARAMETER = "usecase"
API_KEY_HEADER = "x-api-key"
JSON = "application/json"
ScoringFunctionSource = ScoreFunctionSettings | PredictionLogSettings
X_RAY_ACK = (
    "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions."
)


class ScoringApi(Construct):
    """Deployment and idempotency tables, score function, queues, prediction-log function and REST API."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ScoringApiSettings,
        lake_bucket: s3.IBucket,
        shared_code_layer: lambda_.ILayerVersion,
        alerting: Alerting,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.lake_bucket = lake_bucket
        self.deployment_table = self._build_deployment_table()
        self.idempotency_table = self._build_idempotency_table()
        self.dependencies = dependency_layer(self, "Dependencies", requirements_file=settings.requirements_file)
        self.layers = [self.dependencies, shared_code_layer]
        self.prediction_log_dead_letter_queue, self.prediction_log_queue = self._build_prediction_log_queues()
        self.review_dead_letter_queue, self.review_queue = self._build_review_queues()
        self.score_function = self._build_score_function()
        self._grant_score_least_privilege()
        self.prediction_log_function = self._build_prediction_log_function()
        alerting.notify_on_alarm(self._build_prediction_log_dead_letter_alarm())
        alerting.notify_on_alarm(
            Alerting.dead_letter_alarm(
                self,
                "ReviewDeadLetterAlarm",
                queue=self.review_dead_letter_queue,
                description=f"Review messages of {settings.usecase_name} could not be taken in after retries; they "
                "wait in the review queue's dead-letter queue.",
            )
        )
        self.api = self._build_api()
        self.api_key, self.usage_plan = self._build_api_key_and_usage_plan()

    @property
    def api_url(self) -> str:
        """The stage URL, ending in ``/``; routes are ``v1/{usecase}/...`` below it."""
        return self.api.url

    # --- state -----------------------------------------------------------------------------------

    def _build_deployment_table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "DeploymentTable",
            partition_key=dynamodb.Attribute(name=DEPLOYMENT_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=DEPLOYMENT_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
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

    # --- queues ----------------------------------------------------------------------------------

    def _build_prediction_log_queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        log = self.settings.prediction_log
        dead_letters = Alerting.dead_letter_queue(
            self,
            "PredictionLogDeadLetterQueue",
            retention=log.dead_letter_retention,
            collects="the prediction log's dead-letter queue",
            items="records",
        )
        queue = sqs.Queue(
            self,
            "PredictionLogQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=log.queue_retention,
            # Lambda's rule: at least six times the function timeout, plus the batching window.
            visibility_timeout=Duration.seconds(6 * log.timeout.to_seconds() + log.batching_window.to_seconds()),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=log.max_receive_count, queue=dead_letters),
        )
        return dead_letters, queue

    def _build_review_queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        """The inbound buffer of human review (the review intake drains it into the review table)."""
        settings = self.settings
        dead_letters = Alerting.dead_letter_queue(
            self,
            "ReviewDeadLetterQueue",
            retention=settings.review_retention,
            collects="the review queue's dead-letter queue (messages the review intake could not read)",
            items="messages",
        )
        queue = sqs.Queue(
            self,
            "ReviewQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=settings.review_retention,
            visibility_timeout=settings.review_visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.review_max_receive_count, queue=dead_letters
            ),
        )
        return dead_letters, queue

    # --- functions -------------------------------------------------------------------------------

    def _build_function(
        self,
        construct_id: str,
        *,
        source: ScoringFunctionSource,
        description: str,
        environment: type[UseCaseEnvironment],
        variables: dict[str, str | None] | None = None,
    ) -> lambda_.Function:
        """``variables``: the function's own, by ``environment``'s field names."""
        settings = self.settings
        return python_function(
            self,
            construct_id,
            source_dir=source.source_dir,
            usecase_file=settings.usecase_file,
            description=description,
            memory_size_mb=source.memory_size_mb,
            timeout=source.timeout,
            layers=self.layers,
            log_retention=settings.log_retention,
            environment=environment.lambda_environment(
                usecase_file=USECASE_FILE_IN_BUNDLE,
                lake_bucket=self.lake_bucket.bucket_name,
                **(variables or {}),
                service_name=source.service_name,
                metrics_namespace=settings.metrics_namespace,
                log_level=settings.log_level,
            ),
        )

    def _build_score_function(self) -> lambda_.Function:
        settings = self.settings
        return self._build_function(
            "ScoreFunction",
            source=settings.score,
            description=f"Score {settings.usecase_name} requests with the deployed champion (and challenger)",
            environment=ScoreSettings,
            variables={
                "deployment_table": self.deployment_table.table_name,
                "prediction_log_queue_url": self.prediction_log_queue.queue_url,
                "review_queue_url": self.review_queue.queue_url,
                "idempotency_table": self.idempotency_table.table_name,
                "sagemaker_endpoint_name": settings.endpoint_name,
            },
        )

    def _grant_score_least_privilege(self) -> None:
        settings, lake = self.settings, self.lake_bucket
        role = self.score_function.role
        assert role is not None
        statements = [
            iam.PolicyStatement(
                sid="ReadModels",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{settings.models_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="WriteFeedback",
                actions=["s3:PutObject"],
                resources=[lake.arn_for_objects(f"{settings.feedback_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="DescribeModelPackages",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[self._model_package_arn("*")],
            ),
            iam.PolicyStatement(
                sid="ReadDeploymentState",
                actions=["dynamodb:GetItem", "dynamodb:Query"],
                resources=[self.deployment_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="RecordIdempotency",
                actions=list(IDEMPOTENCY_TABLE_ACTIONS),
                resources=[self.idempotency_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="ReadLatestMonitoringReport",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{settings.reports_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="ListMonitoringReports",
                actions=["s3:ListBucket"],
                resources=[lake.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{settings.reports_prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="SendPredictionsAndReviews",
                actions=["sqs:SendMessage"],
                resources=[self.prediction_log_queue.queue_arn, self.review_queue.queue_arn],
            ),
        ]
        if settings.endpoint_name is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="InvokeHeavyModelEndpoint",
                    actions=["sagemaker:InvokeEndpoint"],
                    resources=[self._endpoint_arn(settings.endpoint_name)],
                )
            )
        for statement in statements:
            role.add_to_principal_policy(statement)
        policy = role.node.find_child("DefaultPolicy")
        lake_id = logical_id(lake)
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{settings.models_prefix}*]",
            "Model files are keyed by training run id under the use case's models prefix; the score function "
            "may only read objects there (s3:GetObject).",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{settings.reports_prefix}*]",
            "Monitoring reports are keyed by run id under the use case's reports prefix; the score function reads "
            "the latest (the segments under an alert route predictions to review), read only.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{settings.feedback_prefix}*]",
            "Feedback objects are keyed by a hash of each label item under the use case's feedback prefix; "
            "the score function may only put objects there.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            f"model-package/{settings.model_package_group_name}/*]",
            "Deployed models are versions of this use case's model package group, numbered by SageMaker as "
            "they are registered; the function may only describe them.",
        )
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", X_RAY_ACK)

    def _build_prediction_log_function(self) -> lambda_.Function:
        settings, log = self.settings, self.settings.prediction_log
        function = self._build_function(
            "PredictionLogFunction",
            source=log,
            description=f"Write {settings.usecase_name} predictions from the prediction-log queue to the lake",
            environment=PredictionLogEnvironment,
        )
        function.add_event_source(
            event_sources.SqsEventSource(
                self.prediction_log_queue,
                batch_size=log.batch_size,
                max_batching_window=log.batching_window,
                report_batch_item_failures=True,
            )
        )
        role = function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WritePredictionLog",
                actions=["s3:PutObject"],
                resources=[self.lake_bucket.arn_for_objects(f"{settings.predictions_prefix}*")],
            )
        )
        policy = role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.lake_bucket)}.Arn>/{settings.predictions_prefix}*]",
            "Prediction-log files are partitioned by date and hour under the use case's predictions prefix; "
            "the function may only put objects there.",
        )
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", X_RAY_ACK)
        return function

    def _build_prediction_log_dead_letter_alarm(self) -> cloudwatch.Alarm:
        return Alerting.dead_letter_alarm(
            self,
            "PredictionLogDeadLetterAlarm",
            queue=self.prediction_log_dead_letter_queue,
            description=(
                f"Prediction-log records of {self.settings.usecase_name} could not be written to the lake after "
                "retries; they wait in the prediction log's dead-letter queue."
            ),
        )

    # --- the REST API ----------------------------------------------------------------------------

    def _build_api(self) -> apigateway.RestApi:
        settings = self.settings
        access_logs = logs.LogGroup(self, "ApiAccessLogGroup", retention=settings.access_log_retention)
        openapi_path = f"/{API_VERSION}/{{{USECASE_PATH_PARAMETER}}}/openapi.json/GET"
        api = apigateway.RestApi(
            self,
            "Api",
            rest_api_name=f"sluice-{settings.usecase_name.replace('_', '-')}-scoring",
            description=f"Sluice scoring API of {settings.usecase_name}",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            api_key_source_type=apigateway.ApiKeySourceType.HEADER,
            # Execution and access logging need the account's API Gateway CloudWatch role.
            cloud_watch_role=True,
            deploy_options=apigateway.StageOptions(
                stage_name=settings.stage_name,
                tracing_enabled=True,
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry customer features: never in logs
                metrics_enabled=True,
                # Stage-wide defaults for every method: no more than one key's usage plan allows.
                throttling_rate_limit=settings.throttle_rate_per_second,
                throttling_burst_limit=settings.throttle_burst,
                method_options={
                    openapi_path: apigateway.MethodDeploymentOptions(
                        throttling_rate_limit=settings.openapi_throttle_rate_per_second,
                        throttling_burst_limit=settings.openapi_throttle_burst,
                    )
                },
            ),
        )
        # RestApi adds an output of its URL; the stack publishes it once, as ApiUrl.
        api.node.try_remove_child("Endpoint")
        self._acknowledge_api(api)
        validator = api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        integration = apigateway.LambdaIntegration(self.score_function, proxy=True, allow_test_invoke=False)
        usecase = api.root.add_resource(API_VERSION).add_resource(f"{{{USECASE_PATH_PARAMETER}}}")
        path_parameters = {f"method.request.path.{USECASE_PATH_PARAMETER}": True}
        routes = [
            ("predict", "POST", True, self._predict_model(api)),
            ("feedback", "POST", True, self._feedback_model(api)),
            ("openapi.json", "GET", False, None),
        ]
        for path, http_method, key_required, model in routes:
            method = usecase.add_resource(path).add_method(
                http_method,
                integration,
                api_key_required=key_required,
                request_parameters=path_parameters,
                request_validator=validator,
                request_models={JSON: model} if model is not None else None,
            )
            self._acknowledge_method(method, key_required=key_required)
        # Bulk callers in the Open Inference Protocol's shape (KServe / Triton v2): POST /v2/models/{usecase}/infer.
        infer = (
            api.root.add_resource(OPEN_INFERENCE_VERSION)
            .add_resource("models")
            .add_resource(f"{{{USECASE_PATH_PARAMETER}}}")
            .add_resource("infer")
            .add_method(
                "POST",
                integration,
                api_key_required=True,
                request_parameters=path_parameters,
                request_validator=validator,
                request_models={JSON: self._infer_model(api)},
            )
        )
        self._acknowledge_method(infer, key_required=True)
        return api

    def _infer_model(self, api: apigateway.RestApi) -> apigateway.Model:
        """Only the body's shape (named inputs); the score function checks each column against the contract."""
        return api.add_model(
            "InferRequest",
            content_type=JSON,
            schema=apigateway.JsonSchema(
                schema=apigateway.JsonSchemaVersion.DRAFT4,
                title="InferRequest",
                type=apigateway.JsonSchemaType.OBJECT,
                required=["inputs"],
                properties={
                    "inputs": apigateway.JsonSchema(
                        type=apigateway.JsonSchemaType.ARRAY,
                        min_items=1,
                        items=apigateway.JsonSchema(
                            type=apigateway.JsonSchemaType.OBJECT, required=["name", "shape", "datatype", "data"]
                        ),
                    )
                },
            ),
        )

    def _predict_model(self, api: apigateway.RestApi) -> apigateway.Model:
        """Only the body's shape: the score function validates each record against the contract (422)."""
        return api.add_model(
            "PredictRequest",
            content_type=JSON,
            schema=apigateway.JsonSchema(
                schema=apigateway.JsonSchemaVersion.DRAFT4,
                title="PredictRequest",
                type=apigateway.JsonSchemaType.OBJECT,
                properties={
                    "record": apigateway.JsonSchema(type=apigateway.JsonSchemaType.OBJECT),
                    "records": apigateway.JsonSchema(type=apigateway.JsonSchemaType.ARRAY, min_items=1),
                },
                any_of=[apigateway.JsonSchema(required=["record"]), apigateway.JsonSchema(required=["records"])],
            ),
        )

    def _feedback_model(self, api: apigateway.RestApi) -> apigateway.Model:
        return api.add_model(
            "FeedbackRequest",
            content_type=JSON,
            schema=apigateway.JsonSchema(
                schema=apigateway.JsonSchemaVersion.DRAFT4,
                title="FeedbackRequest",
                type=apigateway.JsonSchemaType.OBJECT,
                required=["labels"],
                properties={
                    "labels": apigateway.JsonSchema(
                        type=apigateway.JsonSchemaType.ARRAY,
                        min_items=1,
                        items=apigateway.JsonSchema(type=apigateway.JsonSchemaType.OBJECT, required=["label"]),
                    )
                },
            ),
        )

    def _build_api_key_and_usage_plan(self) -> tuple[apigateway.ApiKey, apigateway.UsagePlan]:
        settings = self.settings
        key = apigateway.ApiKey(
            self,
            "ApiKey",
            description=f"Sluice scoring API of {settings.usecase_name}: send it in the {API_KEY_HEADER} header",
            enabled=True,
        )
        plan = apigateway.UsagePlan(
            self,
            "UsagePlan",
            description=f"Limits of {settings.usecase_name} API callers (the use case's [serving] settings)",
            throttle=apigateway.ThrottleSettings(
                rate_limit=settings.throttle_rate_per_second, burst_limit=settings.throttle_burst
            ),
            quota=(
                apigateway.QuotaSettings(limit=settings.daily_quota, period=apigateway.Period.DAY)
                if settings.daily_quota is not None
                else None
            ),
            api_stages=[apigateway.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        plan.add_api_key(key)
        return key, plan

    # --- cdk-nag -------------------------------------------------------------------------------

    def _acknowledge_api(self, api: apigateway.RestApi) -> None:
        acknowledge(
            api.deployment_stage,
            "AwsSolutions-APIG3",
            "No AWS WAF web ACL: every scoring call needs an API key, and its usage plan throttles and caps it; "
            "a web ACL (rate rules, IP sets) can be associated with the stage where the API faces the internet.",
        )
        role = api.node.try_find_child("CloudWatchRole")
        if role is not None:
            acknowledge(
                role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-wide logging role: the AWS managed policy only lets API Gateway write "
                "execution and access logs to CloudWatch Logs.",
            )

    def _acknowledge_method(self, method: apigateway.Method, *, key_required: bool) -> None:
        if key_required:
            reason = (
                "Callers authenticate with an API key (x-api-key) tied to a usage plan that throttles and caps "
                "them; IAM authorization is the option for internal callers, a Cognito authorizer for end users."
            )
        else:
            reason = (
                "The OpenAPI document describes the API and serves no data or predictions, so it is public; a "
                "method-level throttle bounds what anonymous callers can cost."
            )
        acknowledge(method, "AwsSolutions-APIG4", reason)
        acknowledge(method, "AwsSolutions-COG4", reason)

    def _model_package_arn(self, version: str) -> str:
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{self.settings.model_package_group_name}/{version}",
        )

    def _endpoint_arn(self, endpoint_name: str) -> str:
        # SageMaker lower-cases endpoint names in ARNs.
        return Stack.of(self).format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())
