"""SQS event source mappings, polled locally and delivered to the in-process Lambda runtime.

The deployer records every ``AWS::Lambda::EventSourceMapping`` (:class:`EventSourceMappingSpec`)
without creating it in moto (moto would otherwise invoke the function inside ``SendMessage``).
:class:`SqsPoller` runs one thread per enabled mapping whose ``EventSourceArn`` is an SQS queue, as
Lambda's pollers do:

* receive up to ``BatchSize`` messages (default 10); with ``MaximumBatchingWindowInSeconds`` > 0
  keep receiving until the window ends or the batch is full;
* invoke the function synchronously through :class:`local.services.lambdas.LambdaRuntime` (under its one
  execution lock) with Lambda's SQS event (``Records[]`` with ``messageId``, ``receiptHandle``,
  ``body``, ``attributes``, ``messageAttributes``, ``md5OfBody``, ``eventSource: aws:sqs``,
  ``eventSourceARN``, ``awsRegion``);
* on success delete the batch; with ``FunctionResponseTypes: [ReportBatchItemFailures]`` delete all
  but the ``batchItemFailures[].itemIdentifier`` the function returned (a malformed response fails
  the whole batch, as on AWS); on a function error delete nothing: the messages reappear after the
  queue's visibility timeout, and moto moves them to the queue's dead-letter queue after
  ``maxReceiveCount`` receives (its ``RedrivePolicy``).

:meth:`SqsPoller.wait_until_idle` tells when no batch is being gathered or run and no mapped queue
has a visible message.

Not emulated: scaling (one poller per mapping, batches run one at a time), ``ScalingConfig``,
``FilterCriteria``, FIFO ordering by message group (messages are delivered in receive order),
``MaximumRetryAttempts``/``DestinationConfig`` (those apply to stream sources), and mappings whose
source is not SQS (DynamoDB Streams, Kinesis, Kafka, MQ are recorded only). Event source mappings
created through the API at run time are not polled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from local.services.lambdas import LambdaRuntime

logger = logging.getLogger(__name__)

DEFAULT_SQS_BATCH_SIZE: Final = 10
MAX_RECEIVE: Final = 10
IDLE_POLL_S: Final = 0.1


@dataclass(frozen=True, kw_only=True)
class EventSourceMappingSpec:
    """One ``AWS::Lambda::EventSourceMapping`` from the template, resolved."""

    uuid: str
    function_name: str
    event_source_arn: str
    batch_size: int = DEFAULT_SQS_BATCH_SIZE
    maximum_batching_window_s: float = 0.0
    function_response_types: tuple[str, ...] = ()
    enabled: bool = True

    @property
    def is_sqs(self) -> bool:
        return self.event_source_arn.startswith("arn:") and self.event_source_arn.split(":")[2] == "sqs"

    @property
    def reports_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types

    @classmethod
    def from_properties(cls, uuid: str, props: Mapping[str, Any]) -> EventSourceMappingSpec:
        return cls(
            uuid=uuid,
            function_name=str(props["FunctionName"]),
            event_source_arn=str(props.get("EventSourceArn", "")),
            batch_size=int(props.get("BatchSize", DEFAULT_SQS_BATCH_SIZE)),
            maximum_batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            function_response_types=tuple(str(t) for t in props.get("FunctionResponseTypes", [])),
            enabled=str(props.get("Enabled", True)).lower() != "false",
        )


@dataclass(kw_only=True)
class BatchRecord:
    """One delivered batch (``SqsPoller.batches``)."""

    mapping_uuid: str
    message_ids: list[str]
    outcome: str
    """``ok``, ``partial`` (some items reported failed), or the function's error type."""
    failed_ids: list[str] = field(default_factory=list)


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records[]`` entry of Lambda's SQS event from a ``ReceiveMessage`` message."""
    attributes = {str(k): str(v) for k, v in message.get("Attributes", {}).items()}
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    body = str(message.get("Body", ""))
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's digest
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class SqsPoller:
    """Polls the SQS queues of the given mappings and invokes their functions."""

    def __init__(
        self,
        *,
        mappings: Sequence[EventSourceMappingSpec],
        lambdas: LambdaRuntime,
        client: Callable[[str], Any],
        region: str,
    ) -> None:
        self.mappings = [m for m in mappings if m.enabled and m.is_sqs]
        self.skipped = [m for m in mappings if m not in self.mappings]
        self.region = region
        self.batches: list[BatchRecord] = []
        self._lambdas = lambdas
        self._client = client
        self._queue_urls: dict[str, str] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._busy = 0

    def start(self) -> None:
        if self._threads:
            return
        self._stopping.clear()
        for mapping in self.mappings:
            thread = threading.Thread(target=self._poll, args=(mapping,), name=f"local-sqs-{mapping.uuid}", daemon=True)
            self._threads.append(thread)
            thread.start()
        for mapping in self.skipped:
            logger.info("event source mapping %s (%s) is not polled locally", mapping.uuid, mapping.event_source_arn)

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop polling; a batch being run finishes first."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        self._threads.clear()

    @property
    def busy(self) -> int:
        with self._changed:
            return self._busy

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no batch is gathered or running and no mapped queue holds a visible message."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._changed:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not self._changed.wait_for(lambda: self._busy == 0, timeout=remaining):
                    return False
            if not any(self._visible(m) for m in self.mappings):
                with self._changed:
                    if self._busy == 0:
                        return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(IDLE_POLL_S / 2)

    # -- internals ------------------------------------------------------------------------------

    def _queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._queue_urls:
            *_, account, name = queue_arn.split(":")
            response = self._client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._queue_urls[queue_arn] = str(response["QueueUrl"])
        return self._queue_urls[queue_arn]

    def _visible(self, mapping: EventSourceMappingSpec) -> bool:
        attributes = self._client("sqs").get_queue_attributes(
            QueueUrl=self._queue_url(mapping.event_source_arn), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) > 0

    def _poll(self, mapping: EventSourceMappingSpec) -> None:
        while not self._stopping.is_set():
            try:
                if not self._poll_once(mapping):
                    self._stopping.wait(IDLE_POLL_S)
            except Exception:  # the poller must outlive a bad batch or a transient error
                logger.exception("polling %s for %s failed", mapping.event_source_arn, mapping.function_name)
                self._stopping.wait(IDLE_POLL_S * 5)

    def _receive(self, url: str, count: int) -> list[dict[str, Any]]:
        response = self._client("sqs").receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(MAX_RECEIVE, count),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _poll_once(self, mapping: EventSourceMappingSpec) -> bool:
        """Gather and deliver one batch; False when the queue was empty."""
        url = self._queue_url(mapping.event_source_arn)
        with self._changed:
            self._busy += 1
        try:
            messages = self._receive(url, mapping.batch_size)
            if not messages:
                return False
            window_ends = time.monotonic() + mapping.maximum_batching_window_s
            while len(messages) < mapping.batch_size and time.monotonic() < window_ends:
                if self._stopping.is_set():
                    break
                more = self._receive(url, mapping.batch_size - len(messages))
                messages.extend(more)
                if not more:
                    time.sleep(min(IDLE_POLL_S, max(0.0, window_ends - time.monotonic())))
            self._deliver(mapping, url, messages)
            return True
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def _deliver(self, mapping: EventSourceMappingSpec, url: str, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, mapping.event_source_arn, self.region) for m in messages]}
        ids = [str(m["MessageId"]) for m in messages]
        result = self._lambdas.invoke(mapping.function_name, event)
        if result.function_error:
            error_type = str((result.error or {}).get("errorType", "Unhandled"))
            logger.warning("λ %s failed a batch of %d from %s: %s", mapping.function_name, len(ids), url, error_type)
            self.batches.append(BatchRecord(mapping_uuid=mapping.uuid, message_ids=ids, outcome=error_type))
            return
        failed = self._reported_failures(mapping, result.payload, ids)
        if failed is None:
            self.batches.append(BatchRecord(mapping_uuid=mapping.uuid, message_ids=ids, outcome="InvalidResponse"))
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), MAX_RECEIVE):
            chunk = done[start : start + MAX_RECEIVE]
            self._client("sqs").delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        outcome = "partial" if failed else "ok"
        self.batches.append(
            BatchRecord(mapping_uuid=mapping.uuid, message_ids=ids, outcome=outcome, failed_ids=sorted(failed))
        )

    @staticmethod
    def _reported_failures(mapping: EventSourceMappingSpec, payload: bytes, ids: list[str]) -> set[str] | None:
        """The message ids to keep; None when the partial-batch response is malformed (the batch fails)."""
        if not mapping.reports_item_failures:
            return set()
        try:
            response = json.loads(payload) if payload else None
        except ValueError:
            return None
        if not isinstance(response, dict):
            return set()  # null or no object: Lambda treats it as complete success
        failures = response.get("batchItemFailures") or []
        if not isinstance(failures, list):
            return None
        kept: set[str] = set()
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not identifier or identifier not in ids:
                return None
            kept.add(str(identifier))
        return kept
