"""The Sluice stack of one use case: it composes capability constructs and publishes their outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.alerting import Alerting
from infra.data_pipeline import DataPipeline
from infra.layers import SharedCodeLayer
from infra.settings import SluiceSettings


class SluiceStack(Stack):
    """Alerting, shared code, and the capabilities of one use case (data pipeline; later training,
    scoring and promotion as sibling constructs that reuse ``alerting`` and ``shared_code``)."""

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
        self._add_outputs()

    def _add_outputs(self) -> None:
        pipeline = self.data_pipeline
        outputs = {
            "RawBucketName": (pipeline.raw_bucket.bucket_name, "Upload CSV files of the use case here"),
            "LakeBucketName": (pipeline.lake_bucket.bucket_name, "Curated, quarantined and manifest objects"),
            "IngestFunctionName": (pipeline.ingest_function.function_name, "Validates uploads into the lake"),
            "IngestDeadLetterQueueUrl": (pipeline.dead_letter_queue.queue_url, "Ingest events that failed all retries"),
            "AlarmTopicArn": (self.alerting.topic.topic_arn, "Subscribe here to receive Sluice alarms"),
            "IdempotencyTableName": (pipeline.idempotency_table.table_name, "Ingest idempotency records"),
        }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
