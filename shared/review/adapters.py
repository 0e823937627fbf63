"""Where review lives on AWS: the DynamoDB table of items, the lake's feedback, the monitor's alerted segments.

The table (:data:`TABLE_SCHEMA`, mirrored by the stack): partition key ``usecase`` (S), sort key ``item_id`` (S);
one global secondary index :data:`QUEUE_INDEX` with partition key ``queue`` = ``<usecase>#<state>`` and sort key
``rank`` = ``<priority>#<created_at ISO>#<item_id>``, so "next" is a query of the open partition in rank order
(highest priority, then oldest, first). The item itself is one JSON attribute ``document``; ``revision`` sits
beside it so that every write is conditional on the revision read (the first writer wins; the second gets
:class:`~shared.review.exceptions.ConcurrentReviewError`). Creating an item is conditional on its absence, so
taking in the same message twice makes one item.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pydantic import ValidationError

from shared.exceptions import SluiceError
from shared.lake.layout import parse_s3_uri
from shared.monitoring.adapters import LakeStore
from shared.registry.package import metrics_uri
from shared.review.exceptions import ConcurrentReviewError, ReviewError
from shared.review.explanation import LinearExplanation, contributions, explanation_of
from shared.review.routing import alerted_segments
from shared.review.types import ItemState, ReviewItem

log = logging.getLogger(__name__)

PARTITION_KEY = "usecase"
SORT_KEY = "item_id"
QUEUE_INDEX = "by-queue"
QUEUE_KEY = "queue"
RANK_KEY = "rank"
DOCUMENT = "document"
REVISION = "revision"
TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}, {"AttributeName": SORT_KEY, "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": "S"} for name in (PARTITION_KEY, SORT_KEY, QUEUE_KEY, RANK_KEY)
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": QUEUE_INDEX,
            "KeySchema": [
                {"AttributeName": QUEUE_KEY, "KeyType": "HASH"},
                {"AttributeName": RANK_KEY, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
"""The review table's keys and index, as ``create_table`` takes them (the stack declares the same)."""


class ReviewStore(Protocol):
    """The review items of every use case."""

    def create(self, item: ReviewItem) -> bool:
        """Store a new item; False (and nothing written) when an item of that id exists."""
        ...

    def get(self, usecase: str, item_id: str) -> ReviewItem | None: ...

    def replace(self, item: ReviewItem, *, expected_revision: int) -> None:
        """Write ``item`` if the stored one is still at ``expected_revision``, else :class:`ConcurrentReviewError`."""
        ...

    def queued(self, usecase: str, state: ItemState, *, limit: int) -> list[ReviewItem]:
        """Up to ``limit`` items stored in ``state``, by priority then age."""
        ...

    def count(self, usecase: str, state: ItemState) -> int: ...

    def items(self, usecase: str) -> Iterator[ReviewItem]:
        """Every item of the use case."""
        ...


def queue_name(usecase: str, state: ItemState) -> str:
    return f"{usecase}#{state.value}"


def rank(item: ReviewItem) -> str:
    return f"{item.priority}#{item.created_at.isoformat()}#{item.item_id}"


def _client_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _conditional_failure(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) == "ConditionalCheckFailedException"


