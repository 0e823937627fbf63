"""AWS adapters of the promotion: each takes a boto3 client and wraps SDK errors in a promotion error.

- :class:`PromotionStore`: the promotion record (``sk = "promotion"``) and the audit log of the deployment table;
- :class:`PackageRegistry`: SageMaker model packages (describe, approve / reject);
- :class:`PromotionLake`: metrics.json, ONNX files and the prediction log in the lake; timelines out;
- :class:`LiveMetrics`: the score function's CloudWatch metrics over a stage's window;
- :class:`Notifier` (SNS) and :class:`Executions` (Step Functions task tokens and executions).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from shared.deployment.store import EVENT_SORT_KEY_PREFIX, PARTITION_KEY, SORT_KEY
from shared.lake import layout as lake
from shared.promotion.analysis import LiveWindow
from shared.promotion.exceptions import (
    MetricsError,
    ModelMetricsError,
    NotificationError,
    PromotionError,
    ReplayDataError,
)
from shared.promotion.transitions import AuditEvent, Promotion, Stage
from shared.registry.service import parse_s3_uri
from shared.scoring import telemetry

PROMOTION_SORT_KEY = "promotion"
SCORE_DELTA = telemetry.SCORE_DELTA
"""|candidate - champion| per shadow-scored request (emitted by the score function with variant=shadow)."""


def _to_item(document: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    plain = json.loads(json.dumps(document, default=str), parse_float=Decimal)  # DynamoDB numbers are Decimals
    return {key: serializer.serialize(value) for key, value in plain.items()}


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}


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
            return Promotion.model_validate(_from_item(response["Item"]))
        except ValidationError as exc:
            raise PromotionError(f"the promotion record of {usecase!r} is invalid:\n{exc}") from exc

    def put(self, promotion: Promotion) -> None:
        item = _to_item({**promotion.model_dump(mode="json"), SORT_KEY: PROMOTION_SORT_KEY})
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except _client_errors() as exc:
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
                    document = _from_item(item)
                    try:
                        events.append(AuditEvent.model_validate(document))
                    except ValidationError:
                        continue  # an event written by someone else (e.g. a manual deploy) in another shape
        except _client_errors() as exc:
            raise PromotionError(f"cannot read the audit log of {usecase!r}: {exc}") from exc
        return sorted(events, key=lambda e: e.time)


class PackageRegistry:
    """SageMaker model packages, through a boto3 SageMaker client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def describe(self, package_arn: str) -> dict[str, Any]:
        try:
            return dict(self._client.describe_model_package(ModelPackageName=package_arn))
        except _client_errors() as exc:
            raise ModelMetricsError(f"cannot describe model package {package_arn!r}: {exc}") from exc

    def set_approval(self, package_arn: str, *, approved: bool, reason: str) -> None:
        """``Approved`` or ``Rejected``, with ``reason`` as the ApprovalDescription (max 1024 characters)."""
        try:
            self._client.update_model_package(
                ModelPackageArn=package_arn,
                ModelApprovalStatus="Approved" if approved else "Rejected",
                ApprovalDescription=reason[:1024],
            )
        except _client_errors() as exc:
            raise PromotionError(f"cannot update the approval of {package_arn!r}: {exc}") from exc


