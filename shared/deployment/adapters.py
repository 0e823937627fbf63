"""The deployment state on DynamoDB: the table's item codec and :class:`DeploymentStore`.

The table has partition key ``usecase`` (S) and sort key ``sk`` (S). The current state is the item
``sk = "state"``; audit events are items ``sk = "event#<ISO time>#<uuid>"`` (the promotion record,
``sk = "promotion"``, is :class:`~shared.promotion.adapters.PromotionStore`'s). Every write of the state is
conditional on the ``revision`` it was read at, so two writers never overwrite each other silently
(:class:`~shared.deployment.exceptions.ConcurrentUpdateError`). A use case with no state item has the empty
state (no champion, revision 0).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from shared.clients import client_error_code
from shared.deployment.exceptions import ConcurrentUpdateError, DeploymentError
from shared.deployment.state import DeploymentState

STATE_SORT_KEY = "state"
EVENT_SORT_KEY_PREFIX = "event#"
PARTITION_KEY = "usecase"
SORT_KEY = "sk"


def to_item(document: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-like document as a DynamoDB item (boto3's ``TypeSerializer``; numbers as Decimals, other values
    JSON-encoded first, so datetimes become ISO strings and floats exact decimals)."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    plain = json.loads(json.dumps(document, default=str), parse_float=Decimal)  # DynamoDB numbers are Decimals
    return {key: serializer.serialize(value) for key, value in plain.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as a document (boto3's ``TypeDeserializer``: numbers come back as Decimals)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}


def _client_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


class DeploymentStore:
    """The deployment state on DynamoDB, through a boto3 DynamoDB client (low-level)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, usecase: str) -> DeploymentState:
        """The current state (strongly consistent); the empty state when none was ever written."""
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": usecase}, SORT_KEY: {"S": STATE_SORT_KEY}},
                ConsistentRead=True,
            )
        except _client_errors() as exc:
            raise DeploymentError(f"cannot read the deployment state of {usecase!r}: {exc}") from exc
        if "Item" not in response:
            return DeploymentState(usecase=usecase)
        document = from_item(response["Item"])
        document.pop(SORT_KEY, None)
        try:
            return DeploymentState.model_validate(document)
        except ValidationError as exc:
            raise DeploymentError(f"the deployment state of {usecase!r} is invalid:\n{exc}") from exc

    def put(
        self, state: DeploymentState, *, expected_revision: int, updated_by: str = "", reason: str = ""
    ) -> DeploymentState:
        """Write ``state`` if the stored one is still at ``expected_revision`` (0: none stored yet).

        Returns the state as written (revision ``expected_revision + 1``, ``updated_at`` now).
        Raises :class:`ConcurrentUpdateError` when someone else wrote in between.
        """
        written = state.model_copy(
            update={
                "revision": expected_revision + 1,
                "updated_at": datetime.now(UTC),
                "updated_by": updated_by or state.updated_by,
                "reason": reason or state.reason,
            }
        )
        item = to_item({**written.model_dump(mode="json"), SORT_KEY: STATE_SORT_KEY})
        if expected_revision == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#pk)"}
            condition["ExpressionAttributeNames"] = {"#pk": PARTITION_KEY}
        else:
            condition = {
                "ConditionExpression": "#revision = :expected",
                "ExpressionAttributeNames": {"#revision": "revision"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_revision)}},
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except _client_errors() as exc:
            if client_error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdateError(state.usecase, expected_revision) from exc
            raise DeploymentError(f"cannot write the deployment state of {state.usecase!r}: {exc}") from exc
        return written

    def append_event(self, usecase: str, event: Mapping[str, Any], *, at: datetime | None = None) -> str:
        """Record an audit event (``event#<ISO time>#<uuid>``); returns its sort key."""
        when = (at or datetime.now(UTC)).astimezone(UTC)
        sort_key = f"{EVENT_SORT_KEY_PREFIX}{when.isoformat()}#{uuid.uuid4()}"
        item = to_item({**event, PARTITION_KEY: usecase, SORT_KEY: sort_key, "at": when.isoformat()})
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except _client_errors() as exc:
            raise DeploymentError(f"cannot record a deployment event of {usecase!r}: {exc}") from exc
        return sort_key

    def latest_events(self, usecase: str, *, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` most recent audit events (``event#…`` items) as documents, newest first."""
        try:
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="usecase = :u AND begins_with(sk, :p)",
                ExpressionAttributeValues={":u": {"S": usecase}, ":p": {"S": EVENT_SORT_KEY_PREFIX}},
                ScanIndexForward=False,
                Limit=limit,
            )
        except _client_errors() as exc:
            raise DeploymentError(f"cannot read the deployment events of {usecase!r}: {exc}") from exc
        return [from_item(item) for item in response.get("Items", [])]

    def latest_event(self, usecase: str, *, action: str, scanned: int = 1000) -> dict[str, Any] | None:
        """The most recent audit event whose ``action`` is ``action`` (among the ``scanned`` newest), or None."""
        start: dict[str, Any] | None = None
        seen = 0
        while seen < scanned:
            try:
                response = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression="usecase = :u AND begins_with(sk, :p)",
                    FilterExpression="#action = :a",
                    ExpressionAttributeNames={"#action": "action"},
                    ExpressionAttributeValues={
                        ":u": {"S": usecase},
                        ":p": {"S": EVENT_SORT_KEY_PREFIX},
                        ":a": {"S": action},
                    },
                    ScanIndexForward=False,
                    Limit=min(100, scanned - seen),
                    **({"ExclusiveStartKey": start} if start else {}),
                )
            except _client_errors() as exc:
                raise DeploymentError(f"cannot read the deployment events of {usecase!r}: {exc}") from exc
            items = response.get("Items", [])
            if items:
                return from_item(items[0])
            seen += int(response.get("ScannedCount", 0))
            start = response.get("LastEvaluatedKey")
            if not start:
                return None
        return None
