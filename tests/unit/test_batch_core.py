"""Batch prediction's core: planning, chunk scoring, the manifest, and each bad input's documented outcome."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.batch.adapters import list_job_objects, row_groups_reader
from shared.batch.exceptions import ChunkFailedError, UnknownModelVersionError
from shared.batch.manifest import chunk_failure, fold_manifest, write_manifest
from shared.batch.planning import plan_job, resolve_model
from shared.batch.reading import owned_lines
from shared.batch.types import ChunkResult, JobPlan, JobRequest, JobStatus, ObjectEntry
from shared.batch.worker import BatchModels, score_chunk
from shared.deployment.state import DeploymentState, ModelRef
from shared.lake import layout as lake
from shared.scoring.prediction_log_lake import BATCH_SOURCE, logged_records
from shared.usecase.settings import BatchSettings, UseCase
from tests.fakes import InMemoryObjectStore
from tests.scoring_model import TrainedModel, trained_model

RAW = "raw-bucket"
LAKE = "lake-bucket"
NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
ROWS = 300


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return trained_model()


def _usecase(trained: TrainedModel, **batch: Any) -> UseCase:
    return trained.usecase.model_copy(update={"batch": BatchSettings(**batch)})


def _store(trained: TrainedModel) -> InMemoryObjectStore:
    store = InMemoryObjectStore()
    store.put(LAKE, trained.ref().onnx_key, trained.onnx)
    return store


def _csv(trained: TrainedModel, records: list[dict[str, Any]]) -> bytes:
    names = list(trained.usecase.contract.names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        writer.writerow(["" if record.get(n) is None else record.get(n) for n in names])
    return buffer.getvalue().encode()


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _run(
    trained: TrainedModel,
    store: InMemoryObjectStore,
    usecase: UseCase,
    tmp_path: Path,
    *,
    source: str = f"s3://{RAW}/batch/",
    version: int | None = None,
    ref: ModelRef | None = None,
) -> tuple[JobPlan, list[ChunkResult], list[Any]]:
    request = JobRequest(usecase=usecase.name, source_uri=source, model_version=version)
    state = DeploymentState(usecase=usecase.name, champion=ref or trained.ref())

    def versions(number: int) -> ModelRef:
        raise UnknownModelVersionError(f"version {number} is not registered")

    model, variant = resolve_model(request, state=state, versions=versions)
    objects = list_job_objects(store, request)
    plan = plan_job(
        request,
        objects,
        model=model,
        variant=variant,
        settings=usecase.batch,
        row_groups_of=row_groups_reader(store),
        now=NOW,
    )
    models = BatchModels(store=store, bucket=LAKE, feature_names=frozenset(c.name for c in usecase.contract.features))
    results, failures = [], []
    for chunk in plan.chunks:
        try:
            results.append(
                score_chunk(
                    chunk, plan.context, usecase=usecase, store=store, lake_bucket=LAKE, models=models, workdir=tmp_path
                )
            )
        except ChunkFailedError as exc:
            failures.append(chunk_failure(chunk, exc))
    return plan, results, failures


def _scored_ids(store: InMemoryObjectStore, plan: JobPlan) -> list[Any]:
    ids: list[Any] = []
    for key in store.keys(LAKE, lake.batch_prefix(plan.usecase, plan.job_id)):
        if key.endswith(".parquet"):
            ids += pq.read_table(io.BytesIO(store.body(LAKE, key)))["entity_id"].to_pylist()
    return ids


def test_mixed_good_and_bad_rows_are_scored_or_rejected_with_their_line(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a CSV with two planted bad rows (an out-of-range value, a missing entity id) among good ones
    records = [dict(r) for r in trained.records[:ROWS]]
    records[10]["female"] = 7
    records[20]["rownames"] = None
    store = _store(trained)
    store.put(RAW, "batch/customers.csv", _csv(trained, records))
    usecase = _usecase(trained)
    # When the job runs
    plan, results, failures = _run(trained, store, usecase, tmp_path)
    manifest = fold_manifest(plan, results, failures, now=NOW)
    # Then every good row is scored, the bad ones are rejected with their line and reasons, and the counts reconcile
    assert not failures
    assert (manifest.rows_in, manifest.rows_scored, manifest.rows_rejected) == (ROWS, ROWS - 2, 2)
    assert manifest.status is JobStatus.SUCCEEDED
    rejected_key = lake.batch_rejected_key(usecase.name, plan.job_id, plan.chunks[0].chunk_key)
    rejected = [json.loads(line) for line in store.body(LAKE, rejected_key).splitlines()]
    assert [r["line"] for r in rejected] == [12, 22]  # header is line 1
    assert rejected[0]["errors"][0]["field"] == "female"
    assert rejected[1]["errors"][0]["field"] == "rownames"
    scores = pq.read_table(io.BytesIO(store.body(LAKE, results[0].output_key)))
    assert scores.column_names == ["entity_id", "score", "decision", "model_version"]
    assert set(scores["decision"].to_pylist()) <= {"Yes", "No"}
    assert set(scores["model_version"].to_pylist()) == {1}


def test_scores_match_the_model_on_the_same_rows(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a JSON Lines object
    records = trained.records[:50]
    store = _store(trained)
    store.put(RAW, "batch/customers.jsonl", _jsonl(records))
    # When it is scored
    _, results, _ = _run(trained, store, _usecase(trained), tmp_path)
    # Then the scores are the pipeline's, row for row
    import pandas as pd

    from training.model import feature_frame

    expected = trained.pipeline.predict_proba(feature_frame(pd.DataFrame(records), trained.usecase.contract))[:, 1]
    scores = pq.read_table(io.BytesIO(store.body(LAKE, results[0].output_key)))["score"].to_pylist()
    assert scores == pytest.approx(expected.tolist(), abs=1e-5)


def test_predictions_reach_the_log_marked_as_batch(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a scored chunk
    store = _store(trained)
    store.put(RAW, "batch/customers.csv", _csv(trained, trained.records[:20]))
    _plan, results, _ = _run(trained, store, _usecase(trained), tmp_path)
    # When its prediction-log object is read as monitoring reads it
    key = results[0].prediction_log_key
    assert key is not None
    assert key.startswith(lake.prediction_log_hour_prefix("telco_churn", NOW))
    records = logged_records(store.body(LAKE, key).decode())
    # Then every scored row is there, marked as batch, with its features
    assert len(records) == 20
    assert {r.source for r in records} == {BATCH_SOURCE}
    assert {r.variant for r in records} == {"champion"}
    assert set(records[0].features) == {c.name for c in trained.usecase.contract.features}


def test_an_older_prediction_log_line_parses_as_from_the_api(trained: TrainedModel) -> None:
    # Given a line written before the source field existed
    line = json.dumps(
        {
            "usecase": "telco_churn",
            "request_id": "r1",
            "score": 0.5,
            "threshold": 0.3,
            "model_version": 1,
            "variant": "champion",
            "served": True,
            "time": NOW.isoformat(),
        }
    )
    # Then it parses, from the API
    (record,) = logged_records(line)
    assert record.source == "api"


def test_an_empty_object_and_a_header_only_file_score_nothing_and_fail_nothing(
    trained: TrainedModel, tmp_path: Path
) -> None:
    # Given an empty object and a CSV with a header only
    store = _store(trained)
    store.put(RAW, "batch/empty.csv", b"")
    store.put(RAW, "batch/header.csv", _csv(trained, []))
    # When the job runs
    plan, results, failures = _run(trained, store, _usecase(trained), tmp_path)
    manifest = fold_manifest(plan, results, failures, now=NOW)
    # Then the empty object is skipped with its reason, the header-only one is a chunk of 0 rows; the job succeeds
    assert [o.key for o in manifest.objects_skipped] == ["batch/empty.csv"]
    assert "empty" in (manifest.objects_skipped[0].skipped or "")
    assert (manifest.rows_in, manifest.chunks_total, manifest.chunks_failed) == (0, 1, 0)
    assert manifest.status is JobStatus.SUCCEEDED


def test_a_truncated_gzip_fails_its_chunk_with_a_reason_and_counts(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a good gzip object and a truncated one, with no failure tolerated
    store = _store(trained)
    body = gzip.compress(_csv(trained, trained.records[:100]))
    store.put(RAW, "batch/good.csv.gz", body)
    store.put(RAW, "batch/truncated.csv.gz", body[: len(body) // 2])
    # When the job runs
    plan, results, failures = _run(trained, store, _usecase(trained), tmp_path)
    manifest = fold_manifest(plan, results, failures, now=NOW)
    # Then the good one is scored (one chunk: gzip is not splittable), the truncated one's chunk failed with why
    assert manifest.rows_scored == 100
    assert manifest.chunks_failed == 1
    assert manifest.failed[0].key == "batch/truncated.csv.gz"
    assert "truncated" in manifest.failed[0].reason
    assert manifest.status is JobStatus.FAILED
    # And with 50% tolerated the same failures let the job succeed
    tolerant = plan.model_copy(update={"tolerated_failure_percentage": 50.0})
    assert fold_manifest(tolerant, results, failures, now=NOW).status is JobStatus.SUCCEEDED


def test_a_large_object_is_chunked_and_every_row_is_scored_once(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a JSON Lines object cut into many small chunks
    records = trained.records[:2000]
    store = _store(trained)
    store.put(RAW, "batch/big.jsonl", _jsonl(records))
    usecase = _usecase(trained, chunk_bytes=8 * 1024)
    # When the job runs
    plan, _results, failures = _run(trained, store, usecase, tmp_path)
    # Then there are many chunks, none failed, and every entity was scored exactly once
    assert len(plan.chunks) > 10
    assert not failures
    ids = _scored_ids(store, plan)
    assert sorted(ids) == sorted(r["rownames"] for r in records)
    # And no chunk ever read the whole object
    assert (
        max(end - start for _, start, end in store.range_reads) <= 64 * 1024 < len(store.body(RAW, "batch/big.jsonl"))
    )


def test_a_large_csv_chunked_keeps_every_rejected_row_at_its_object_line(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a CSV cut into small chunks with bad rows planted far apart
    records = [dict(r) for r in trained.records[:1500]]
    for index in (5, 700, 1499):
        records[index]["senior_citizen"] = 9
    store = _store(trained)
    store.put(RAW, "batch/big.csv", _csv(trained, records))
    plan, results, failures = _run(trained, store, _usecase(trained, chunk_bytes=4096), tmp_path)
    manifest = fold_manifest(plan, results, failures, now=NOW)
    # Then the counts reconcile and each rejected row's object line is its chunk's first line + its chunk line - 1
    assert (manifest.rows_in, manifest.rows_rejected) == (1500, 3)
    first_lines = {c.chunk_key: c.first_line for c in manifest.chunk_lines}
    lines = []
    for result in results:
        if result.rejected_key:
            for doc in map(json.loads, store.body(LAKE, result.rejected_key).splitlines()):
                lines.append(first_lines[result.chunk_key] + doc["chunk_line"] - 1)
    assert sorted(lines) == [7, 702, 1501]


@pytest.mark.parametrize("seed", range(40))
def test_lines_across_chunk_borders_are_owned_exactly_once(seed: int) -> None:
    # Given random lines (some empty, some long) and a random chunk size
    rng = random.Random(seed)
    lines = [b"x" * rng.choice([0, 1, 2, 5, 40, 300]) + b"\n" for _ in range(rng.randint(0, 200))]
    body = b"".join(lines)
    if lines and rng.random() < 0.5:
        body = body[:-1]  # no newline at the end
    store = InMemoryObjectStore()
    store.put(RAW, "k", body)
    chunk = rng.randint(1, 64)
    # When every chunk takes the lines that start in it
    owned = [
        owned_lines(store, RAW, "k", start=start, end=start + chunk, size=len(body))
        for start in range(0, len(body), chunk)
    ]
    # Then together they hold the object's bytes exactly once, in order, each a set of whole lines
    assert b"".join(o.data for o in owned) == body
    assert sum(o.lines for o in owned) == len(body.splitlines())
    for o in owned:
        assert not o.data or o.offset == 0 or body[o.offset - 1 : o.offset] == b"\n"


def test_a_parquet_object_is_cut_into_row_groups_read_by_range(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a Parquet object of several row groups
    records = trained.records[:1000]
    names = list(trained.usecase.contract.names)
    table = pa.Table.from_pylist([{n: r.get(n) for n in names} for r in records])
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=100)
    store = _store(trained)
    store.put(RAW, "batch/customers.parquet", buffer.getvalue())
    # When the job runs with at most 300 rows a chunk
    plan, _results, failures = _run(trained, store, _usecase(trained, max_rows_per_chunk=300), tmp_path)
    # Then chunks are runs of row groups, and every row is scored once
    assert [(c.start, c.end, c.first_row) for c in plan.chunks] == [(0, 3, 1), (3, 6, 301), (6, 9, 601), (9, 10, 901)]
    assert not failures
    assert sorted(_scored_ids(store, plan)) == sorted(r["rownames"] for r in records)


def test_a_version_that_does_not_exist_is_refused_before_any_chunk(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a job naming a version the registry does not have
    store = _store(trained)
    store.put(RAW, "batch/customers.csv", _csv(trained, trained.records[:10]))
    # Then planning refuses it
    with pytest.raises(UnknownModelVersionError, match="version 9"):
        _run(trained, store, _usecase(trained), tmp_path, version=9)


def test_an_onnx_file_failing_its_hash_fails_every_chunk_with_the_reason(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a registry record whose sha256 is not the file's
    store = _store(trained)
    store.put(RAW, "batch/customers.csv", _csv(trained, trained.records[:10]))
    forged = trained.ref().model_copy(update={"onnx_sha256": "0" * 64})
    # When the job runs
    plan, results, failures = _run(trained, store, _usecase(trained), tmp_path, ref=forged)
    manifest = fold_manifest(plan, results, failures, now=NOW)
    # Then the chunk fails, saying the model was refused for its hash, and nothing is written
    assert not results
    assert "sha256" in manifest.failed[0].reason
    assert manifest.status is JobStatus.FAILED
    assert not store.keys(LAKE, lake.batch_prefix("telco_churn"))


def test_the_same_job_twice_writes_the_same_keys(trained: TrainedModel, tmp_path: Path) -> None:
    # Given a job that ran once
    store = _store(trained)
    store.put(RAW, "batch/big.jsonl", _jsonl(trained.records[:500]))
    usecase = _usecase(trained, chunk_bytes=16 * 1024)
    plan, results, failures = _run(trained, store, usecase, tmp_path)
    first_keys = set(store.keys(LAKE))
    write_manifest(store, LAKE, fold_manifest(plan, results, failures, now=NOW))
    # When the same request runs again
    again, _, _ = _run(trained, store, usecase, tmp_path)
    # Then it is the same job with the same chunk keys, and it wrote no new object (no duplicate rows)
    assert again.job_id == plan.job_id
    assert [c.chunk_key for c in again.chunks] == [c.chunk_key for c in plan.chunks]
    assert set(store.keys(LAKE)) == first_keys | {lake.batch_manifest_key(usecase.name, plan.job_id)}
    assert len(_scored_ids(store, plan)) == 500


def test_a_manifest_request_and_a_prefix_past_one_listing_page(trained: TrainedModel, tmp_path: Path) -> None:
    # Given 1,200 small objects under a prefix
    store = _store(trained)
    body = _csv(trained, trained.records[:1])
    for index in range(1200):
        store.put(RAW, f"batch/many/{index:05d}.csv", body)
    # When a prefix job and a manifest job are listed
    by_prefix = list_job_objects(store, JobRequest(usecase="telco_churn", source_uri=f"s3://{RAW}/batch/many/"))
    entry = ObjectEntry(bucket=RAW, key="batch/many/00007.csv")
    by_manifest = list_job_objects(store, JobRequest(usecase="telco_churn", objects=(entry,)))
    # Then every object is there, with size and ETag
    assert len(by_prefix) == 1200
    assert by_manifest[0].size == len(body)
    assert by_manifest[0].etag


def test_a_redriven_chunk_replaces_its_failure_and_an_unrun_chunk_counts_as_failed(
    trained: TrainedModel, tmp_path: Path
) -> None:
    # Given a job of several chunks where one failed once and was redriven, and one never ran
    store = _store(trained)
    store.put(RAW, "batch/big.jsonl", _jsonl(trained.records[:400]))
    plan, results, _ = _run(trained, store, _usecase(trained, chunk_bytes=8 * 1024), tmp_path)
    redriven = chunk_failure(plan.chunks[0], "StorageError", "timeout")
    # When the manifest is folded without the last chunk's result
    manifest = fold_manifest(plan, results[:-1], [redriven], now=NOW)
    # Then the redriven chunk counts as succeeded and the missing one as failed, named
    assert manifest.chunks_failed == 1
    assert manifest.failed[0].chunk_key == plan.chunks[-1].chunk_key
    assert manifest.failed[0].error == "Unaccounted"


def test_json_lines_with_a_number_in_a_category_column_reject_that_row(trained: TrainedModel, tmp_path: Path) -> None:
    # Given JSON Lines where one row holds a number where the contract declares a category
    records = [dict(r) for r in trained.records[:ROWS]]
    category = next(c.name for c in trained.usecase.contract.features if c.type.value == "category")
    records[10][category] = 7
    records[20]["female"] = 7  # an int column outside its allowed values
    store = _store(trained)
    store.put(RAW, "batch/typed.jsonl", _jsonl(records))
    usecase = _usecase(trained)
    # When the job runs
    plan, results, failures = _run(trained, store, usecase, tmp_path)
    manifest = fold_manifest(plan, results, failures, now=NOW)
    # Then that row is rejected with its field, the others scored
    assert not failures, failures
    assert (manifest.rows_in, manifest.rows_scored, manifest.rows_rejected) == (ROWS, ROWS - 2, 2)
