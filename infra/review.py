"""Human review of one use case: the items table, the intake from the review queue, the sweep, the SLA alarm,
the reviewers' user pool and the reviewer's API under the scoring API.

::

    score λ ──routed predictions──► review queue (SQS) ──batches──► review-intake λ ──► review table (DynamoDB)
    EventBridge rate(5 minutes) ──► review-sweep λ: overdue items, unwritten labels, EMF operating metrics
                                                     └─ ReviewOldestItemAgeSeconds > [review] sla_seconds → SLA alarm
    reviewer ──ID token──► API Gateway (Cognito user pool authorizer) ──► review-api λ ──► table; labels → feedback/

Every review method of the API has the Cognito authorizer except ``GET .../review/login``, the static sign-in
form (no data; see :mod:`shared.review.page` for how the page signs in). Reviewers are users of the pool
(created by an administrator: no self sign-up); the reviewer is the token's ``cognito:username``.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from infra.alerting import Alerting
from infra.nag import acknowledge, logical_id
from infra.python_function import add_role_statements, python_function
from infra.settings import USECASE_FILE_IN_BUNDLE, ReviewFunctionSettings, ReviewStackSettings
from shared.review import adapters, telemetry
from shared.review.environment import ReviewApiEnvironment, ReviewEnvironment

X_RAY_ACK = (
    "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions."
)
INTAKE_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:Query")
"""Intake creates items (conditional put) and counts undecided ones (the queue index)."""
REVIEW_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")
"""The sweep and the API read an item, write it conditionally on its revision, and query the queue."""
API_VERSION = "v1"
USECASE_PATH_PARAMETER = "usecase"
ITEM_PATH_PARAMETER = "item_id"
LOGIN = "login"


class Review(Construct):
    """The review table, intake, sweep and SLA alarm, the reviewers' user pool and the reviewer's API."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ReviewStackSettings,
        review_queue: sqs.IQueue,
        lake_bucket: s3.IBucket,
        api: apigateway.RestApi,
        layers: list[lambda_.ILayerVersion],
        alerting: Alerting,
        dashboard: cloudwatch.Dashboard | None = None,
    ) -> None:
        """``layers``: pydantic, powertools and boto3 (the scoring layer) and the shared code."""
        super().__init__(scope, construct_id)
        self.settings = settings
        self.lake_bucket = lake_bucket
        self.layers = layers
        self.table = self._build_table()
        self.intake_function = self._build_intake_function(review_queue)
        self.sweep_function = self._build_sweep_function()
        self.sweep_rule = self._build_sweep_rule()
        self.sla_alarm = self._build_sla_alarm()
        alerting.notify_on_alarm(self.sla_alarm)
        self.user_pool, self.user_pool_client = self._build_user_pool()
        self.api_function = self._build_api_function()
        self.authorizer = apigateway.CognitoUserPoolsAuthorizer(
            self, "ReviewerAuthorizer", cognito_user_pools=[self.user_pool]
        )
        self.methods = self._add_routes(api)
        if dashboard is not None:
            self.add_dashboard_section(dashboard)

    # --- state -----------------------------------------------------------------------------------

    def _build_table(self) -> dynamodb.Table:
        """The items (:data:`shared.review.adapters.TABLE_SCHEMA`: keys and the queue index)."""
        string = dynamodb.AttributeType.STRING
        table = dynamodb.Table(
            self,
            "ReviewTable",
            partition_key=dynamodb.Attribute(name=adapters.PARTITION_KEY, type=string),
            sort_key=dynamodb.Attribute(name=adapters.SORT_KEY, type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,  # reviewers' decisions and notes outlive a stack
        )
        table.add_global_secondary_index(
            index_name=adapters.QUEUE_INDEX,
            partition_key=dynamodb.Attribute(name=adapters.QUEUE_KEY, type=string),
            sort_key=dynamodb.Attribute(name=adapters.RANK_KEY, type=string),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        return table

    # --- functions -------------------------------------------------------------------------------

    def _function(
        self, construct_id: str, *, fn: ReviewFunctionSettings, description: str, environment: dict[str, str]
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
        )

    def _environment(self, fn: ReviewFunctionSettings, model: type[ReviewEnvironment], **extra: str) -> dict[str, str]:
        settings = self.settings
        return model.lambda_environment(
            usecase_file=USECASE_FILE_IN_BUNDLE,
            lake_bucket=self.lake_bucket.bucket_name,
            review_table=self.table.table_name,
            **extra,
            service_name=fn.service_name,
            metrics_namespace=settings.metrics_namespace,
            log_level=settings.log_level,
        )

    def _table_statement(self, actions: tuple[str, ...]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="ReviewItems",
            actions=list(actions),
            resources=[self.table.table_arn, f"{self.table.table_arn}/index/{adapters.QUEUE_INDEX}"],
        )

    def _write_feedback(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="WriteReviewedLabels",
            actions=["s3:PutObject"],
            resources=[self.lake_bucket.arn_for_objects(f"{self.settings.feedback_prefix}*")],
        )

    def _acknowledge_policy(self, policy: IConstruct, *, feedback: bool, reports: bool, models: bool = False) -> None:
        table_id, lake_id = logical_id(self.table), logical_id(self.lake_bucket)
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{table_id}.Arn>/index/{adapters.QUEUE_INDEX}]",
            "The queue index of the review table (no wildcard: the one index by name).",
        )
        if feedback:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{self.settings.feedback_prefix}*]",
                "Reviewed labels are keyed by a hash of each label under the use case's feedback prefix (as the "
                "feedback API writes them); the function may only put objects there.",
            )
        if reports:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{self.settings.reports_prefix}*]",
                "Monitoring reports are keyed by run id under the use case's reports prefix; intake reads the "
                "latest one (the segments under an alert) and nothing else.",
            )
        if models:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{self.settings.models_prefix}*]",
                "A served version's metrics.json is keyed by its training run under the use case's models prefix; "
                "the reviewer's API reads it (a linear model's per-feature contributions) and nothing else there.",
            )
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                f"model-package/{self.settings.model_package_group_name}/*]",
                "Served versions are versions of this use case's model package group; the reviewer's API describes "
                "them (their metrics.json) only.",
            )
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::*]",
                "sagemaker:ListModelPackages supports no resource-level permission (the reviewer's API lists its "
                "group's versions, read only); " + X_RAY_ACK,
            )
            return
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", X_RAY_ACK)

    def _build_intake_function(self, review_queue: sqs.IQueue) -> lambda_.Function:
        settings, lake = self.settings, self.lake_bucket
        function = self._function(
            "IntakeFunction",
            fn=settings.intake,
            description=f"Take {settings.usecase_name} predictions routed for review into the review table",
            environment=self._environment(settings.intake, ReviewEnvironment),
        )
        function.add_event_source(
            event_sources.SqsEventSource(
                review_queue,
                batch_size=settings.intake_batch_size,
                max_batching_window=settings.intake_batching_window,
                report_batch_item_failures=True,
            )
        )
        policy = add_role_statements(
            function,
            [
                self._table_statement(INTAKE_TABLE_ACTIONS),
                iam.PolicyStatement(
                    sid="ReadLatestReport",
                    actions=["s3:GetObject"],
                    resources=[lake.arn_for_objects(f"{settings.reports_prefix}*")],
                ),
                iam.PolicyStatement(
                    sid="ListReports",
                    actions=["s3:ListBucket"],
                    resources=[lake.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{settings.reports_prefix}*"]}},
                ),
            ],
        )
        self._acknowledge_policy(policy, feedback=False, reports=True)
        return function

    def _build_sweep_function(self) -> lambda_.Function:
        settings = self.settings
        function = self._function(
            "SweepFunction",
            fn=settings.sweep,
            description=f"Mark overdue {settings.usecase_name} review items, write pending labels, publish metrics",
            environment=self._environment(settings.sweep, ReviewEnvironment),
        )
        policy = add_role_statements(function, [self._table_statement(REVIEW_TABLE_ACTIONS), self._write_feedback()])
        self._acknowledge_policy(policy, feedback=True, reports=False)
        return function

    def _build_sweep_rule(self) -> events.Rule:
        settings = self.settings
        return events.Rule(
            self,
            "SweepRule",
            description=f"Sweep the {settings.usecase_name} review queue every {settings.sweep_minutes} minutes",
            schedule=events.Schedule.expression(settings.sweep_schedule),
            targets=[
                targets.LambdaFunction(
                    self.sweep_function,
                    retry_attempts=0,  # the next sweep does the same work
                    max_event_age=Duration.minutes(settings.sweep_minutes),
                )
            ],
        )

    def _build_api_function(self) -> lambda_.Function:
        settings = self.settings
        function = self._function(
            "ApiFunction",
            fn=settings.api,
            description=f"The {settings.usecase_name} reviewer's page and API (claim, decide, stats)",
            environment=self._environment(
                settings.api,
                ReviewApiEnvironment,
                user_pool_client_id=self.user_pool_client.user_pool_client_id,
                model_package_group=settings.model_package_group_name,
            ),
        )
        stack = Stack.of(self)
        group = settings.model_package_group_name
        policy = add_role_statements(
            function,
            [
                self._table_statement(REVIEW_TABLE_ACTIONS),
                self._write_feedback(),
                iam.PolicyStatement(
                    sid="DescribeModelPackages",
                    actions=["sagemaker:DescribeModelPackage"],
                    resources=[
                        stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*")
                    ],
                ),
                iam.PolicyStatement(sid="ListModelPackages", actions=["sagemaker:ListModelPackages"], resources=["*"]),
                iam.PolicyStatement(
                    sid="ReadModelMetrics",
                    actions=["s3:GetObject"],
                    resources=[self.lake_bucket.arn_for_objects(f"{settings.models_prefix}*")],
                ),
            ],
        )
        self._acknowledge_policy(policy, feedback=True, reports=False, models=True)
        return function

    # --- the SLA alarm and the dashboard ---------------------------------------------------------

    def metric(self, name: str, statistic: str = cloudwatch.Stats.MAXIMUM) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.settings.metrics_namespace,
            metric_name=name,
            dimensions_map={telemetry.DIMENSION_USECASE: self.settings.usecase_name},
            period=Duration.minutes(self.settings.sweep_minutes),
            statistic=statistic,
        )

    def _build_sla_alarm(self) -> cloudwatch.Alarm:
        settings = self.settings
        return cloudwatch.Alarm(
            self,
            "SlaAlarm",
            alarm_description=(
                f"A {settings.usecase_name} review item has waited longer than the review SLA "
                f"({int(settings.sla.to_seconds())} s, [review] sla_seconds): see `python -m cli review stats`."
            ),
            metric=self.metric(telemetry.OLDEST_ITEM_AGE),
            threshold=settings.sla.to_seconds(),
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def add_dashboard_section(self, dashboard: cloudwatch.Dashboard) -> None:
        """The review queue: depth, the oldest item's age against the SLA, decisions per hour, agreement."""
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="## Human review\n`python -m cli review stats` · the page: `{ApiUrl}v1/<usecase>/review`",
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Review queue depth and overdue items",
                left=[self.metric(telemetry.QUEUE_DEPTH), self.metric(telemetry.OVERDUE_ITEMS)],
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Oldest open item's age (s) against the SLA",
                left=[self.metric(telemetry.OLDEST_ITEM_AGE)],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=self.settings.sla.to_seconds(), label="SLA")],
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Decisions per hour · reviewer agreement (kappa)",
                left=[self.metric(telemetry.DECISIONS_PER_HOUR)],
                right=[self.metric(telemetry.REVIEWER_AGREEMENT, cloudwatch.Stats.AVERAGE)],
                width=8,
                height=6,
            ),
        )

    # --- reviewers and the API -------------------------------------------------------------------

    def _build_user_pool(self) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
        pool = cognito.UserPool(
            self,
            "Reviewers",
            user_pool_name=f"sluice-{self.settings.usecase_name.replace('_', '-')}-reviewers",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_digits=True, require_lowercase=True, require_uppercase=True, require_symbols=True
            ),
            account_recovery=cognito.AccountRecovery.NONE,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            pool,
            "AwsSolutions-COG2",
            "Reviewers sign in with a password from the page's form; MFA is the pool owner's choice (enable it on "
            "the pool) where the review data warrants it.",
        )
        acknowledge(
            pool,
            "AwsSolutions-COG3",
            "Threat protection (advanced security) is a paid add-on, left to the deployer; only administrators "
            "create reviewers (no self sign-up).",
        )
        acknowledge(
            pool,
            "AwsSolutions-COG8",
            "The Plus feature plan (threat protection) is a paid tier, left to the deployer: the pool holds a few "
            "reviewers an administrator creates.",
        )
        client = pool.add_client(
            "ReviewPage",
            auth_flows=cognito.AuthFlow(user_password=True),
            generate_secret=False,  # the page signs in from a browser: a public client
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
        )
        return pool, client

    def _add_routes(self, api: apigateway.RestApi) -> list[apigateway.Method]:
        """``/v1/{usecase}/review`` and its children, beside the scoring routes."""
        integration = apigateway.LambdaIntegration(self.api_function, proxy=True, allow_test_invoke=False)
        usecase = api.root.get_resource(API_VERSION)
        usecase = usecase.get_resource(f"{{{USECASE_PATH_PARAMETER}}}") if usecase is not None else None
        if usecase is None:
            usecase = api.root.resource_for_path(f"{API_VERSION}/{{{USECASE_PATH_PARAMETER}}}")
        review = usecase.add_resource("review")
        items = review.add_resource("items")
        item = items.add_resource(f"{{{ITEM_PATH_PARAMETER}}}")
        protected = [
            (review, "GET"),
            (items, "GET"),
            (item, "GET"),
            (item.add_resource("claim"), "POST"),
            (item.add_resource("decision"), "POST"),
            (review.add_resource("stats"), "GET"),
        ]
        methods = [
            resource.add_method(
                http_method,
                integration,
                authorizer=self.authorizer,
                authorization_type=apigateway.AuthorizationType.COGNITO,
            )
            for resource, http_method in protected
        ]
        for method in methods:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                "Reviewers authenticate with the Cognito user pool authorizer (an ID token of the reviewers' pool).",
            )
        login = review.add_resource(LOGIN).add_method("GET", integration)
        reason = (
            "The sign-in form is static HTML with no data: the reviewer cannot have a token before signing in. "
            "Every other review route has the Cognito authorizer."
        )
        acknowledge(login, "AwsSolutions-APIG4", reason)
        acknowledge(login, "AwsSolutions-COG4", reason)
        return [*methods, login]
