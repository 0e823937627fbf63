"""Where everything lives in the lake bucket: the one place that knows the key layout.

Ingest writes these keys; training and monitoring read them. Every key is a pure function of its
inputs, so a re-run of the same object version overwrites its outputs instead of duplicating them::

    curated/{usecase}/ingest_date=YYYY-MM-DD[/event_date=YYYY-MM-DD]/{object_id}.parquet
    quarantine/{usecase}/ingest_date=YYYY-MM-DD/{object_id}.jsonl        rows that failed the contract
    quarantine/{usecase}/rejected/{object_id}/report.json                 an object rejected whole ...
    quarantine/{usecase}/rejected/{object_id}/source{ext}                 ... and a copy of it
    manifests/{usecase}/{object_id}.json                                   one per source object (key + content)
"""

from __future__ import annotations

import hashlib
from datetime import date

CURATED = "curated"
QUARANTINE = "quarantine"
MANIFESTS = "manifests"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""The partition value of rows whose (nullable) event time is null; pyarrow's hive default."""

OBJECT_ID_LENGTH = 20


def object_id(bucket: str, key: str, content: str) -> str:
    """A short, stable id of one object's content (``content``: its ETag; the version id if there is none)."""
    digest = hashlib.sha256(f"{bucket}/{key}/{content}".encode()).hexdigest()
    return digest[:OBJECT_ID_LENGTH]


def curated_prefix(usecase: str) -> str:
    return f"{CURATED}/{usecase}/"


def curated_key(usecase: str, *, ingest_date: date, object_id: str, event_date: date | str | None = None) -> str:
    """The curated Parquet file of one object (and one event date, when the contract has an event time)."""
    partition = f"ingest_date={ingest_date.isoformat()}"
    if event_date is not None:
        value = event_date if isinstance(event_date, str) else event_date.isoformat()
        partition += f"/event_date={value}"
    return f"{curated_prefix(usecase)}{partition}/{object_id}.parquet"


def quarantine_rows_key(usecase: str, *, ingest_date: date, object_id: str) -> str:
    """The JSON Lines file of one object's rows that failed the contract."""
    return f"{QUARANTINE}/{usecase}/ingest_date={ingest_date.isoformat()}/{object_id}.jsonl"


def rejected_prefix(usecase: str, object_id: str) -> str:
    return f"{QUARANTINE}/{usecase}/rejected/{object_id}/"


def rejected_report_key(usecase: str, object_id: str) -> str:
    return f"{rejected_prefix(usecase, object_id)}report.json"


def rejected_source_key(usecase: str, object_id: str, extension: str) -> str:
    """Where the copy of a rejected object goes; ``extension`` keeps its file type (e.g. ``.csv.gz``)."""
    return f"{rejected_prefix(usecase, object_id)}source{extension}"


def manifest_prefix(usecase: str) -> str:
    return f"{MANIFESTS}/{usecase}/"


def manifest_key(usecase: str, object_id: str) -> str:
    return f"{manifest_prefix(usecase)}{object_id}.json"
