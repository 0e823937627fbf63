"""Where everything lives in the lake bucket: the one place that knows the key layout.

Ingest writes these keys; training and monitoring read them. Every key is a pure function of its
inputs, so a re-run of the same object version overwrites its outputs instead of duplicating them::

    curated/{usecase}/ingest_date=YYYY-MM-DD[/event_date=YYYY-MM-DD]/{object_id}.parquet
    quarantine/{usecase}/ingest_date=YYYY-MM-DD/{object_id}.jsonl        rows that failed the contract
    quarantine/{usecase}/rejected/{object_id}/report.json                 an object rejected whole ...
    quarantine/{usecase}/rejected/{object_id}/source{ext}                 ... and a copy of it
    manifests/{usecase}/{object_id}.json                                   one per source object (key + content)
    training-sets/{usecase}/{run_id}/train.parquet                         a point-in-time training set ...
    training-sets/{usecase}/{run_id}/holdout.parquet                       ... its holdout split ...
    training-sets/{usecase}/{run_id}/trainset.json                         ... and its report (lineage)
    predictions/{usecase}/date=YYYY-MM-DD/hour=HH/{object_id}.jsonl        the prediction log (served + shadow)
    feedback/{usecase}/date=YYYY-MM-DD/{sha256(usecase|subject|label)}.json  one observed label
    promotions/{usecase}/{execution}/timeline.html (.json)                a promotion's timeline and its series
    monitoring/{usecase}/joined/date=YYYY-MM-DD/part.jsonl                 labels of one feedback day joined to their
                                                                           predictions (rewritten whole by each run)
    monitoring/{usecase}/joined/date=YYYY-MM-DD/outcome.json               ... and that day's counts (joined, late, ...)
    monitoring/{usecase}/reports/{run_id}/report.json (.html)              one monitor run's report
    monitoring/{usecase}/reports/latest.json                               the last run's report (a pointer)
    batch-predictions/{usecase}/{job}/part-{chunk_key}.parquet             one chunk's scores (entity id, score,
                                                                           decision, model version)
    batch-predictions/{usecase}/{job}/rejected/part-{chunk_key}.jsonl      ... its rows that failed the contract
    batch-predictions/{usecase}/{job}/plan.json                            the job's chunks (the map's items)
    batch-predictions/{usecase}/{job}/manifest.json                        the job's manifest (in = scored + rejected)
    predictions/{usecase}/date=YYYY-MM-DD/hour=HH/batch-{chunk_key}.jsonl  a batch chunk's predictions in the log
    predictions/{usecase}/date=YYYY-MM-DD/hour=HH/refusals-{object_id}.jsonl  refused records by (field, reason
                                                                           kind) per request: lines of kind
                                                                           "refusal", beside the predictions
    curated/{usecase}/contract={version}/ingest_date=YYYY-MM-DD[/event_date=…]/{object_id}.parquet
                                                                           a backfill: the object re-ingested under
                                                                           contract {version} (original ingest date)
    quarantine/{usecase}/contract={version}/ingest_date=YYYY-MM-DD/{object_id}.jsonl   ... its quarantined rows
    quarantine/{usecase}/contract={version}/rejected/{object_id}/report.json (source{ext})  ... or the object
    manifests/{usecase}/contract={version}/{object_id}.json                ... and its manifest (the per-object
                                                                           backfill record, written last)
    curated/{usecase}/CURRENT.json                                         which curated set training reads (a
                                                                           pointer; absent: the live layout above)

A backfill's keys are the live ones with ``contract={version}/`` after the use case (``versioned=``
below), so the live set is never written, the versioned set is one prefix per area (the backfill function's role
writes only those), and the live manifests' listing skips the nested ``contract=`` folders.

Batch keys hold the chunk key (a sha256 of job, object, ETag and byte/row range): re-running or redriving a
job overwrites its own objects.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Final

CURATED = "curated"
QUARANTINE = "quarantine"
MANIFESTS = "manifests"
TRAINING_SETS = "training-sets"
SAGEMAKER = "sagemaker"
MODELS = "models"
CAPTURE = "capture"
MODEL_FILES = ("model.onnx", "metrics.json", "lineage.json")
"""The files every trained model's ``model.tar.gz`` holds."""
OPTIONAL_MODEL_FILES = ("baseline.json",)
"""Files a model's archive may hold (``baseline.json``: :data:`shared.monitoring.baseline.BASELINE_FILE`; jobs
from before baselines have none)."""
TRAIN_FILE = "train.parquet"
HOLDOUT_FILE = "holdout.parquet"
TRAINSET_REPORT_FILE = "trainset.json"
INGEST_AREAS = (CURATED, QUARANTINE, MANIFESTS)
"""The areas ingest writes (the stack grants its function these prefixes, across use cases)."""
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""The partition value of rows whose (nullable) event time is null; pyarrow's hive default."""

