"""The role a heavy use case's SageMaker endpoint runs its models as, whether or not the stack deploys the endpoint.

Promotions put registered versions on the endpoint named for the use case (``shared.promotion.targets``),
which the stack deploys once a model exists (``-c initial_model_data=``, :mod:`infra.serving_endpoint`) or
an operator creates; either way its models need this role. It reads the models (the initial one, and the
training outputs in the lake that later versions are) and the inference code, pulls the inference image,
and writes captured data, the endpoint's logs and its metrics -- nothing else.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.nag import acknowledge, logical_id
from shared.lake import layout as lake_keys
from shared.lake.layout import parse_s3_uri

ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints"
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


class EndpointRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        usecase_name: str,
        endpoint_name: str,
        lake_bucket: s3.IBucket,
        image_repository_arn: str,
        inference_code: s3_assets.Asset,
        initial_model_data: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "ModelRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"The {usecase_name} endpoint: read its models and code, write captured data",
        )
        capture_prefix = lake_keys.capture_prefix(usecase_name)
        models_prefix = lake_keys.training_output_prefix(usecase_name)
        code = [inference_code.bucket.arn_for_objects(inference_code.s3_object_key)]
        if initial_model_data:
            model_bucket, model_key = parse_s3_uri(initial_model_data)
            code.insert(0, f"arn:{Aws.PARTITION}:s3:::{model_bucket}/{model_key}")
        log_group_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{ENDPOINT_LOG_GROUP}/{endpoint_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        statements = [
            iam.PolicyStatement(sid="ReadModelAndCode", actions=["s3:GetObject"], resources=code),
            iam.PolicyStatement(
                sid="ReadRegisteredModels",
                actions=["s3:GetObject"],
                resources=[lake_bucket.arn_for_objects(f"{models_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="WriteCapturedData",
                actions=["s3:PutObject"],
                resources=[lake_bucket.arn_for_objects(f"{capture_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="WriteEndpointLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[log_group_arn, f"{log_group_arn}:log-stream:*"],
            ),
            iam.PolicyStatement(
                sid="PullInferenceImage",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[image_repository_arn],
            ),
            iam.PolicyStatement(sid="AuthenticateToEcr", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="PublishEndpointMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": ENDPOINT_METRICS_NAMESPACE}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        policy = self.role.node.find_child("DefaultPolicy")
        lake_id = logical_id(lake_bucket)
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{capture_prefix}*]",
            "SageMaker data capture names its objects by date and hour under the capture prefix; "
            "the role may only put objects there.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{lake_id}.Arn>/{models_prefix}*]",
            "A promotion deploys later registered versions on this endpoint; their model.tar.gz are the training "
            "jobs' outputs, named by job under this prefix: the role may only read there.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
            f"log-group:{ENDPOINT_LOG_GROUP}/{endpoint_name}:log-stream:*]",
            "SageMaker names the endpoint's log streams after its variants and instances; the role may "
            "write streams of this endpoint's log group only.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource-level permission, and cloudwatch:PutMetricData "
            "is limited by the cloudwatch:namespace condition to SageMaker's endpoint namespace.",
        )
