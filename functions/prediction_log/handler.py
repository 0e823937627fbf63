"""Prediction-log handler: SQS batches of prediction records → JSON Lines objects in the lake.

Each message is a block of one request's scores as the score function sends it (read back into one
:class:`~shared.scoring.prediction_log.PredictionLogRecord` per prediction by ``parse_log_message``), or a
request's refused records by (field, reason kind) (one ``kind: "refusal"`` line per reason, written in
``refusals-<id>.jsonl`` objects of the same hour partition); a
message that is not one fails alone (partial batch response). Records are de-duplicated by (request_id, variant, index)
within the batch and written one object per use case and UTC hour
(``predictions/{usecase}/date=YYYY-MM-DD/hour=HH/<id>.jsonl``).

Environment: ``LAKE_BUCKET``, plus powertools' own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.environment import read_environment
from shared.lake.adapters import S3ObjectStore
from shared.scoring.environment import PredictionLogEnvironment
from shared.scoring.prediction_log_lake import LogLine, parse_log_message, write_prediction_log

logger = Logger()
tracer = Tracer()


@lru_cache(maxsize=1)
def settings() -> PredictionLogEnvironment:
    return read_environment(PredictionLogEnvironment, "prediction-log")


@lru_cache(maxsize=1)
def object_writer() -> S3ObjectStore:
    import boto3

    return S3ObjectStore(boto3.client("s3"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed: list[tuple[str, LogLine]] = []

    def parse(record: SQSRecord) -> None:
        parsed.extend((record.message_id, line) for line in parse_log_message(record.body))

    processor = BatchProcessor(event_type=EventType.SQS)
    with processor(records=event.get("Records", []), handler=parse, lambda_context=context):
        processor.process()
    result = write_prediction_log(parsed, writer=object_writer(), bucket=settings().lake_bucket)
    response: dict[str, Any] = dict(processor.response())
    failures = response.setdefault("batchItemFailures", [])
    already = {failure["itemIdentifier"] for failure in failures}
    for message_id in dict.fromkeys(result.failed_message_ids):  # a message's lines may be in several objects
        if message_id not in already:
            failures.append({"itemIdentifier": message_id})
    logger.info(
        "prediction log written",
        extra={
            "objects": len(result.written),
            "records": sum(len(ids) for ids in result.written.values()),
            "messages": len(event.get("Records", [])),
            "failed_messages": len(failures),
        },
    )
    return response
