"""The data pipeline as synthesized: wiring, protections, least privilege and environment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import get_att, object_arn, ref

EXPECTED_OUTPUTS = {
    "BackfillStateMachineArn",
    "BatchStateMachineArn",
    "RawBucketName",
    "LakeBucketName",
    "IngestFunctionName",
    "IngestDeadLetterQueueUrl",
    "AlarmTopicArn",
    "IdempotencyTableName",
    "TrainingStateMachineArn",
    "ModelPackageGroupName",
    "TrainingQueueUrl",
    "ApiUrl",
    "ApiKeyId",
    "ScoreFunctionName",
    "DeploymentTableName",
    "PredictionLogQueueUrl",
    "ReviewQueueUrl",
    "ReviewTableName",
    "ReviewSweepFunctionName",
    "ReviewUserPoolId",
    "ReviewUserPoolClientId",
    "PromotionStateMachineArn",
    "RollbackFunctionName",
    "DashboardName",
    "MonitorFunctionName",
    "BackfillFunctionName",
    "RetrainFunctionName",
}


def _policy_statements_of_role(template_json: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    resources = template_json["Resources"]
    statements: list[dict[str, Any]] = []
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and ref(role_id) in resource["Properties"]["Roles"]:
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    role = resources[role_id]["Properties"]
    for inline in role.get("Policies", []):
        statements.extend(inline["PolicyDocument"]["Statement"])
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants(statements: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Action → every resource it is allowed on (statements minimized or not)."""
    grants: dict[str, list[Any]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in _as_list(statement["Action"]):
            grants.setdefault(action, []).extend(_as_list(statement["Resource"]))
    return grants


def _same(left: list[Any], right: list[Any]) -> bool:
    def key(item: Any) -> str:
        return json.dumps(item, sort_keys=True)

    return sorted(map(key, left)) == sorted(map(key, right))


def test_stack_outputs_name_the_data_pipeline_resources(template_json: dict[str, Any]) -> None:
    # Given the synthesized stack
    # When its outputs are listed
    outputs = set(template_json["Outputs"])
    # Then they are exactly what the embedded cloud and operators look up
    assert outputs == EXPECTED_OUTPUTS


def test_raw_uploads_notify_the_ingest_function(
    template: Template, output_refs: dict[str, str], ingest_function_id: str
) -> None:
    # Given the raw bucket and the ingest function
    raw_bucket_id = output_refs["RawBucketName"]
    # When S3 notifications are configured (CDK renders them as a custom resource)
    # Then object-created events of the raw bucket go to the ingest function
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": ref(raw_bucket_id),
            "NotificationConfiguration": {
                "LambdaFunctionConfigurations": [
                    {"Events": ["s3:ObjectCreated:*"], "LambdaFunctionArn": get_att(ingest_function_id)}
                ]
            },
        },
    )
    # And besides it only the lake bucket notifies anything (its manifests, to the training trigger queue)
    notifications = template.find_resources("Custom::S3BucketNotifications")
    assert sorted(n["Properties"]["BucketName"]["Ref"] for n in notifications.values()) == sorted(
        [raw_bucket_id, output_refs["LakeBucketName"]]
    )


def test_s3_may_invoke_the_ingest_function_for_the_raw_bucket_only(
    template: Template, output_refs: dict[str, str], ingest_function_id: str
) -> None:
    # Given the raw bucket's notification
    raw_bucket_id = output_refs["RawBucketName"]
    # When Lambda checks who may invoke the ingest function
    # Then S3 may, from the raw bucket in this account
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": get_att(ingest_function_id),
            "Principal": "s3.amazonaws.com",
            "SourceArn": get_att(raw_bucket_id),
            "SourceAccount": ref("AWS::AccountId"),
        },
    )


def test_failed_async_invocations_retry_then_land_in_the_dead_letter_queue(
    template: Template, output_refs: dict[str, str], ingest_function_id: str
) -> None:
    # Given the ingest function and its dead-letter queue
    queue_id = output_refs["IngestDeadLetterQueueUrl"]
    # When an asynchronous invocation fails
    # Then Lambda retries twice within a bounded event age and then sends the event to the queue
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": ref(ingest_function_id),
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": Match.any_value(),
            "DestinationConfig": {"OnFailure": {"Destination": get_att(queue_id)}},
        },
    )


def test_dead_letter_queue_is_encrypted_tls_only_and_keeps_messages_14_days(
    template: Template, output_refs: dict[str, str]
) -> None:
    # Given the dead-letter queue
    queue_id = output_refs["IngestDeadLetterQueueUrl"]
    # Then it is encrypted and keeps failed events for 14 days
    template.has_resource_properties(
        "AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600}
    )
    # And its policy denies requests without TLS
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [ref(queue_id)],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_a_message_in_the_dead_letter_queue_alarms_the_alert_topic(
    template: Template, output_refs: dict[str, str]
) -> None:
    # Given the dead-letter queue and the alarm topic
    queue_id = output_refs["IngestDeadLetterQueueUrl"]
    topic_id = output_refs["AlarmTopicArn"]
    # When one message is visible in the queue for a minute
    # Then the alarm fires and notifies the topic; no data is not a failure
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": get_att(queue_id, "QueueName")}],
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [ref(topic_id)],
        },
    )


