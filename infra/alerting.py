"""Alerting: the SNS topic every Sluice alarm notifies (ingest failures now; training, promotion later)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge


class Alerting(Construct):
    """A KMS-encrypted, TLS-only SNS topic that CloudWatch alarms may publish to."""

    def __init__(self, scope: Construct, construct_id: str, *, usecase_name: str) -> None:
        super().__init__(scope, construct_id)
        self.topic_key = self._build_topic_key()
        self.topic = self._build_topic(usecase_name=usecase_name)

    def notify_on_alarm(self, alarm: cloudwatch.Alarm) -> None:
        """Send ``alarm``'s state changes into ALARM to the topic."""
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))

    @staticmethod
    def dead_letter_queue(
        scope: Construct, construct_id: str, *, retention: Duration, collects: str, items: str = "events"
    ) -> sqs.Queue:
        """A dead-letter queue (SQS-managed encryption, TLS only): ``collects`` says whose failed ``items`` it keeps."""
        queue = sqs.Queue(
            scope,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=retention,
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            f"This queue is {collects}; a dead-letter queue of its own would only move the same {items} again.",
        )
        return queue

    @staticmethod
    def dead_letter_alarm(
        scope: Construct, construct_id: str, *, queue: sqs.IQueue, description: str
    ) -> cloudwatch.Alarm:
        """An alarm on a dead-letter queue that is not empty (at least one message for one minute)."""
        depth = queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
        )
        return cloudwatch.Alarm(
            scope,
            construct_id,
            alarm_description=description,
            metric=depth,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _build_topic_key(self) -> kms.Key:
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the Sluice alarm topic",
            enable_key_rotation=True,
        )
        # CloudWatch publishes alarm notifications itself, so the key must let it encrypt messages.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        return key

    def _build_topic(self, *, usecase_name: str) -> sns.Topic:
        return sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"Sluice alarms ({usecase_name})",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