OBJECT_ID_LENGTH = 20


def object_id(bucket: str, key: str, content: str) -> str:
    """A short, stable id of one object's content (``content``: its ETag; the version id if there is none)."""
    digest = hashlib.sha256(f"{bucket}/{key}/{content}".encode()).hexdigest()
    return digest[:OBJECT_ID_LENGTH]


def area_prefix(area: str) -> str:
    """One area of the lake across use cases (``curated/``): ``area`` is one of the names above."""
    return f"{area}/"


CONTRACT_PARTITION = "contract="
"""The folder that holds a backfill's outputs under a use case's curated, quarantine and manifests areas."""
CURATED_POINTER_FILE = "CURRENT.json"


def contract_folder(version: str | None) -> str:
    """``contract={version}/`` (a backfill's folder under a use case), or nothing for the live layout."""
    return f"{CONTRACT_PARTITION}{version}/" if version else ""


def curated_prefix(usecase: str, versioned: str | None = None) -> str:
    """The live curated set of a use case, or (``versioned``: a contract version) the backfilled one."""
    return f"{CURATED}/{usecase}/{contract_folder(versioned)}"


def curated_pointer_key(usecase: str) -> str:
    """The pointer naming the curated set training reads (:mod:`shared.lake.pointer`)."""
    return f"{curated_prefix(usecase)}{CURATED_POINTER_FILE}"


def curated_key(
    usecase: str,
    *,
    ingest_date: date,
    object_id: str,
    event_date: date | str | None = None,
    versioned: str | None = None,
) -> str:
    """The curated Parquet file of one object (and one event date, when the contract has an event time)."""
    partition = f"ingest_date={ingest_date.isoformat()}"
    if event_date is not None:
        value = event_date if isinstance(event_date, str) else event_date.isoformat()
        partition += f"/event_date={value}"
    return f"{curated_prefix(usecase, versioned)}{partition}/{object_id}.parquet"


def quarantine_prefix(usecase: str, versioned: str | None = None) -> str:
    return f"{QUARANTINE}/{usecase}/{contract_folder(versioned)}"


def quarantine_rows_key(usecase: str, *, ingest_date: date, object_id: str, versioned: str | None = None) -> str:
    """The JSON Lines file of one object's rows that failed the contract."""
    return f"{quarantine_prefix(usecase, versioned)}ingest_date={ingest_date.isoformat()}/{object_id}.jsonl"


def rejected_prefix(usecase: str, object_id: str, versioned: str | None = None) -> str:
    return f"{quarantine_prefix(usecase, versioned)}rejected/{object_id}/"


def rejected_report_key(usecase: str, object_id: str, versioned: str | None = None) -> str:
    return f"{rejected_prefix(usecase, object_id, versioned)}report.json"


def rejected_source_key(usecase: str, object_id: str, extension: str, versioned: str | None = None) -> str:
    """Where the copy of a rejected object goes; ``extension`` keeps its file type (e.g. ``.csv.gz``)."""
    return f"{rejected_prefix(usecase, object_id, versioned)}source{extension}"


def manifest_prefix(usecase: str, versioned: str | None = None) -> str:
    """The live manifests of a use case (list them with :func:`is_live_manifest_key`), or a backfill's."""
    return f"{MANIFESTS}/{usecase}/{contract_folder(versioned)}"


