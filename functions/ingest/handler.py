"""Ingest handler: S3 ObjectCreated events → :func:`shared.ingest.service.ingest_object`, once per object and content.

Environment (validated once, at the first invocation): ``SLUICE_USECASE_FILE`` (the use-case TOML;
relative to ``LAMBDA_TASK_ROOT``; default ``usecase.toml``), ``LAKE_BUCKET``, ``IDEMPOTENCY_TABLE``,
``SLUICE_WORKDIR`` (default ``/tmp``), plus powertools' own (``POWERTOOLS_METRICS_NAMESPACE``, ...).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.environment import read_environment
from shared.ingest import telemetry as ingest_metrics
from shared.ingest.environment import IngestEnvironment
from shared.ingest.service import SourceObject, ingest_object
from shared.lake.adapters import S3ObjectStore
from shared.lake.layout import BATCH_UPLOAD_PREFIX
from shared.lake.manifest import IngestStatus, Manifest
from shared.usecase.settings import UseCase, load_usecase

IDEMPOTENCY_TTL_SECONDS = 24 * 3600

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@lru_cache(maxsize=1)
def settings() -> IngestEnvironment:
    return read_environment(IngestEnvironment, "ingest")


@lru_cache(maxsize=1)
def usecase() -> UseCase:
    return load_usecase(settings().usecase_path)


@lru_cache(maxsize=1)
def object_store() -> S3ObjectStore:
    import boto3

    return S3ObjectStore(boto3.client("s3"))


@lru_cache(maxsize=1)
def idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(event_key_jmespath="[bucket, key, etag]", expires_after_seconds=IDEMPOTENCY_TTL_SECONDS)


@lru_cache(maxsize=1)
def idempotent_ingest() -> Any:
    """``ingest_object`` wrapped once per process in powertools idempotency (DynamoDB), built lazily."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    persistence = DynamoDBPersistenceLayer(table_name=settings().idempotency_table)

    @idempotent_function(data_keyword_argument="source", persistence_store=persistence, config=idempotency_config())
    def ingest(*, source: SourceObject, received_at: str) -> dict[str, Any]:
        current = settings()
        manifest = ingest_object(
            source,
            usecase=usecase(),
            store=object_store(),
            lake_bucket=current.lake_bucket,
            now=datetime.fromisoformat(received_at),
            workdir=current.workdir,
        )
        _record_metrics(manifest)  # here, so that a duplicate delivery counts no rows twice
        return manifest.model_dump(mode="json")

    return ingest


def source_object(record: S3EventRecord) -> SourceObject:
    """The object version an S3 event record names (keys arrive URL-encoded)."""
    s3_object = record.s3.get_object.raw_event  # optional fields are absent, not null, in S3's events
    return SourceObject(
        bucket=record.s3.bucket.name,
        key=unquote_plus(s3_object["key"]),
        version_id=s3_object.get("versionId") or None,
        etag=s3_object.get("eTag") or "",
        size=s3_object.get("size") or 0,
        sequencer=s3_object.get("sequencer"),
    )


def _received_at(record: S3EventRecord) -> str:
    """The upload's event time: the ingest date, the same on every delivery of the event."""
    try:
        return datetime.fromisoformat(record.event_time.replace("Z", "+00:00")).isoformat()
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC).isoformat()


def _record_metrics(manifest: Manifest) -> None:
    metrics.add_metric(name=ingest_metrics.ROWS_IN, unit=MetricUnit.Count, value=manifest.rows_in)
    metrics.add_metric(name=ingest_metrics.ROWS_CURATED, unit=MetricUnit.Count, value=manifest.rows_curated)
    metrics.add_metric(name=ingest_metrics.ROWS_QUARANTINED, unit=MetricUnit.Count, value=manifest.rows_quarantined)
    rejected = 1 if manifest.status is IngestStatus.REJECTED else 0
    metrics.add_metric(name=ingest_metrics.OBJECTS_REJECTED, unit=MetricUnit.Count, value=rejected)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config().register_lambda_context(context)
    metrics.add_dimension(name=ingest_metrics.DIMENSION_USECASE, value=usecase().name)
    results = []
    for record in S3Event(event).records:
        source = source_object(record)
        if source.key.startswith(BATCH_UPLOAD_PREFIX):  # a batch job's input (started through EventBridge)
            logger.info("not ingested: under the batch prefix", extra={"key": source.key})
            continue
        logger.info("ingesting", extra={"source": source.model_dump(), "object_id": source.object_id})
        manifest = Manifest.model_validate(idempotent_ingest()(source=source, received_at=_received_at(record)))
        logger.info(
            "ingested",
            extra={"status": manifest.status.value, "rows_in": manifest.rows_in, "reason": manifest.reason},
        )
        results.append(
            {
                "object_id": manifest.object_id,
                "source_key": manifest.source_key,
                "status": manifest.status.value,
                "reason": manifest.reason,
                "rows_in": manifest.rows_in,
                "rows_curated": manifest.rows_curated,
                "rows_quarantined": manifest.rows_quarantined,
            }
        )
    return {"results": results}
