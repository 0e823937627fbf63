"""The promotion's access to AWS and the lake.

Adapters (each takes a boto3 client and wraps SDK errors in a promotion error):

- :class:`PromotionStore`: the promotion record (``sk = "promotion"``) and the audit log of the deployment table;
- :class:`LiveMetrics`: the score function's CloudWatch metrics over a stage's window
  (which ones: :mod:`shared.promotion.stage_metrics`);
- :class:`Notifier` (SNS) and :class:`Executions` (Step Functions task tokens and executions).

Domain wrappers of the shared adapters, with the promotion's typed errors:

- :class:`PackageRegistry`: model packages (describe, approve / reject) through
  :class:`~shared.registry.adapters.SageMakerRegistry`;
- :class:`PromotionLake`: metrics.json, ONNX files and the prediction log (as
  :class:`~shared.scoring.prediction_log_lake.PredictionLogRecord`) through
  :class:`~shared.lake.adapters.S3ObjectStore`; timelines out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from shared.clients import client_error_code
from shared.deployment.adapters import (
    EVENT_SORT_KEY_PREFIX,
    PARTITION_KEY,
    SORT_KEY,
    from_item,
    to_item,
)
from shared.lake import layout as lake
from shared.lake.adapters import S3ObjectStore
from shared.lake.exceptions import StorageError
from shared.promotion import stage_metrics
from shared.promotion.analysis import LiveWindow
from shared.promotion.exceptions import (
    MetricsError,
    ModelMetricsError,
    NotificationError,
    PromotionEndedError,
    PromotionError,
    ReplayDataError,
)
from shared.promotion.transitions import AuditEvent, Promotion, PromotionOutcome, Stage
from shared.registry import package as registry_package
from shared.registry.adapters import SageMakerRegistry
from shared.registry.exceptions import RegistryError
from shared.scoring.prediction_log_lake import PredictionLogRecord, logged_records

PROMOTION_SORT_KEY = "promotion"


def _client_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


class PromotionStore:
    """The promotion record and the audit log, in the deployment table (a low-level DynamoDB client)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, usecase: str) -> Promotion | None:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": usecase}, SORT_KEY: {"S": PROMOTION_SORT_KEY}},
                ConsistentRead=True,
            )
        except _client_errors() as exc:
            raise PromotionError(f"cannot read the promotion of {usecase!r}: {exc}") from exc
        if "Item" not in response:
            return None
        try:
            return Promotion.model_validate(from_item(response["Item"]))
        except ValidationError as exc:
            raise PromotionError(f"the promotion record of {usecase!r} is invalid:\n{exc}") from exc

    def put(self, promotion: Promotion) -> None:
        """Write the record; a running one never overwrites its own execution's ended record.

        A step in flight (its Lambda read the record before an alarm rolled the promotion back) would otherwise
        write ``running`` over ``rolled_back``: :class:`PromotionEndedError`, and the record stays as it ended.
        """
        item = to_item({**promotion.model_dump(mode="json"), SORT_KEY: PROMOTION_SORT_KEY})
        condition: dict[str, Any] = {}
        if promotion.outcome is PromotionOutcome.RUNNING:
            condition = {
                "ConditionExpression": "attribute_not_exists(#sk) OR #outcome = :running OR #execution <> :execution",
                "ExpressionAttributeNames": {"#sk": SORT_KEY, "#outcome": "outcome", "#execution": "execution_arn"},
                "ExpressionAttributeValues": {
                    ":running": {"S": PromotionOutcome.RUNNING.value},
                    ":execution": {"S": promotion.execution_arn},
                },
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except _client_errors() as exc:
            if client_error_code(exc) == "ConditionalCheckFailedException":
                raise PromotionEndedError(
                    f"the promotion {promotion.execution_name} of {promotion.usecase!r} has ended meanwhile "
                    "(rolled back or aborted); this step's update is dropped"
                ) from exc
            raise PromotionError(f"cannot write the promotion of {promotion.usecase!r}: {exc}") from exc

    def events(self, usecase: str, *, since: datetime) -> list[AuditEvent]:
        """Audit events from ``since`` on, oldest first."""
        start = f"{EVENT_SORT_KEY_PREFIX}{since.isoformat()}"
        events: list[AuditEvent] = []
        try:
            paginator = self._client.get_paginator("query")
            pages = paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="#pk = :pk AND #sk BETWEEN :start AND :end",
                ExpressionAttributeNames={"#pk": PARTITION_KEY, "#sk": SORT_KEY},
                ExpressionAttributeValues={
                    ":pk": {"S": usecase},
                    ":start": {"S": start},
                    ":end": {"S": f"{EVENT_SORT_KEY_PREFIX}~"},
                },
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    document = from_item(item)
                    try:
                        events.append(AuditEvent.model_validate(document))
                    except ValidationError:
                        continue  # an event written by someone else (e.g. a manual deploy) in another shape
        except _client_errors() as exc:
            raise PromotionError(f"cannot read the audit log of {usecase!r}: {exc}") from exc
        return sorted(events, key=lambda e: e.time)


class PackageRegistry:
    """Model packages as the promotion reads and approves them (registry errors become promotion errors)."""

    def __init__(self, registry: SageMakerRegistry) -> None:
        self._registry = registry

    def describe(self, package_arn: str) -> dict[str, Any]:
        try:
            return self._registry.describe(package_arn)
        except RegistryError as exc:
            raise ModelMetricsError(str(exc)) from exc

    def set_approval(self, package_arn: str, *, approved: bool, reason: str) -> None:
        """``Approved`` or ``Rejected``, with ``reason`` as the ApprovalDescription (max 1024 characters)."""
        try:
            self._registry.set_approval(package_arn, approved=approved, reason=reason)
        except RegistryError as exc:
            raise PromotionError(str(exc)) from exc


def metrics_uri(package: Mapping[str, Any]) -> str:
    """``ModelMetrics.ModelQuality.Statistics.S3Uri`` of a described package (its metrics.json)."""
    try:
        return registry_package.metrics_uri(package)
    except RegistryError as exc:
        raise ModelMetricsError(str(exc)) from exc


class PromotionLake:
    """The lake bucket as the promotion reads and writes it (through the lake's object store)."""

    def __init__(self, store: S3ObjectStore, bucket: str) -> None:
        self._store = store
        self.bucket = bucket

    def get_bytes(self, key: str, *, bucket: str | None = None) -> bytes:
        try:
            return self._store.get_bytes(bucket or self.bucket, key)
        except StorageError as exc:
            raise ModelMetricsError(str(exc)) from exc

    def metrics(self, uri: str) -> dict[str, Any]:
        bucket, key = lake.parse_s3_uri(uri)
        try:
            document = json.loads(self.get_bytes(key, bucket=bucket))
        except json.JSONDecodeError as exc:
            raise ModelMetricsError(f"{uri} is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ModelMetricsError(f"{uri} is not a JSON object")
        return document

    def put_text(self, key: str, body: str, *, content_type: str) -> None:
        try:
            self._store.put_bytes(self.bucket, key, body.encode(), content_type=content_type)
        except StorageError as exc:
            raise PromotionError(str(exc)) from exc

    def _children(self, prefix: str) -> list[str]:
        """The sub-prefixes (``date=…/``, ``hour=…/``) under ``prefix``, newest first."""
        return sorted(self._store.list_prefixes(self.bucket, prefix), reverse=True)

    def _objects(self, prefix: str) -> list[str]:
        """The objects directly under ``prefix``, most recently written first."""
        objects = [(item.last_modified, item.key) for item in self._store.list_objects(self.bucket, prefix)]
        return [key for _, key in sorted(objects, reverse=True)]

    def _prediction_keys(self, usecase: str) -> Iterator[str]:
        for day in self._children(lake.prediction_log_prefix(usecase)):
            for hour in self._children(day):
                yield from self._objects(hour)

    def recent_predictions(self, usecase: str, *, limit: int) -> list[PredictionLogRecord]:
        """Up to ``limit`` served predictions of the log (JSON Lines under ``predictions/{usecase}/``), newest first.

        Shadow scores (``served: false``) are left out: the same request is in the log as served too.
        """
        records: list[PredictionLogRecord] = []
        try:
            for key in self._prediction_keys(usecase):
                logged = logged_records(self._store.get_bytes(self.bucket, key).decode())
                for record in reversed(logged):
                    if record.served:
                        records.append(record)
                        if len(records) >= limit:
                            return records
        except StorageError as exc:
            raise ReplayDataError(f"cannot read the prediction log of {usecase!r}: {exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReplayDataError(f"the prediction log of {usecase!r} holds a line that is not JSON: {exc}") from exc
        return records


class LiveMetrics:
    """The score function's metrics (namespace ``Sluice``, dimensions [usecase, variant]) from CloudWatch."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _query(
        self, queries: list[dict[str, Any]], start: datetime, end: datetime
    ) -> dict[str, list[tuple[datetime, float]]]:
        results: dict[str, list[tuple[datetime, float]]] = {q["Id"]: [] for q in queries}
        try:
            paginator = self._client.get_paginator("get_metric_data")
            for page in paginator.paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
            ):
                for result in page.get("MetricDataResults", []):
                    points = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                    results.setdefault(result["Id"], []).extend(points)
        except _client_errors() as exc:
            raise MetricsError(f"cannot read CloudWatch metrics: {exc}") from exc
        return results

    def window(self, usecase: str, stage: Stage, start: datetime, end: datetime) -> LiveWindow:
        """Candidate and champion over [start, end]: counts summed, p99 the worst period's."""
        period = stage_metrics.window_period(start, end)
        queries = stage_metrics.window_queries(usecase, stage, period)
        return stage_metrics.live_window(self._query(queries, start, start + timedelta(seconds=period)))

    def series(
        self, usecase: str, start: datetime, end: datetime, *, period: int = 60
    ) -> dict[str, list[tuple[datetime, float]]]:
        """The timeline's metric series: p99 latency and errors per variant, one point per period."""
        results = self._query(stage_metrics.timeline_queries(usecase, period), start, end)
        return stage_metrics.timeline_series(results)


class Notifier:
    """The alerting topic (a boto3 SNS client)."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic = topic_arn

    def publish(self, subject: str, message: str) -> None:
        try:
            self._client.publish(TopicArn=self._topic, Subject=subject[:100], Message=message)
        except _client_errors() as exc:
            raise NotificationError(f"cannot notify {self._topic}: {exc}") from exc


class Executions:
    """The promotion state machine's executions and task tokens (a boto3 Step Functions client)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def send_task_success(self, task_token: str, output: Mapping[str, Any]) -> None:
        try:
            self._client.send_task_success(taskToken=task_token, output=json.dumps(output, default=str))
        except _client_errors() as exc:
            raise NotificationError(f"cannot resume the promotion: {exc}") from exc

    def send_task_failure(self, task_token: str, *, error: str, cause: str) -> None:
        try:
            self._client.send_task_failure(taskToken=task_token, error=error, cause=cause[:32768])
        except _client_errors() as exc:
            raise NotificationError(f"cannot fail the promotion's task: {exc}") from exc

    def stop(self, execution_arn: str, *, error: str, cause: str) -> None:
        """Stop a running execution; one that already ended is left alone."""
        try:
            self._client.stop_execution(executionArn=execution_arn, error=error, cause=cause[:32768])
        except _client_errors() as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("ExecutionDoesNotExist", "ExecutionAlreadyStopped"):
                return
            raise NotificationError(f"cannot stop {execution_arn}: {exc}") from exc