def manifest_key(usecase: str, object_id: str, versioned: str | None = None) -> str:
    return f"{manifest_prefix(usecase, versioned)}{object_id}.json"


def is_live_manifest_key(usecase: str, key: str) -> bool:
    """A live ingest manifest (``manifests/{usecase}/{object_id}.json``), not one in a backfill's folder."""
    rest = key.removeprefix(manifest_prefix(usecase))
    return rest != key and "/" not in rest and rest.endswith(".json")


def training_set_train_key(usecase: str, run_id: str) -> str:
    return f"{training_set_prefix(usecase, run_id)}{TRAIN_FILE}"


def training_set_holdout_key(usecase: str, run_id: str) -> str:
    return f"{training_set_prefix(usecase, run_id)}{HOLDOUT_FILE}"


def training_set_report_key(usecase: str, run_id: str) -> str:
    return f"{training_set_prefix(usecase, run_id)}{TRAINSET_REPORT_FILE}"


def training_set_prefix(usecase: str, run_id: str | None = None) -> str:
    """All training sets of a use case, or the one of ``run_id``."""
    base = f"{TRAINING_SETS}/{usecase}/"
    return f"{base}{run_id}/" if run_id else base


def sagemaker_prefix(usecase: str) -> str:
    """What SageMaker writes for the use case: job outputs and spot checkpoints."""
    return f"{SAGEMAKER}/{usecase}/"


def training_output_prefix(usecase: str) -> str:
    """A training job's ``OutputDataConfig.S3OutputPath`` (SageMaker appends ``{job}/output/model.tar.gz``)."""
    return f"{sagemaker_prefix(usecase)}jobs/"


def checkpoint_prefix(usecase: str, job_name: str | None = None) -> str:
    base = f"{sagemaker_prefix(usecase)}checkpoints/"
    return f"{base}{job_name}/" if job_name else base


def model_prefix(usecase: str, run_id: str | None = None) -> str:
    base = f"{MODELS}/{usecase}/"
    return f"{base}{run_id}/" if run_id else base


def model_file_key(usecase: str, run_id: str, name: str) -> str:
    """One file of a trained model, unpacked from its ``model.tar.gz`` (``model.onnx``, ``metrics.json``, ...)."""
    if name not in MODEL_FILES + OPTIONAL_MODEL_FILES:
        raise ValueError(f"{name!r} is not one of the model files {MODEL_FILES + OPTIONAL_MODEL_FILES}")
    return f"{model_prefix(usecase, run_id)}{name}"


def capture_prefix(usecase: str) -> str:
    return f"{CAPTURE}/{usecase}/"


PREDICTIONS = "predictions"
FEEDBACK = "feedback"


def prediction_log_prefix(usecase: str) -> str:
    return f"{PREDICTIONS}/{usecase}/"


def prediction_log_hour_prefix(usecase: str, at: datetime) -> str:
    """The prediction log's objects of one UTC hour (the hour ``at`` falls in; naive means UTC)."""
    at = at.astimezone(UTC) if at.tzinfo else at
    return f"{prediction_log_prefix(usecase)}date={at.date().isoformat()}/hour={at.hour:02d}/"


def prediction_log_key(usecase: str, *, at: datetime, object_id: str) -> str:
    """One JSON Lines object of the prediction log, partitioned by the predictions' UTC date and hour."""
    return f"{prediction_log_hour_prefix(usecase, at)}{object_id}.jsonl"


REFUSAL_LOG_PREFIX = "refusals-"
"""The name prefix of a prediction-log object holding refusal lines (never predictions)."""
LOG_LINE_KIND = "kind"
REFUSAL_KIND: Final = "refusal"
"""A prediction-log line's (or message's) ``kind`` when it counts a request's refused records for one
(field, reason kind) instead of holding a prediction; a line without ``kind`` is a prediction (every earlier
version wrote them so), a line of any other kind is unreadable to this version."""


