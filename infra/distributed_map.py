"""The shape the batch and backfill machines share: plan → a Distributed Map over a JSON array the plan step
wrote → finish, on a Standard machine with logs, tracing and two alarms.

Each item is one Lambda invocation retried on ``StorageError``; any failure it still ends with is caught and
written as a JSON document to the lake (``FailureRecord`` Pass → ``RecordFailure`` s3:putObject), so the map
itself never fails on an item and the finish step decides from the lake what the run amounted to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct, IConstruct

from infra.nag import acknowledge, logical_id

STORAGE_ERROR = "StorageError"
"""The item function's retried error (an S3 outage); every other error of an item is recorded, not retried."""


def item_processor(
    scope: Construct,
    construct_id: str,
    *,
    function: lambda_.IFunction,
    retry_attempts: int,
    retry_interval: Duration,
    failure_key: str,
    failure_document: Mapping[str, Any],
    lake_bucket: s3.IBucket,
    failure_objects: list[str],
    result_path: str | None = None,
) -> tasks.LambdaInvoke:
    """One item's invocation of ``function``, retried on ``StorageError``; any failure left is caught into
    ``$.failure`` and written to ``lake_bucket`` at ``failure_key`` (``failure_document`` plus the error and
    cause); ``failure_objects`` are the ARNs the machine may write failures to."""
    invoke = tasks.LambdaInvoke(
        scope,
        construct_id,
        lambda_function=function,
        payload_response_only=True,
        retry_on_service_exceptions=True,
        result_path=result_path,
    )
    invoke.add_retry(errors=[STORAGE_ERROR], max_attempts=retry_attempts, interval=retry_interval, backoff_rate=2)
    failure_record = sfn.Pass(
        scope,
        "FailureRecord",
        parameters={
            "key": failure_key,
            "document": {
                **failure_document,
                "error": sfn.JsonPath.string_at("$.failure.Error"),
                "cause": sfn.JsonPath.string_at("$.failure.Cause"),
            },
        },
    )
    record = tasks.CallAwsService(
        scope,
        "RecordFailure",
        service="s3",
        action="putObject",
        parameters={
            "Bucket": lake_bucket.bucket_name,
            "Key": sfn.JsonPath.string_at("$.key"),
            "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.document")),
        },
        iam_resources=failure_objects,
        iam_action="s3:PutObject",
        result_path=sfn.JsonPath.DISCARD,
    )
    invoke.add_catch(failure_record.next(record), errors=["States.ALL"], result_path="$.failure")
    return invoke


def json_array_map(
    scope: Construct,
    construct_id: str,
    *,
    lake_bucket: s3.IBucket,
    items_key: str,
    item_selector: Mapping[str, Any],
    max_concurrency: int,
    processor: sfn.IChainable,
    tolerated_failure_percentage: float | None = None,
) -> sfn.DistributedMap:
    """A Distributed Map of Standard children over the JSON array at ``items_key`` (a JSONPath) of the lake;
    its results are discarded (each item writes what it has to say under a key of its own)."""
    distributed_map = sfn.DistributedMap(
        scope,
        construct_id,
        item_reader=sfn.S3JsonItemReader(bucket=lake_bucket, key=items_key),
        item_selector=dict(item_selector),
        max_concurrency=max_concurrency,
        tolerated_failure_percentage=tolerated_failure_percentage,
        map_execution_type=sfn.StateMachineType.STANDARD,
        result_path=sfn.JsonPath.DISCARD,
    )
    distributed_map.item_processor(processor)
    return distributed_map


def logged_state_machine(
    scope: Construct,
    *,
    comment: str,
    definition: sfn.IChainable,
    timeout: Duration,
    log_retention: logs.RetentionDays,
) -> sfn.StateMachine:
    """The Standard machine ``StateMachine`` with X-Ray tracing and every event logged to ``StateMachineLogGroup``."""
    log_group = logs.LogGroup(scope, "StateMachineLogGroup", retention=log_retention)
    return sfn.StateMachine(
        scope,
        "StateMachine",
        comment=comment,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        state_machine_type=sfn.StateMachineType.STANDARD,
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
    )


def acknowledge_machine_grants(
    state_machine: sfn.StateMachine,
    *,
    functions: Iterable[lambda_.IFunction],
    lake_bucket: s3.IBucket,
    items_file: str,
    acknowledge_own_prefixes: Callable[[IConstruct], None],
) -> None:
    """Acknowledge the wildcards CDK grants the machine's role: its functions' versions, the lake prefixes its
    failure records go to (``acknowledge_own_prefixes``, given the role's policy), log delivery and tracing, the
    item reader's whole-bucket read (``items_file``: what it reads, in words) and the map's child executions."""
    policy = state_machine.role.node.find_child("DefaultPolicy")
    for function in functions:
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{logical_id(function)}.Arn>:*]",
            "CDK grants invoking any version or alias of the machine's own function (its ARN with ':*').",
        )
    acknowledge_own_prefixes(policy)
    acknowledge(
        policy,
        "AwsSolutions-IAM5[Resource::*]",
        "Step Functions log delivery, X-Ray tracing and a Distributed Map's child executions "
        "(states:StartExecution/DescribeExecution/StopExecution on its own executions) per CDK's grants.",
    )
    acknowledge(
        policy,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<{logical_id(lake_bucket)}>/*]",
        "CDK's S3 JSON item reader grants s3:GetObject on the whole lake bucket; the machine reads only the "
        f"{items_file} (read only, no writes).",
    )
    machine_id = logical_id(state_machine)
    executions = (
        "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{machine_id}"}}]}}]}}'
    )
    for suffix in (":*", "/*:*"):
        acknowledge(
            state_machine,
            f"AwsSolutions-IAM5[Resource::{executions}{suffix}]",
            "A Distributed Map's child executions are named by Step Functions at run time; the policy CDK "
            "adds covers this machine's own executions only.",
        )


def execution_alarms(
    scope: Construct, state_machine: sfn.StateMachine, *, description: Callable[[str], str]
) -> list[cloudwatch.Alarm]:
    """``ExecutionsFailedAlarm`` and ``ExecutionsTimedOutAlarm``: one execution in five minutes is enough;
    ``description`` words each alarm from what happened (``"failed"``, ``"timed out"``)."""
    found = []
    for construct_id, metric, what in (
        ("ExecutionsFailedAlarm", state_machine.metric_failed(period=Duration.minutes(5)), "failed"),
        ("ExecutionsTimedOutAlarm", state_machine.metric_timed_out(period=Duration.minutes(5)), "timed out"),
    ):
        found.append(
            cloudwatch.Alarm(
                scope,
                construct_id,
                alarm_description=description(what),
                metric=metric,
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
    return found
