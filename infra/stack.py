"""The Sluice stack of one use case: it composes capability constructs and publishes their outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.alerting import Alerting
from infra.backfill import Backfill, BackfillSettings
from infra.batch import BatchPrediction
from infra.data_pipeline import DataPipeline
from infra.endpoint_role import EndpointRole
from infra.layers import SharedCodeLayer
from infra.monitoring import Monitoring
from infra.promotion import Promotion
from infra.review import Review
from infra.scoring_api import ScoringApi
from infra.serving_endpoint import ServingEndpoint
from infra.serving_image import serving_image
from infra.settings import SluiceSettings
from infra.training_pipeline import TrainingPipeline, framework_for


class SluiceStack(Stack):
    """Alerting, shared code, and the capabilities of one use case: data pipeline, training pipeline,
    the scoring API, a heavy model's endpoint, the promotion of candidate models, and production monitoring."""

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
        self.scoring_api = ScoringApi(
            self,
            "ScoringApi",
            settings=settings.scoring_api,
            lake_bucket=self.data_pipeline.lake_bucket,
            shared_code_layer=self.shared_code.layer,
            alerting=self.alerting,
        )
        endpoint_name = self.endpoint_name = settings.promotion.endpoint_name
        pipeline = self.training_pipeline
        serving = self.serving_image = (
            serving_image(
                self,
                instance_type=settings.serving_endpoint.instance_type,
                usecase_file=settings.training_pipeline.usecase_file,
                cpu_image_uri=pipeline.image_uri,
                cpu_repository_arn=pipeline.image_repository_arn,
                cpu_inference_code=pipeline.source,
                training_image_serves_gpu=framework_for(settings.training_pipeline.job.estimator).serves_gpu,
            )
            if settings.serving_endpoint is not None
            else None
        )
        if serving is not None and settings.serving_endpoint is not None:
            pipeline.register_for_endpoint(
                image_uri=serving.uri,
                inference_program=settings.serving_endpoint.inference_program,
                inference_code=serving.inference_code,
            )
        self.endpoint_role = (
            EndpointRole(
                self,
                "EndpointRole",
                usecase_name=settings.usecase_name,
                endpoint_name=endpoint_name,
                lake_bucket=self.data_pipeline.lake_bucket,
                image_repository_arn=serving.repository_arn if serving else pipeline.image_repository_arn,
                inference_code=serving.inference_code if serving else pipeline.source,
                initial_model_data=settings.serving_endpoint.initial_model_data if settings.serving_endpoint else None,
            ).role
            if endpoint_name is not None
            else None
        )
        self.serving_endpoint = (
            ServingEndpoint(
                self,
                "ServingEndpoint",
                settings=settings.serving_endpoint,
                lake_bucket=self.data_pipeline.lake_bucket,
                image_uri=serving.uri,
                inference_code=serving.inference_code,
                role=self.endpoint_role,
            )
            if settings.serving_endpoint is not None and self.endpoint_role is not None and serving is not None
            else None
        )
        self.promotion = Promotion(
            self,
            "Promotion",
            settings=settings.promotion,
            lake_bucket=self.data_pipeline.lake_bucket,
            deployment_table=self.scoring_api.deployment_table,
            shared_code_layer=self.shared_code.layer,
            scoring_layer=self.scoring_api.dependencies,
            alerting=self.alerting,
            endpoint_role=self.endpoint_role,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings.monitoring,
            lake_bucket=self.data_pipeline.lake_bucket,
            deployment_table=self.scoring_api.deployment_table,
            training_state_machine=self.training_pipeline.state_machine,
            shared_code_layer=self.shared_code.layer,
            dependency_layer=self.training_pipeline.dependencies,
            alerting=self.alerting,
            dashboard=self.promotion.dashboard,
        )
        self.backfill = Backfill(
            self,
            "Backfill",
            settings=BackfillSettings(
                usecase_name=settings.usecase_name,
                usecase_file=settings.data_pipeline.usecase_file,
                max_concurrency=settings.batch.max_concurrency,
                retry_attempts=settings.batch.retry_attempts,
            ),
            raw_bucket=self.data_pipeline.raw_bucket,
            lake_bucket=self.data_pipeline.lake_bucket,
            deployment_table=self.scoring_api.deployment_table,
            shared_code_layer=self.shared_code.layer,
            alerting=self.alerting,
        )
        self.batch = BatchPrediction(
            self,
            "Batch",
            settings=settings.batch,
            raw_bucket=self.data_pipeline.raw_bucket,
            lake_bucket=self.data_pipeline.lake_bucket,
            deployment_table=self.scoring_api.deployment_table,
            dependency_layer=self.training_pipeline.dependencies,
            shared_code_layer=self.shared_code.layer,
            alerting=self.alerting,
        )
        self.review = Review(
            self,
            "Review",
            settings=settings.review,
            review_queue=self.scoring_api.review_queue,
            lake_bucket=self.data_pipeline.lake_bucket,
            api=self.scoring_api.api,
            layers=self.scoring_api.layers,
            alerting=self.alerting,
            dashboard=self.promotion.dashboard,
        )
        self._add_outputs()

    def _add_outputs(self) -> None:
        pipeline, training, scoring = self.data_pipeline, self.training_pipeline, self.scoring_api
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
            "ApiUrl": (scoring.api_url, "The scoring API's stage URL; routes are v1/{usecase}/... below it"),
            "ApiKeyId": (scoring.api_key.key_id, "Id of the scoring API key (send its value in x-api-key)"),
            "ScoreFunctionName": (scoring.score_function.function_name, "Scores requests of the scoring API"),
            "DeploymentTableName": (scoring.deployment_table.table_name, "Champion, challenger and audit events"),
            "PredictionLogQueueUrl": (
                scoring.prediction_log_queue.queue_url,
                "Served predictions on their way to the lake",
            ),
            "ReviewQueueUrl": (scoring.review_queue.queue_url, "Predictions routed for review, before intake"),
        }
        review = self.review
        outputs["ReviewTableName"] = (review.table.table_name, "Review items (python -m cli review ...)")
        outputs["ReviewUserPoolId"] = (review.user_pool.user_pool_id, "Reviewers: add them as users of this pool")
        outputs["ReviewUserPoolClientId"] = (
            review.user_pool_client.user_pool_client_id,
            "The review page's app client (USER_PASSWORD_AUTH)",
        )
        outputs["ReviewSweepFunctionName"] = (review.sweep_function.function_name, "Sweeps the review queue")
        promotion = self.promotion
        outputs["PromotionStateMachineArn"] = (
            promotion.state_machine.state_machine_arn,
            'Start a promotion here with {"model_package_arn": ..., "requested_by": ...}',
        )
        outputs["RollbackFunctionName"] = (
            promotion.rollback_function.function_name,
            "Rolls a promotion back when a candidate alarm fires",
        )
        outputs["DashboardName"] = (promotion.dashboard_name, "Traffic, errors, latency and alarms per variant")
        outputs["MonitorFunctionName"] = (
            self.monitoring.monitor_function.function_name,
            "Monitors served traffic and labels (scheduled; invoke it to run now)",
        )
        outputs["BackfillFunctionName"] = (
            self.backfill.function.function_name,
            "Re-ingests one object under a new contract version (the backfill machine's item processor)",
        )
        outputs["BackfillStateMachineArn"] = (
            self.backfill.state_machine.state_machine_arn,
            "Start a backfill here (python -m cli backfill --contract-version X.Y.Z)",
        )
        outputs["RetrainFunctionName"] = (
            self.monitoring.retrain_function.function_name,
            "Starts a training run when a monitoring alarm fires",
        )
        outputs["BatchStateMachineArn"] = (
            self.batch.state_machine.state_machine_arn,
            "Start a batch job here (python -m cli batch s3://...), or upload under the raw bucket's batch/",
        )
        if self.endpoint_name is not None and self.endpoint_role is not None:
            outputs["EndpointName"] = (
                self.endpoint_name,
                "The heavy model's real-time endpoint (deployed by the stack once a model exists, or by hand)",
            )
            outputs["EndpointExecutionRoleArn"] = (
                self.endpoint_role.role_arn,
                "The role the endpoint's models run as (promotions and the CLI's rollback shape the endpoint)",
            )
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