def refusal_log_key(usecase: str, *, at: datetime, object_id: str) -> str:
    """One JSON Lines object of refusals, in the prediction log's partition of the UTC hour ``at`` falls in."""
    return f"{prediction_log_hour_prefix(usecase, at)}{REFUSAL_LOG_PREFIX}{object_id}.jsonl"


def feedback_prefix(usecase: str) -> str:
    return f"{FEEDBACK}/{usecase}/"


def feedback_id(usecase: str, subject: str, label: str | int | bool) -> str:
    """The identity of one feedback item: the same use case, subject (request or entity id) and label → one key."""
    return hashlib.sha256(f"{usecase}|{subject}|{label}".encode()).hexdigest()


def feedback_day_prefix(usecase: str, day: date) -> str:
    """The feedback labels of one day (``observed_at``'s UTC date, else the day they were received)."""
    return f"{feedback_prefix(usecase)}date={day.isoformat()}/"


def feedback_key(usecase: str, *, day: date, subject: str, label: str | int | bool) -> str:
    """Where one feedback label lands; a repeated submission overwrites the same object (idempotent)."""
    return f"{feedback_day_prefix(usecase, day)}{feedback_id(usecase, subject, label)}.json"


PROMOTIONS = "promotions"


def promotion_prefix(usecase: str, execution: str | None = None) -> str:
    """All promotion reports of a use case, or those of one promotion (its Step Functions execution name)."""
    base = f"{PROMOTIONS}/{usecase}/"
    return f"{base}{execution}/" if execution else base


def timeline_html_key(usecase: str, execution: str) -> str:
    return f"{promotion_prefix(usecase, execution)}timeline.html"


def timeline_json_key(usecase: str, execution: str) -> str:
    """The timeline's series (traffic shares, metrics, stage boundaries) as JSON."""
    return f"{promotion_prefix(usecase, execution)}timeline.json"


MONITORING = "monitoring"
JOINED_FILE = "part.jsonl"
JOIN_OUTCOME_FILE = "outcome.json"
REPORT_JSON_FILE = "report.json"
REPORT_HTML_FILE = "report.html"
LATEST_REPORT_FILE = "latest.json"


def monitoring_prefix(usecase: str) -> str:
    """Everything the monitor writes for a use case (its role writes only here)."""
    return f"{MONITORING}/{usecase}/"


def joined_prefix(usecase: str, day: date | None = None) -> str:
    """The joined labels of a use case, or those of one feedback day."""
    base = f"{monitoring_prefix(usecase)}joined/"
    return f"{base}date={day.isoformat()}/" if day is not None else base


def joined_key(usecase: str, day: date) -> str:
    """The labels of one feedback day joined to their predictions, JSON Lines; each run rewrites it whole, so
    running the monitor twice (or over overlapping windows) never duplicates a join."""
    return f"{joined_prefix(usecase, day)}{JOINED_FILE}"


def join_outcome_key(usecase: str, day: date) -> str:
    """The counts of one feedback day's join (joined, late, no prediction, repeated, ...), JSON."""
    return f"{joined_prefix(usecase, day)}{JOIN_OUTCOME_FILE}"


def report_prefix(usecase: str, run_id: str | None = None) -> str:
    """All monitoring reports of a use case, or those of one run."""
    base = f"{monitoring_prefix(usecase)}reports/"
    return f"{base}{run_id}/" if run_id else base


def report_json_key(usecase: str, run_id: str) -> str:
    return f"{report_prefix(usecase, run_id)}{REPORT_JSON_FILE}"


def report_html_key(usecase: str, run_id: str) -> str:
    return f"{report_prefix(usecase, run_id)}{REPORT_HTML_FILE}"


def latest_report_key(usecase: str) -> str:
    """A small JSON pointer to the last run's report (run id, keys, violations), rewritten by every run."""
    return f"{report_prefix(usecase)}{LATEST_REPORT_FILE}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; ``ValueError`` for anything else."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


BATCH_PREDICTIONS = "batch-predictions"
BATCH_MANIFEST_FILE = "manifest.json"
BATCH_PLAN_FILE = "plan.json"
BATCH_PREDICTION_LOG_PREFIX = "batch-"
"""Prefix of a batch chunk's object name in the prediction log (the API's objects are bare hashes)."""


