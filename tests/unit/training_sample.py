"""A small Telco training set, built through ingest and build_training_set, in a SageMaker-like channel."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from shared.ingest.service import SourceObject, ingest_object
from shared.lake import layout as lake
from shared.training.training_set import TrainingSetReport, build_training_set
from shared.usecase.settings import UseCase
from tests.fakes import InMemoryObjectStore
from tests.unit.conftest import LAKE_BUCKET, RAW_BUCKET, telco_csv_text

INGESTED_AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
CUTOFF = datetime(2024, 6, 1, tzinfo=UTC)


def telco_channel(usecase: UseCase, directory: Path, *, run_id: str = "run-telco") -> tuple[Path, TrainingSetReport]:
    """Ingest the Telco sample, build its training set, and lay it out as the ``train`` channel."""
    store = InMemoryObjectStore()
    body = telco_csv_text().encode()
    store.put(RAW_BUCKET, "telco/wa_churn.csv", body, version_id="v1")
    source = SourceObject(bucket=RAW_BUCKET, key="telco/wa_churn.csv", version_id="v1", etag="e1", size=len(body))
    ingest_object(source, usecase=usecase, store=store, lake_bucket=LAKE_BUCKET, now=INGESTED_AT, workdir=directory)
    report = build_training_set(usecase=usecase, store=store, lake_bucket=LAKE_BUCKET, cutoff=CUTOFF, run_id=run_id)
    channel = directory / "train"
    channel.mkdir(parents=True, exist_ok=True)
    for key in (report.train_key, report.holdout_key, lake.training_set_report_key(usecase.name, run_id)):
        (channel / Path(key).name).write_bytes(store.body(LAKE_BUCKET, key))
    return channel, report


def usecase_file(directory: Path, source: Path) -> Path:
    target = directory / "usecase.toml"
    shutil.copyfile(source, target)
    return target