def metrics_uri(package: Mapping[str, Any]) -> str:
    """``ModelMetrics.ModelQuality.Statistics.S3Uri`` of a described package (its metrics.json)."""
    try:
        return str(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    except (KeyError, TypeError) as exc:
        raise ModelMetricsError(f"model package {package.get('ModelPackageArn')!r} names no metrics.json") from exc


class PromotionLake:
    """The lake bucket as the promotion reads and writes it (a boto3 S3 client)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def get_bytes(self, key: str, *, bucket: str | None = None) -> bytes:
        try:
            return bytes(self._client.get_object(Bucket=bucket or self.bucket, Key=key)["Body"].read())
        except _client_errors() as exc:
            raise ModelMetricsError(f"cannot read s3://{bucket or self.bucket}/{key}: {exc}") from exc

    def metrics(self, uri: str) -> dict[str, Any]:
        bucket, key = parse_s3_uri(uri)
        try:
            document = json.loads(self.get_bytes(key, bucket=bucket))
        except json.JSONDecodeError as exc:
            raise ModelMetricsError(f"{uri} is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ModelMetricsError(f"{uri} is not a JSON object")
        return document

    def put_text(self, key: str, body: str, *, content_type: str) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType=content_type)
        except _client_errors() as exc:
            raise PromotionError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc

    def _children(self, prefix: str) -> list[str]:
        """The sub-prefixes (``date=…/``, ``hour=…/``) under ``prefix``, newest first."""
        found: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return sorted(found, reverse=True)

    def _objects(self, prefix: str) -> list[str]:
        """The objects directly under ``prefix``, most recently written first."""
        objects: list[tuple[datetime, str]] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            objects.extend((item["LastModified"], item["Key"]) for item in page.get("Contents", []))
        return [key for _, key in sorted(objects, reverse=True)]

    def _prediction_keys(self, usecase: str) -> Iterator[str]:
        for day in self._children(lake.prediction_log_prefix(usecase)):
            for hour in self._children(day):
                yield from self._objects(hour)

    def recent_predictions(self, usecase: str, *, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` served predictions of the log (JSON Lines under ``predictions/{usecase}/``), newest first.

        Shadow scores (``served: false``) are left out: the same request is in the log as served too.
        """
        records: list[dict[str, Any]] = []
        try:
            for key in self._prediction_keys(usecase):
                lines = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode().splitlines()
                for line in reversed(lines):
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    if (
                        isinstance(record, dict)
                        and record.get("served", True)
                        and isinstance(record.get("features"), dict)
                    ):
                        records.append(record)
                        if len(records) >= limit:
                            return records
        except _client_errors() as exc:
            raise ReplayDataError(f"cannot read the prediction log of {usecase!r}: {exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReplayDataError(f"the prediction log of {usecase!r} holds a line that is not JSON: {exc}") from exc
        return records


def _metric(name: str, usecase: str, variant: str, **extra: str) -> dict[str, Any]:
    dimensions = [
        {"Name": telemetry.DIMENSION_USECASE, "Value": usecase},
        {"Name": telemetry.DIMENSION_VARIANT, "Value": variant},
    ]
    dimensions += [{"Name": key, "Value": value} for key, value in extra.items()]
    return {"Namespace": telemetry.NAMESPACE, "MetricName": name, "Dimensions": dimensions}


def window_period(start: datetime, end: datetime) -> int:
    """One CloudWatch period spanning the whole window (a multiple of 60 s)."""
    seconds = max((end - start).total_seconds(), 1.0)
    return 60 * math.ceil(seconds / 60)


def candidate_variant(stage: Stage) -> str:
    """How the score function labels the candidate's metrics in a live stage."""
    if stage is Stage.SHADOW:
        return telemetry.SHADOW
    if stage is Stage.CANARY:
        return telemetry.CHALLENGER
    raise PromotionError(f"stage {stage!r} has no live traffic to analyze")


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
        period = window_period(start, end)
        candidate = candidate_variant(stage)
        shadow = stage is Stage.SHADOW
        wanted: dict[str, tuple[dict[str, Any], str]] = {
            "cand_samples": (
                _metric(telemetry.SHADOW_SCORES if shadow else telemetry.PREDICTIONS, usecase, candidate),
                "Sum",
            ),
            "cand_errors": (
                _metric(telemetry.SHADOW_ERRORS if shadow else telemetry.ERRORS, usecase, candidate),
                "Sum",
            ),
            "cand_fallbacks": (_metric(telemetry.FALLBACKS, usecase, candidate), "Sum"),
            "cand_p99": (_metric(telemetry.LATENCY, usecase, candidate), "p99"),
            "champ_samples": (_metric(telemetry.PREDICTIONS, usecase, telemetry.CHAMPION), "Sum"),
            "champ_p99": (_metric(telemetry.LATENCY, usecase, telemetry.CHAMPION), "p99"),
            "delta_sum": (_metric(SCORE_DELTA, usecase, telemetry.SHADOW), "Sum"),
            "delta_count": (_metric(SCORE_DELTA, usecase, telemetry.SHADOW), "SampleCount"),
        }
        for index, bucket in enumerate(telemetry.SCORE_BUCKETS):
            for prefix, variant in (("cand", candidate), ("champ", telemetry.CHAMPION)):
                metric = _metric(telemetry.SCORE_BUCKET, usecase, variant, **{telemetry.DIMENSION_BUCKET: bucket})
                wanted[f"{prefix}_bucket_{index}"] = (metric, "Sum")
        queries = [
            {"Id": key, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}, "ReturnData": True}
            for key, (metric, stat) in wanted.items()
        ]
        results = self._query(queries, start, start + timedelta(seconds=period))

        def total(key: str) -> float:
            return float(sum(value for _, value in results.get(key, [])))

        def worst(key: str) -> float | None:
            values = [value for _, value in results.get(key, [])]
            return float(max(values)) if values else None

        delta_count = total("delta_count")
        buckets = len(telemetry.SCORE_BUCKETS)
        return LiveWindow(
            candidate_samples=int(total("cand_samples")),
            candidate_errors=int(total("cand_errors")),
            candidate_fallbacks=int(total("cand_fallbacks")),
            candidate_latency_p99_ms=worst("cand_p99"),
            champion_samples=int(total("champ_samples")),
            champion_latency_p99_ms=worst("champ_p99"),
            candidate_score_buckets=tuple(total(f"cand_bucket_{i}") for i in range(buckets)),
            champion_score_buckets=tuple(total(f"champ_bucket_{i}") for i in range(buckets)),
            mean_score_delta=total("delta_sum") / delta_count if delta_count else None,
        )

    def series(
        self, usecase: str, start: datetime, end: datetime, *, period: int = 60
    ) -> dict[str, list[tuple[datetime, float]]]:
        """The timeline's metric series: p99 latency and errors per variant, one point per period."""
        names = {
            "p99 latency champion (ms)": (_metric(telemetry.LATENCY, usecase, telemetry.CHAMPION), "p99"),
            "p99 latency challenger (ms)": (_metric(telemetry.LATENCY, usecase, telemetry.CHALLENGER), "p99"),
            "errors champion": (_metric(telemetry.ERRORS, usecase, telemetry.CHAMPION), "Sum"),
            "errors challenger": (_metric(telemetry.ERRORS, usecase, telemetry.CHALLENGER), "Sum"),
            "shadow errors": (_metric(telemetry.SHADOW_ERRORS, usecase, telemetry.SHADOW), "Sum"),
        }
        queries = [
            {"Id": f"s{index}", "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}, "ReturnData": True}
            for index, (metric, stat) in enumerate(names.values())
        ]
        results = self._query(queries, start, end)
        return {name: sorted(results.get(f"s{index}", [])) for index, name in enumerate(names)}


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
