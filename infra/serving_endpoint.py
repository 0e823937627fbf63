"""A heavy model's SageMaker real-time endpoint: blue/green canary updates that roll back on alarm.

Light models score in Lambda with onnxruntime; a heavy one (``kind = "heavy"``) is served here.
The endpoint is deployed once a model is registered: ``-c initial_model_data=s3://.../model.tar.gz``
names the artifact of a registered model version (its ``InferenceSpecification`` model data URL);
without it a heavy use case has no endpoint yet.

The model runs the same ONNX artifact and inference code as the score function: the image is the
training pipeline's scikit-learn framework image (``INFERENCE_IMAGE``; the SageMaker Python SDK's
inference image of the region is the same URI), and its script-mode
environment points at the training source archive, whose ``training/inference.py`` (the
``SAGEMAKER_PROGRAM``) loads ``model.onnx`` with onnxruntime and implements ``model_fn`` /
``input_fn`` / ``predict_fn`` / ``output_fn``. Requests and responses are captured to the lake under
``capture/{usecase}/`` for drift monitoring. An update of the model shifts 10% of capacity first,
waits, then shifts the rest; an alarm on 5XX errors or model latency during the update rolls it back.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import USECASE_FILE_IN_BUNDLE, ServingEndpointSettings
from shared.environment import USECASE_FILE_VARIABLE
from shared.lake import layout as lake_keys

SAGEMAKER_NAMESPACE = "AWS/SageMaker"


class ServingEndpoint(Construct):
    """Model, endpoint configuration (data capture on), endpoint (canary + auto-rollback) and its alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ServingEndpointSettings,
        lake_bucket: s3.IBucket,
        image_uri: str,
        inference_code: s3_assets.Asset,
        role: iam.IRole,
    ) -> None:
        """``role``: the models' execution role (:class:`infra.endpoint_role.EndpointRole`)."""
        super().__init__(scope, construct_id)
        self.settings = settings
        self.lake_bucket = lake_bucket
        self.endpoint_name = settings.endpoint_name
        self.role = role
        self.model = self._build_model(image_uri=image_uri, inference_code=inference_code)
        self.endpoint_config = self._build_endpoint_config()
        self.errors_alarm, self.latency_alarm = self._build_alarms()
        self.endpoint = self._build_endpoint()

    @property
    def capture_prefix(self) -> str:
        return lake_keys.capture_prefix(self.settings.usecase_name)

    def _build_model(self, *, image_uri: str, inference_code: s3_assets.Asset) -> sagemaker.CfnModel:
        settings = self.settings
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                model_data_url=settings.initial_model_data,
                environment={
                    "SAGEMAKER_PROGRAM": settings.inference_program,
                    "SAGEMAKER_SUBMIT_DIRECTORY": inference_code.s3_object_url,
                    "SAGEMAKER_REGION": Aws.REGION,
                    USECASE_FILE_VARIABLE: USECASE_FILE_IN_BUNDLE,
                },
            ),
        )
        model.node.add_dependency(self.role)
        acknowledge(
            model,
            "AwsSolutions-SM3",
            "The framework container downloads its inference code (the training source archive) from S3 at "
            "start-up, which network isolation forbids; the container serves only the registered ONNX model.",
        )
        return model

    def _build_endpoint_config(self) -> sagemaker.CfnEndpointConfig:
        settings = self.settings
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=settings.variant_name,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=settings.instance_count,
                    instance_type=settings.instance_type,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=settings.capture_sampling_percentage,
                destination_s3_uri=f"s3://{self.lake_bucket.bucket_name}/{self.capture_prefix}",
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    json_content_types=["application/json"]
                ),
            ),
        )
        acknowledge(
            config,
            "AwsSolutions-SM2",
            "GPU instance types with local NVMe storage (g5 and the like) accept no KMS key for the endpoint's "
            "storage volume; their instance storage is encrypted by the hardware.",
        )
        acknowledge(
            config,
            "AwsSolutions-SM1",
            "The endpoint runs in SageMaker's network: the stack has no VPC, and the model reaches only S3 and "
            "ECR through the AWS network.",
        )
        return config

    def _variant_metric(self, metric_name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=SAGEMAKER_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": self.settings.variant_name},
            statistic=statistic,
            period=Duration.minutes(1),
        )

    def _build_alarms(self) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        settings = self.settings
        errors = cloudwatch.Alarm(
            self,
            "Invocation5XXErrorsAlarm",
            alarm_description=f"The {settings.usecase_name} endpoint answers with 5XX errors (rolls back an update)",
            metric=self._variant_metric("Invocation5XXErrors", cloudwatch.Stats.SUM),
            threshold=settings.max_5xx_errors,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self,
            "ModelLatencyAlarm",
            alarm_description=f"The {settings.usecase_name} model is slow (microseconds; rolls back an update)",
            metric=self._variant_metric("ModelLatency", cloudwatch.Stats.AVERAGE),
            threshold=settings.max_latency_microseconds,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return errors, latency

    def _build_endpoint(self) -> sagemaker.CfnEndpoint:
        settings = self.settings
        return sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=settings.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=settings.canary_percent
                        ),
                        wait_interval_in_seconds=int(settings.canary_wait.to_seconds()),
                    ),
                    termination_wait_in_seconds=int(settings.termination_wait.to_seconds()),
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                        for alarm in (self.errors_alarm, self.latency_alarm)
                    ]
                ),
            ),
        )