def batch_prefix(usecase: str, job_id: str | None = None) -> str:
    """Every batch job of a use case, or the outputs of one job."""
    base = f"{BATCH_PREDICTIONS}/{usecase}/"
    return f"{base}{job_id}/" if job_id else base


def batch_output_key(usecase: str, job_id: str, chunk_key: str) -> str:
    """One chunk's scores, Parquet."""
    return f"{batch_prefix(usecase, job_id)}part-{chunk_key}.parquet"


def batch_rejected_key(usecase: str, job_id: str, chunk_key: str) -> str:
    """One chunk's rows that failed the contract, JSON Lines (as quarantine writes them)."""
    return f"{batch_prefix(usecase, job_id)}rejected/part-{chunk_key}.jsonl"


def batch_plan_key(usecase: str, job_id: str) -> str:
    """The job's plan: its model and chunks; a re-run of the same job reuses it (same chunk keys, same log hour)."""
    return f"{batch_prefix(usecase, job_id)}{BATCH_PLAN_FILE}"


def batch_manifest_key(usecase: str, job_id: str) -> str:
    return f"{batch_prefix(usecase, job_id)}{BATCH_MANIFEST_FILE}"


def batch_prediction_log_key(usecase: str, *, at: datetime, chunk_key: str) -> str:
    """A batch chunk's predictions in the prediction log (same hour partitions as the API's; a re-run overwrites)."""
    return prediction_log_key(usecase, at=at, object_id=f"{BATCH_PREDICTION_LOG_PREFIX}{chunk_key}")


BATCH_CHUNKS_FILE = "chunks.json"
BATCH_RESULTS_DIR = "results/"
BATCH_FAILURES_DIR = "failures/"
BATCH_UPLOAD_PREFIX = "batch/"
"""Raw bucket: an object uploaded under this prefix starts a batch job (and is never ingested)."""


def batch_chunks_key(usecase: str, job_id: str) -> str:
    """The job's chunks as one JSON array: the Distributed Map's ``ItemReader`` reads its items there."""
    return f"{batch_prefix(usecase, job_id)}{BATCH_CHUNKS_FILE}"


def batch_result_key(usecase: str, job_id: str, chunk_key: str) -> str:
    """One succeeded chunk's result (counts and output keys), JSON; the finish step folds them."""
    return f"{batch_prefix(usecase, job_id)}{BATCH_RESULTS_DIR}{chunk_key}.json"


def batch_failure_key(usecase: str, job_id: str, chunk_key: str) -> str:
    """One failed chunk's error and cause, JSON (written by the map's ``Catch``)."""
    return f"{batch_prefix(usecase, job_id)}{BATCH_FAILURES_DIR}{chunk_key}.json"


BACKFILL_RUNS = "backfill-runs"
BACKFILL_ITEMS_FILE = "items.json"
BACKFILL_FAILURES_DIR = "failures/"


def backfill_run_prefix(usecase: str, contract_version: str | None = None, run: str | None = None) -> str:
    """Every backfill run of a use case, the runs under one contract version, or one run's working files."""
    base = f"{BACKFILL_RUNS}/{usecase}/"
    if contract_version is None:
        return base
    under = f"{base}{CONTRACT_PARTITION}{contract_version}/"
    return f"{under}{run}/" if run else under


def backfill_items_key(usecase: str, contract_version: str, run: str) -> str:
    """The objects one run backfills: a JSON array, the Distributed Map's items (written by its plan step)."""
    return f"{backfill_run_prefix(usecase, contract_version, run)}{BACKFILL_ITEMS_FILE}"


def backfill_failure_key(usecase: str, contract_version: str, run: str, object_id: str) -> str:
    """One object a run could not backfill: its error and cause, JSON (written by the map's ``Catch``)."""
    return f"{backfill_run_prefix(usecase, contract_version, run)}{BACKFILL_FAILURES_DIR}{object_id}.json"