class DynamoReviewStore:
    """:class:`ReviewStore` on a DynamoDB table (:data:`TABLE_SCHEMA`) through a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _attributes(self, item: ReviewItem) -> dict[str, Any]:
        return {
            PARTITION_KEY: {"S": item.usecase},
            SORT_KEY: {"S": item.item_id},
            QUEUE_KEY: {"S": queue_name(item.usecase, item.state)},
            RANK_KEY: {"S": rank(item)},
            REVISION: {"N": str(item.revision)},
            DOCUMENT: {"S": item.model_dump_json()},
        }

    @staticmethod
    def _item(attributes: dict[str, Any]) -> ReviewItem:
        try:
            return ReviewItem.model_validate_json(attributes[DOCUMENT]["S"])
        except (KeyError, ValidationError) as exc:
            raise ReviewError(f"a stored review item is unreadable: {exc}") from exc

    def create(self, item: ReviewItem) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._attributes(item),
                ConditionExpression="attribute_not_exists(#sk)",
                ExpressionAttributeNames={"#sk": SORT_KEY},
            )
        except _client_errors() as exc:
            if _conditional_failure(exc):
                return False
            raise ReviewError(f"cannot store review item {item.item_id}: {exc}") from exc
        return True

    def get(self, usecase: str, item_id: str) -> ReviewItem | None:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": usecase}, SORT_KEY: {"S": item_id}},
                ConsistentRead=True,
            )
        except _client_errors() as exc:
            raise ReviewError(f"cannot read review item {item_id}: {exc}") from exc
        return self._item(response["Item"]) if "Item" in response else None

    def replace(self, item: ReviewItem, *, expected_revision: int) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._attributes(item),
                ConditionExpression="#revision = :expected",
                ExpressionAttributeNames={"#revision": REVISION},
                ExpressionAttributeValues={":expected": {"N": str(expected_revision)}},
            )
        except _client_errors() as exc:
            if _conditional_failure(exc):
                raise ConcurrentReviewError(
                    f"review item {item.item_id} changed since revision {expected_revision}"
                ) from exc
            raise ReviewError(f"cannot write review item {item.item_id}: {exc}") from exc

    def _query(self, **arguments: Any) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        while True:
            try:
                response = self._client.query(
                    TableName=self._table, **arguments, **({"ExclusiveStartKey": start} if start else {})
                )
            except _client_errors() as exc:
                raise ReviewError(f"cannot query the review table: {exc}") from exc
            yield response
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def _by_queue(self, usecase: str, state: ItemState) -> dict[str, Any]:
        return {
            "IndexName": QUEUE_INDEX,
            "KeyConditionExpression": "#queue = :queue",
            "ExpressionAttributeNames": {"#queue": QUEUE_KEY},
            "ExpressionAttributeValues": {":queue": {"S": queue_name(usecase, state)}},
        }

    def queued(self, usecase: str, state: ItemState, *, limit: int) -> list[ReviewItem]:
        found: list[ReviewItem] = []
        for page in self._query(**self._by_queue(usecase, state), ScanIndexForward=True, Limit=limit):
            found += [self._item(attributes) for attributes in page.get("Items", [])]
            if len(found) >= limit:
                break
        return found[:limit]

    def count(self, usecase: str, state: ItemState) -> int:
        return sum(int(page.get("Count", 0)) for page in self._query(**self._by_queue(usecase, state), Select="COUNT"))

    def items(self, usecase: str) -> Iterator[ReviewItem]:
        for page in self._query(
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": usecase}},
        ):
            yield from (self._item(attributes) for attributes in page.get("Items", []))


class FeedbackObjects(Protocol):
    """The lake, as the feedback path writes it (:class:`~shared.lake.adapters.S3ObjectStore`)."""

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None: ...


class LatestAlertedSegments:
    """The segments under an alert in the monitor's latest report (``column=value`` names; none before a run)."""

    def __init__(self, store: LakeStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    def __call__(self, usecase: str) -> frozenset[str]:
        from shared.monitoring.service import read_latest, read_report

        latest = read_latest(self._store, self._bucket, usecase)
        if latest is None:
            return frozenset()
        report = read_report(self._store, self._bucket, latest.report_json_key)
        return alerted_segments(violation.segment for violation in report.violations)


class RefreshingAlertedSegments:
    """The alerted segments of one use case, re-read at most every ``refresh_seconds`` (the score function asks
    once a request: the monitor's report changes once a run)."""

    def __init__(
        self,
        read: Callable[[str], frozenset[str]],
        usecase: str,
        *,
        refresh_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._read = read
        self._usecase = usecase
        self._refresh = refresh_seconds
        self._clock = clock
        self._value: frozenset[str] = frozenset()
        self._read_at: float | None = None

    def __call__(self) -> frozenset[str]:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._refresh:
            self._read_at = now  # a failed read is not retried before the next refresh
            self._value = self._read(self._usecase)
        return self._value


class ModelPackages(Protocol):
    """The model registry, as :class:`shared.registry.adapters.SageMakerRegistry` answers it."""

    def packages(self, group_name: str) -> list[dict[str, Any]]: ...

    def describe(self, package_arn: str) -> dict[str, Any]: ...


class ObjectBytes(Protocol):
    def get_bytes(self, bucket: str, key: str) -> bytes: ...


class RegistryExplanations:
    """What drove an item's score: its model version's package in the registry names its ``metrics.json``, whose
    linear explanation (:mod:`shared.review.explanation`) gives the per-feature contributions. None where the
    version's model has none (not a linear model) or cannot be read (logged: the page still serves the item).
    Each version is read once per instance (a registered version's files never change)."""

    def __init__(self, registry: ModelPackages, store: ObjectBytes, group: str) -> None:
        self._registry = registry
        self._store = store
        self._group = group
        self._by_version: dict[int, LinearExplanation | None] = {}

    def explanation(self, version: int) -> LinearExplanation | None:
        if version not in self._by_version:
            self._by_version[version] = self._read(version)
        return self._by_version[version]

    def _read(self, version: int) -> LinearExplanation | None:
        try:
            for summary in self._registry.packages(self._group):
                if int(summary.get("ModelPackageVersion", 0)) == version:
                    bucket, key = parse_s3_uri(metrics_uri(self._registry.describe(summary["ModelPackageArn"])))
                    return explanation_of(json.loads(self._store.get_bytes(bucket, key)))
        except (SluiceError, ValueError, ValidationError) as exc:
            log.warning("no explanation for model v%s: %s", version, exc)
            return None
        log.warning("model v%s is not in %s", version, self._group)
        return None

    def __call__(self, item: ReviewItem) -> dict[str, float] | None:
        explanation = self.explanation(item.model_version)
        return None if explanation is None else contributions(explanation, item.features)
