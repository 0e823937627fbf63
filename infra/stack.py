"""The Sluice stack of one use case: it composes capability constructs and publishes their outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.alerting import Alerting
from infra.data_pipeline import DataPipeline
from infra.layers import SharedCodeLayer
from infra.serving_endpoint import ServingEndpoint
from infra.settings import SluiceSettings
from infra.training_pipeline import TrainingPipeline


class SluiceStack(Stack):
    """Alerting, shared code, and the capabilities of one use case: data pipeline, training pipeline,
    a heavy model's endpoint (later scoring and promotion as sibling constructs)."""

    def __init__(self, scope: Construct, *, settings: SluiceSettings, **kwargs: Any) -> None:
        super().__init__(scope, settings.stack_name, **kwargs)
        self.alerting = Alerting(self, "Alerting", usecase_name=settings.usecase_name)
        self.shared_code = SharedCodeLayer(self, "SharedCode")
        self.data_pipeline = DataPipeline(
            self,
            "DataPipeline",
            settings=settings.data_pipeline,
            shared_code_layer=self.shared_code.layer,
            alerting=self.alerting,
        )
        self.training_pipeline = TrainingPipeline(
            self,
            "TrainingPipeline",
            settings=settings.training_pipeline,
            lake_bucket=self.data_pipeline.lake_bucket,
            shared_code_layer=self.shared_code.layer,
            alerting=self.alerting,
        )
        self.data_pipeline.notify_on_new_manifests(
            self.training_pipeline.trigger_queue, prefix=settings.training_pipeline.manifests_prefix
        )
        self.serving_endpoint = (
            ServingEndpoint(
                self,
                "ServingEndpoint",
                settings=settings.serving_endpoint,
                lake_bucket=self.data_pipeline.lake_bucket,
                image_uri=self.training_pipeline.image_uri,
                image_repository_arn=self.training_pipeline.image_repository_arn,
                inference_code=self.training_pipeline.source,
            )
            if settings.serving_endpoint is not None
            else None
        )
        self._add_outputs()

    def _add_outputs(self) -> None:
        pipeline, training = self.data_pipeline, self.training_pipeline
        outputs = {
            "RawBucketName": (pipeline.raw_bucket.bucket_name, "Upload CSV files of the use case here"),
            "LakeBucketName": (pipeline.lake_bucket.bucket_name, "Curated, quarantined and manifest objects"),
            "IngestFunctionName": (pipeline.ingest_function.function_name, "Validates uploads into the lake"),
            "IngestDeadLetterQueueUrl": (pipeline.dead_letter_queue.queue_url, "Ingest events that failed all retries"),
            "AlarmTopicArn": (self.alerting.topic.topic_arn, "Subscribe here to receive Sluice alarms"),
            "IdempotencyTableName": (pipeline.idempotency_table.table_name, "Ingest idempotency records"),
            "TrainingStateMachineArn": (training.state_machine.state_machine_arn, "Start a training run here"),
            "ModelPackageGroupName": (training.model_package_group_name, "Registered, gated model versions"),
            "TrainingQueueUrl": (training.trigger_queue.queue_url, "New-data notifications awaiting a training run"),
        }
        if self.serving_endpoint is not None:
            outputs["EndpointName"] = (self.serving_endpoint.endpoint_name, "The heavy model's real-time endpoint")
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
