"""Which models serve a use case: the deployment state, and its DynamoDB adapter.

The table has partition key ``usecase`` (S) and sort key ``sk`` (S). The current state is the item
``sk = "state"``; audit events are items ``sk = "event#<ISO time>#<uuid>"``. Every write of the state is
conditional on the ``revision`` it was read at, so two writers never overwrite each other silently
(:class:`~shared.exceptions.ConcurrentUpdateError`). A use case with no state item has the empty state
(no champion, revision 0).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.exceptions import ConcurrentUpdateError, DeploymentError, RegistryError

IDLE_STAGE = "idle"
"""The stage of a use case no promotion is running for (``shared.promotion.transitions.Stage.IDLE``)."""

STATE_SORT_KEY = "state"
EVENT_SORT_KEY_PREFIX = "event#"
PARTITION_KEY = "usecase"
SORT_KEY = "sk"


class ModelRef(BaseModel):
    """One registered model, as the score function needs it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = Field(ge=1)
    package_arn: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    onnx_key: str = Field(min_length=1)
    """The ONNX file's key in the lake bucket (``models/{usecase}/{run_id}/model.onnx``)."""
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """The registry's sha256 of the ONNX file: a file that does not match is never served."""
    threshold: float
    """The cost-optimal decision threshold (label positive when score >= threshold)."""


class DeploymentState(BaseModel):
    """What serves a use case now: the champion, a challenger (canary or shadow) and how traffic is split."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    usecase: str = Field(min_length=1)
    champion: ModelRef | None = None
    challenger: ModelRef | None = None
    challenger_weight: float = Field(default=0.0, ge=0, le=1)
    """Share of entities the challenger serves (canary); 0 when it only shadows or is absent."""
    shadow: bool = False
    """Score sampled requests with the challenger too, never returning its answer."""
    previous_champion: ModelRef | None = None
    stage: str = IDLE_STAGE
    revision: int = Field(default=0, ge=0)
    updated_at: datetime | None = None
    updated_by: str = ""
    reason: str = ""


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


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


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
        document = _from_item(response["Item"])
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
        item = _to_item({**written.model_dump(mode="json"), SORT_KEY: STATE_SORT_KEY})
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
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdateError(state.usecase, expected_revision) from exc
            raise DeploymentError(f"cannot write the deployment state of {state.usecase!r}: {exc}") from exc
        return written

    def append_event(self, usecase: str, event: Mapping[str, Any], *, at: datetime | None = None) -> str:
        """Record an audit event (``event#<ISO time>#<uuid>``); returns its sort key."""
        when = (at or datetime.now(UTC)).astimezone(UTC)
        sort_key = f"{EVENT_SORT_KEY_PREFIX}{when.isoformat()}#{uuid.uuid4()}"
        item = _to_item({**event, PARTITION_KEY: usecase, SORT_KEY: sort_key, "at": when.isoformat()})
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except _client_errors() as exc:
            raise DeploymentError(f"cannot record a deployment event of {usecase!r}: {exc}") from exc
        return sort_key


def model_ref_from_package(package: Mapping[str, Any], metrics: Mapping[str, Any]) -> ModelRef:
    """The :class:`ModelRef` of a registered package (a ``DescribeModelPackage`` response and its metrics.json)."""
    properties = package.get("CustomerMetadataProperties") or {}
    arn = package.get("ModelPackageArn", "")
    try:
        threshold = float(metrics["threshold"]["threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"the metrics of {arn or 'the package'} have no threshold.threshold") from exc
    from shared.registry.service import package_version  # the registry module is not needed on the scoring path

    version = package.get("ModelPackageVersion") or package_version(arn)
    try:
        return ModelRef(
            version=int(version),
            package_arn=arn,
            run_id=properties.get("run_id", ""),
            onnx_key=properties.get("onnx_s3_key", ""),
            onnx_sha256=properties.get("onnx_sha256", ""),
            threshold=threshold,
        )
    except ValidationError as exc:
        raise RegistryError(f"model package {arn!r} lacks what serving needs:\n{exc}") from exc


def variant_name(ref: ModelRef) -> str:
    """The production variant that serves ``ref`` on a heavy use case's endpoint during a promotion."""
    return f"v{ref.version}"
