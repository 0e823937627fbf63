"""The payloads of a batch job: its request, plan, chunks, chunk results and manifest (JSON-friendly models)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.deployment.state import ModelRef


class ObjectEntry(BaseModel):
    """One object of a manifest request; ``size`` and ``etag`` are looked up in the listing when absent."""

    model_config = ConfigDict(frozen=True)

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    size: int | None = Field(default=None, ge=0)
    etag: str | None = None


class JobRequest(BaseModel):
    """What to score: every object under an S3 prefix, or the objects of a manifest; with which model."""

    model_config = ConfigDict(frozen=True)

    usecase: str = Field(min_length=1)
    source_uri: str | None = None
    """``s3://bucket/prefix``: every object under the prefix (paginated listing, any number of keys)."""
    objects: tuple[ObjectEntry, ...] = ()
    """A manifest of objects, instead of a prefix."""
    model_version: int | None = Field(default=None, ge=1)
    """A registered version; ``None``: the champion at planning time."""
    job_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,127}$")
    """A caller-chosen job id; ``None``: derived from the request and the objects' content."""

    @model_validator(mode="after")
    def _one_source(self) -> JobRequest:
        if (self.source_uri is None) == (not self.objects):
            raise ValueError("a job names exactly one source: source_uri (a prefix) or objects (a manifest)")
        return self


class ListedObject(BaseModel):
    """One object to score, as listed: where, how big, which content."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int = Field(ge=0)
    etag: str


class ChunkKind(StrEnum):
    BYTES = "bytes"
    """Lines starting in bytes ``[start, end)`` of a CSV or JSON Lines object."""
    ROW_GROUPS = "row_groups"
    """Row groups ``[start, end)`` of a Parquet object."""
    WHOLE = "whole"
    """The whole object, streamed (gzip; or a Parquet file whose footer cannot be read: it fails with why)."""


class Chunk(BaseModel):
    """One unit of work: a part of one object, scored by one worker invocation (one item of the map)."""

    model_config = ConfigDict(frozen=True)

    chunk_key: str
    job_id: str
    usecase: str
    bucket: str
    key: str
    etag: str
    size: int
    data_format: str
    compression: str
    kind: ChunkKind
    start: int
    end: int
    index: int
    """The chunk's position among its object's chunks (0-based)."""
    first_row: int = 1
    """Parquet: the object's row number of the chunk's first row (1-based)."""


class PlannedObject(BaseModel):
    """One object of the job and what became of it at planning."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int
    etag: str
    chunks: int
    skipped: str | None = None
    """Why no chunk was planned (an empty object, an unsupported format)."""


class JobContext(BaseModel):
    """What every chunk of a job shares (the map's ``ItemSelector`` hands it to each worker with its chunk)."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    usecase: str
    model: ModelRef
    variant: str
    created_at: datetime


class JobPlan(BaseModel):
    """A job, planned: the model every chunk uses (pinned once) and the chunks (the map's items)."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    usecase: str
    model: ModelRef
    variant: str
    """The prediction log's variant: ``champion`` when the model is the champion, else ``batch``."""
    created_at: datetime
    """The job's time: its prediction-log lines are filed under this hour (a re-run overwrites them)."""
    chunks: tuple[Chunk, ...]
    objects: tuple[PlannedObject, ...]
    max_concurrency: int
    tolerated_failure_percentage: float
    retry_attempts: int

    @property
    def context(self) -> JobContext:
        return JobContext(
            job_id=self.job_id, usecase=self.usecase, model=self.model, variant=self.variant, created_at=self.created_at
        )


class ChunkResult(BaseModel):
    """What one chunk did. ``rows_in == rows_scored + rows_rejected`` always."""

    model_config = ConfigDict(frozen=True)

    chunk_key: str
    key: str
    index: int
    rows_in: int
    rows_scored: int
    rows_rejected: int
    lines: int
    """Physical lines (text) or rows (Parquet) the chunk owns: the manifest derives each chunk's first line."""
    seconds: float
    model_version: int
    output_key: str
    rejected_key: str | None = None
    prediction_log_key: str | None = None

    @model_validator(mode="after")
    def _reconciles(self) -> ChunkResult:
        if self.rows_in != self.rows_scored + self.rows_rejected:
            raise ValueError(f"rows in {self.rows_in} != scored {self.rows_scored} + rejected {self.rows_rejected}")
        return self


class ChunkFailure(BaseModel):
    """A chunk that failed after its retries: which, and why."""

    model_config = ConfigDict(frozen=True)

    chunk_key: str
    key: str
    index: int
    error: str
    """The error's type (``ChunkFailedError``, ``StorageError``, ...)."""
    reason: str


class JobStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """More chunks failed than the tolerance allows (or none could be scored)."""


class ChunkLines(BaseModel):
    """Where a chunk's lines start in its object: a rejected row's line is ``first_line + chunk_line - 1``."""

    model_config = ConfigDict(frozen=True)

    chunk_key: str
    key: str
    first_line: int | None
    """None when an earlier chunk of the object failed (its line count is unknown)."""


class JobManifest(BaseModel):
    """A finished job: counts that reconcile, the failed chunks and why, and whether the failures are tolerated."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    usecase: str
    model_version: int
    status: JobStatus
    reason: str
    rows_in: int
    rows_scored: int
    rows_rejected: int
    chunks_total: int
    chunks_succeeded: int
    chunks_failed: int
    failure_percentage: float
    tolerated_failure_percentage: float
    failed: tuple[ChunkFailure, ...]
    objects_skipped: tuple[PlannedObject, ...]
    output_keys: tuple[str, ...]
    rejected_keys: tuple[str, ...]
    chunk_lines: tuple[ChunkLines, ...]
    seconds: float
    """Worker seconds, summed over chunks."""
    finished_at: datetime