def test_alarm_topic_is_kms_encrypted_tls_only_and_cloudwatch_can_use_its_key(
    template: Template, template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Given the alarm topic
    topic = template_json["Resources"][output_refs["AlarmTopicArn"]]["Properties"]
    # Then it is encrypted with a customer-managed, rotated key
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    key_policy = template_json["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    # And CloudWatch alarms may encrypt notifications with that key
    assert any(
        statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
        for statement in key_policy
    )
    # And the topic's policy denies publishing without TLS
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [ref(output_refs["AlarmTopicArn"])],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_every_bucket_is_encrypted_private_and_tls_only(template: Template, template_json: dict[str, Any]) -> None:
    # Given every bucket of the stack (raw, lake, access logs)
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 3
    policies = template.find_resources("AWS::S3::BucketPolicy")
    for bucket_id, bucket in buckets.items():
        properties = bucket["Properties"]
        # Then it is encrypted at rest
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        # And blocks all public access
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        # And its policy denies every request made without TLS
        (policy,) = [p for p in policies.values() if p["Properties"]["Bucket"] == ref(bucket_id)]
        assert any(
            statement["Effect"] == "Deny"
            and statement["Action"] == "s3:*"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        )


@pytest.mark.parametrize("output_key", ["RawBucketName", "LakeBucketName"])
def test_data_buckets_are_versioned_and_write_access_logs(
    template_json: dict[str, Any], output_refs: dict[str, str], output_key: str
) -> None:
    # Given a data bucket (raw or lake)
    properties = template_json["Resources"][output_refs[output_key]]["Properties"]
    # Then it keeps object versions
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    # And it writes server access logs into a separate bucket
    target = properties["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert target not in (output_refs["RawBucketName"], output_refs["LakeBucketName"])
    assert template_json["Resources"][target]["Type"] == "AWS::S3::Bucket"


def test_idempotency_table_has_the_layout_powertools_expects(
    template_json: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Given the ingest idempotency table
    table = template_json["Resources"][output_refs["IdempotencyTableName"]]["Properties"]
    # Then it is keyed by the string attribute `id`, expires records by `expiration`,
    # is billed on demand, recoverable to a point in time and encrypted
    assert table == {
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }


def test_ingest_function_runtime_size_and_tracing(
    template_json: dict[str, Any], ingest_function: dict[str, Any]
) -> None:
    # Given the ingest function
    properties = ingest_function["Properties"]
    # Then it runs the handler on arm64 Python 3.12 with room for large files, traced by X-Ray
    assert properties["Handler"] == "handler.lambda_handler"
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["MemorySize"] == 2048
    assert properties["Timeout"] == 900
    assert properties["EphemeralStorage"] == {"Size": 4096}
    assert properties["TracingConfig"] == {"Mode": "Active"}
    # And it logs to its own log group with a retention period
    log_group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
    assert template_json["Resources"][log_group_id]["Properties"]["RetentionInDays"] > 0
    # And it loads two layers: its dependencies and the shared code
    layers = [layer["Ref"] for layer in properties["Layers"]]
    assert len(layers) == 2
    assert all(template_json["Resources"][layer]["Type"] == "AWS::Lambda::LayerVersion" for layer in layers)
    assert all(
        template_json["Resources"][layer]["Properties"]["CompatibleArchitectures"] == ["arm64"] for layer in layers
    )


def test_ingest_function_environment_is_exactly_its_settings_contract(
    ingest_function: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Given the ingest function
    # When its environment is read
    environment = ingest_function["Properties"]["Environment"]["Variables"]
    # Then it holds exactly the variables its settings model reads
    assert environment == {
        "SLUICE_USECASE_FILE": "usecase.toml",
        "LAKE_BUCKET": ref(output_refs["LakeBucketName"]),
        "IDEMPOTENCY_TABLE": ref(output_refs["IdempotencyTableName"]),
        "POWERTOOLS_SERVICE_NAME": "ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
        "LOG_LEVEL": "INFO",
    }


def test_ingest_role_grants_only_what_ingestion_needs(
    template_json: dict[str, Any], ingest_function: dict[str, Any], output_refs: dict[str, str]
) -> None:
    # Given the ingest function's own role
    role_id = ingest_function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = template_json["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    # When every statement attached to it is collected
    grants = _grants(_policy_statements_of_role(template_json, role_id))
    raw, lake = output_refs["RawBucketName"], output_refs["LakeBucketName"]
    table, queue = output_refs["IdempotencyTableName"], output_refs["IngestDeadLetterQueueUrl"]
    log_group = ingest_function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    # Then no action is a wildcard
    assert not [action for action in grants if "*" in action]
    # And each action is allowed on exactly the expected resources
    expected: dict[str, list[Any]] = {
        # read raw uploads; read manifests to check whether an upload was already ingested
        "s3:GetObject": [object_arn(raw, "*"), object_arn(lake, "manifests/*")],
        "s3:GetObjectVersion": [object_arn(raw, "*")],
        # write the lake only under its three prefixes
        "s3:PutObject": [object_arn(lake, p) for p in ("curated/*", "quarantine/*", "manifests/*")],
        # list the lake's keys (bucket only): a missing manifest is then a 404, not a 403
        "s3:ListBucket": [get_att(lake)],
        "dynamodb:GetItem": [get_att(table)],
        "dynamodb:PutItem": [get_att(table)],
        "dynamodb:UpdateItem": [get_att(table)],
        "dynamodb:DeleteItem": [get_att(table)],
        "sqs:SendMessage": [get_att(queue)],
        "sqs:GetQueueAttributes": [get_att(queue)],
        "sqs:GetQueueUrl": [get_att(queue)],
        "logs:CreateLogStream": [get_att(log_group)],
        "logs:PutLogEvents": [get_att(log_group)],
        # X-Ray has no resource-level permissions
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
    }
    assert set(grants) == set(expected)
    for action, resources in expected.items():
        assert _same(grants[action], resources), action
