"""Batch prediction on the embedded cloud: a Distributed Map over 200+ objects, driven as a user would.

Given a champion and a prefix of 210 small objects (CSV, JSON Lines, Parquet, one gzip truncated) with planted
bad rows, a job reconciles row for row (scored + rejected = rows in), the truncated gzip's chunk is counted
against the tolerance, and the same job started again writes nothing new. A chunk whose read fails once (the
embedded cloud's read-fault switch, ``/_sluice/faults/objects``) is retried and scored; one that always fails (an
object archived to Glacier) is counted against the tolerance: the job succeeds under it, fails over it.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from local.demo.sample_data import load_sample_rows
from local.launcher import ROOT, RunningCloud, launch
from shared.lake import layout as lake
from shared.usecase.settings import ColumnType, UseCase, load_usecase
from tests.e2e.conftest import ingest_sample, train, wait_for_execution

BATCH_SETTINGS = """
[batch]
max_concurrency = 8
tolerated_failure_percentage = 5
chunk_bytes = 4096
retry_attempts = 1
"""
OBJECTS = 210
ROWS = 12


@pytest.fixture(scope="module")
def usecase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("usecases") / "telco_churn.toml"
    path.write_text((ROOT / "usecases" / "telco_churn.toml").read_text() + BATCH_SETTINGS)
    return path


@pytest.fixture(scope="module")
def batch_usecase(usecase_file: Path) -> UseCase:
    return load_usecase(usecase_file)


@pytest.fixture(scope="module")
def batch_cloud(usecase_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    workdir = tmp_path_factory.mktemp("batch-cloud")
    running = launch(usecase=usecase_file, outputs_file=workdir / "outputs.json", log_file=workdir / "cloud.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def champion(batch_cloud: RunningCloud, batch_usecase: UseCase, usecase_file: Path) -> int:
    from tests.e2e.conftest import run_cli

    ingest_sample(batch_cloud, batch_usecase, "e2e/batch-training.csv")
    execution = train(batch_cloud, f"e2e-batch-{int(time.time())}")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    deployed = run_cli(batch_cloud, "deploy", "1", usecase=usecase_file)
    assert deployed.returncode == 0, deployed.stderr
    return 1


def _objects(usecase: UseCase) -> tuple[dict[str, bytes], int]:
    """210 objects of 12 rows each, every 7th row bad (a negative tenure), and one truncated gzip."""
    rows = [dict(r) for r in load_sample_rows(usecase)[: OBJECTS * ROWS]]
    for index, row in enumerate(rows):
        row.pop(usecase.contract.label, None)
        if index % 7 == 3:
            row["tenure"] = "-5"
    bodies: dict[str, bytes] = {}
    for n in range(OBJECTS):
        part = rows[n * ROWS : (n + 1) * ROWS]
        if n % 3 == 0:
            header = list(part[0])
            lines = [",".join(header)] + [",".join("" if r[c] is None else str(r[c]) for c in header) for r in part]
            bodies[f"jobs/in/part-{n:03}.csv"] = ("\n".join(lines) + "\n").encode()
        elif n % 3 == 1:
            bodies[f"jobs/in/part-{n:03}.jsonl"] = "".join(json.dumps(r) + "\n" for r in part).encode()
        else:
            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pylist([_typed(usecase, r) for r in part]), sink)
            bodies[f"jobs/in/part-{n:03}.parquet"] = sink.getvalue()
    whole = gzip.compress("".join(json.dumps(r) + "\n" for r in rows[:ROWS]).encode())
    bodies["jobs/in/truncated.jsonl.gz"] = whole[: len(whole) // 2]
    return bodies, OBJECTS * ROWS


def _typed(usecase: UseCase, row: dict[str, Any]) -> dict[str, Any]:
    """A sample row (strings) with the contract's numbers as numbers, for a Parquet object."""
    kinds = {c.name: c.type for c in usecase.contract.columns}
    typed: dict[str, Any] = {}
    for name, value in row.items():
        kind = kinds.get(name)
        if kind not in (ColumnType.INT, ColumnType.FLOAT):
            typed[name] = value
        elif value is None or not str(value).strip():
            typed[name] = None
        else:
            typed[name] = float(value) if kind is ColumnType.FLOAT else int(float(value))
    return typed


def _start(cloud: RunningCloud, name: str, document: dict[str, Any]) -> str:
    sfn = cloud.client("stepfunctions")
    return str(
        sfn.start_execution(
            stateMachineArn=cloud.stack_outputs["BatchStateMachineArn"], name=name, input=json.dumps(document)
        )["executionArn"]
    )


def test_a_prefix_of_210_objects_reconciles_and_a_rerun_writes_nothing_new(
    batch_cloud: RunningCloud, batch_usecase: UseCase, champion: int
) -> None:
    # Given 210 objects (CSV, JSON Lines, Parquet) with planted bad rows, and a truncated gzip
    s3, raw = batch_cloud.client("s3"), batch_cloud.stack_outputs["RawBucketName"]
    bodies, rows_in = _objects(batch_usecase)
    for key, body in bodies.items():
        s3.put_object(Bucket=raw, Key=key, Body=body)
    request = {"usecase": batch_usecase.name, "source_uri": f"s3://{raw}/jobs/in/", "job_id": "e2e-job"}
    # When the job runs
    started = time.monotonic()
    execution = wait_for_execution(batch_cloud, _start(batch_cloud, "e2e-job", request), timeout=240)
    seconds = time.monotonic() - started
    lake_bucket = batch_cloud.stack_outputs["LakeBucketName"]
    manifest = json.loads(
        s3.get_object(Bucket=lake_bucket, Key=lake.batch_manifest_key(batch_usecase.name, "e2e-job"))["Body"].read()
    )
    print(f"\nbatch e2e: {manifest['chunks_total']} chunks in {seconds:.1f}s; {manifest['reason']}")
    # Then it succeeded within the tolerance, the truncated gzip's chunk named with why
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert [f["key"] for f in manifest["failed"]] == ["jobs/in/truncated.jsonl.gz"]
    assert "truncated" in manifest["failed"][0]["reason"]
    # And every row of the good objects is accounted for: scored + rejected = rows in
    assert manifest["rows_in"] == rows_in
    assert manifest["rows_scored"] + manifest["rows_rejected"] == rows_in
    assert manifest["rows_rejected"] == len([i for i in range(rows_in) if i % 7 == 3])
    scored = sum(
        pq.read_table(io.BytesIO(s3.get_object(Bucket=lake_bucket, Key=key)["Body"].read())).num_rows
        for key in manifest["output_keys"]
    )
    assert scored == manifest["rows_scored"]
    # When the same job runs again (a new execution of the same job id)
    before = {o["Key"]: o["ETag"] for o in _listing(s3, lake_bucket, lake.batch_prefix(batch_usecase.name))}
    again = wait_for_execution(batch_cloud, _start(batch_cloud, "e2e-job-r2", request), timeout=240)
    after = {o["Key"]: o["ETag"] for o in _listing(s3, lake_bucket, lake.batch_prefix(batch_usecase.name))}
    # Then it writes no new output (only the manifest and the chunk list are rewritten)
    assert again["status"] == "SUCCEEDED", again.get("cause")
    assert set(after) == set(before)


def _listing(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Contents", []))
    return found


def test_the_cli_runs_a_job_with_its_progress_and_an_upload_under_batch_starts_one(
    batch_cloud: RunningCloud, batch_usecase: UseCase, usecase_file: Path, champion: int
) -> None:
    from tests.e2e.conftest import run_cli

    # Given a few objects under a new prefix
    s3, raw = batch_cloud.client("s3"), batch_cloud.stack_outputs["RawBucketName"]
    bodies, _ = _objects(batch_usecase)
    small = {k.replace("jobs/in/", "jobs/cli/"): v for k, v in list(bodies.items())[:6]}
    for key, body in small.items():
        s3.put_object(Bucket=raw, Key=key, Body=body)
    # When the CLI scores the prefix
    result = run_cli(batch_cloud, "batch", f"s3://{raw}/jobs/cli/", usecase=usecase_file)
    print(result.stdout)
    # Then it shows its progress and the manifest's summary, and exits 0
    assert result.returncode == 0, result.stderr
    assert "chunks" in result.stdout
    assert f"rows in {6 * ROWS} = scored" in result.stdout
    # When the same job is asked for again
    again = run_cli(batch_cloud, "batch", f"s3://{raw}/jobs/cli/", usecase=usecase_file)
    # Then the existing execution is reported
    assert again.returncode == 0, again.stderr
    assert "already started" in again.stdout
    # When a data file is uploaded under batch/
    key = "batch/upload.jsonl"
    s3.put_object(Bucket=raw, Key=key, Body=small["jobs/cli/part-001.jsonl"])
    sfn, deadline = batch_cloud.client("stepfunctions"), time.monotonic() + 60
    machine = batch_cloud.stack_outputs["BatchStateMachineArn"]
    while True:
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        mine = [e for e in executions if e["name"] not in ("e2e-job", "e2e-job-r2") and e["status"] == "SUCCEEDED"]
        if len(mine) >= 2:
            break
        assert time.monotonic() < deadline, f"no job started for {key}: {executions}"
        time.sleep(0.5)
    # Then a job ran for it, and ingest left it alone
    lake_bucket = batch_cloud.stack_outputs["LakeBucketName"]
    manifests = s3.list_objects_v2(Bucket=lake_bucket, Prefix=f"manifests/{batch_usecase.name}/").get("Contents", [])
    sources = [
        json.loads(s3.get_object(Bucket=lake_bucket, Key=m["Key"])["Body"].read())["source_key"] for m in manifests
    ]
    assert key not in sources


# -- a chunk that fails once is retried; one that always fails counts against the tolerance ------------------

SMALL_ROWS = 6


def _fault(cloud: RunningCloud, **settings: Any) -> dict[str, Any]:
    """The embedded cloud's read-fault switch (local only): ``/_sluice/faults/objects`` on the API front."""
    base = "/".join(cloud.stack_outputs["ApiUrl"].split("/", 3)[:3])
    request = urllib.request.Request(
        f"{base}/_sluice/faults/objects",
        data=json.dumps(settings).encode() if settings else None,
        method="POST" if settings else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _upload_jsonl(cloud: RunningCloud, usecase: UseCase, prefix: str, count: int, *, skip: int) -> dict[str, list]:
    """``count`` JSON Lines objects of ``SMALL_ROWS`` unlabelled rows under ``prefix``, each ingested (ingest reads
    every raw upload) before this returns, so that only the batch job reads them afterwards: key → entity ids."""
    s3, outputs = cloud.client("s3"), cloud.stack_outputs
    raw, lake_bucket = outputs["RawBucketName"], outputs["LakeBucketName"]
    rows = [dict(r) for r in load_sample_rows(usecase)[skip : skip + count * SMALL_ROWS]]
    entity = usecase.contract.entity_id
    uploaded: dict[str, list] = {}
    manifests: list[str] = []
    for n in range(count):
        part = rows[n * SMALL_ROWS : (n + 1) * SMALL_ROWS]
        for row in part:
            row.pop(usecase.contract.label, None)
        key = f"{prefix}part-{n:02}.jsonl"
        etag = s3.put_object(Bucket=raw, Key=key, Body="".join(json.dumps(r) + "\n" for r in part).encode())["ETag"]
        manifests.append(lake.manifest_key(usecase.name, lake.object_id(raw, key, etag.strip('"'))))
        uploaded[key] = [r[entity] for r in part]
    deadline = time.monotonic() + 120
    for manifest in manifests:
        while not s3.list_objects_v2(Bucket=lake_bucket, Prefix=manifest).get("KeyCount"):
            assert time.monotonic() < deadline, f"{manifest} was not written: the upload was not ingested"
            time.sleep(0.3)
    return uploaded


def _archive(cloud: RunningCloud, key: str) -> None:
    """Move an object to S3 Glacier (a copy onto itself): GetObject then answers 403 InvalidObjectState, a read that
    fails however often it is retried."""
    s3, raw = cloud.client("s3"), cloud.stack_outputs["RawBucketName"]
    s3.copy_object(Bucket=raw, Key=key, CopySource={"Bucket": raw, "Key": key}, StorageClass="GLACIER")


def _job_manifest(cloud: RunningCloud, usecase: UseCase, cli_output: str) -> dict[str, Any]:
    job = re.search(r"^job (\S+): ", cli_output, re.MULTILINE)
    assert job, cli_output
    s3, lake_bucket = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"]
    key = lake.batch_manifest_key(usecase.name, job.group(1))
    return json.loads(s3.get_object(Bucket=lake_bucket, Key=key)["Body"].read())


def test_a_chunk_that_fails_once_is_retried_and_one_that_always_fails_is_counted_within_the_tolerance(
    batch_cloud: RunningCloud, batch_usecase: UseCase, usecase_file: Path, champion: int
) -> None:
    from tests.e2e.conftest import run_cli

    # Given 24 objects, one chunk each: one whose next read fails (an S3 outage past the SDK's own retries) and one
    # archived to Glacier (every read fails), i.e. 1 of 24 chunks (4.2%) failing for good, under the tolerated 5%
    raw = batch_cloud.stack_outputs["RawBucketName"]
    uploaded = _upload_jsonl(batch_cloud, batch_usecase, "jobs/faults/", 24, skip=0)
    transient, archived = "jobs/faults/part-03.jsonl", "jobs/faults/part-17.jsonl"
    _fault(batch_cloud, bucket=raw, key=transient, calls=1)
    _archive(batch_cloud, archived)
    # When the CLI scores the prefix
    started = time.monotonic()
    result = run_cli(batch_cloud, "batch", f"s3://{raw}/jobs/faults/", usecase=usecase_file)
    print(f"\nfaults job: {time.monotonic() - started:.1f}s\n{result.stdout}")
    # Then the job succeeded within the tolerance, and its summary names the archived object's chunk
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = _job_manifest(batch_cloud, batch_usecase, result.stdout)
    assert manifest["status"] == "succeeded"
    assert (manifest["chunks_total"], manifest["chunks_succeeded"], manifest["chunks_failed"]) == (24, 23, 1)
    assert "1 failed, within the tolerated 5%" in manifest["reason"]
    # And the archived object's chunk is failed with its reason, after the map's retry of a StorageError
    [failed] = manifest["failed"]
    assert (failed["key"], failed["error"]) == (archived, "StorageError")
    assert "InvalidObjectState" in failed["reason"], failed
    assert f"failed chunk {archived}#0: StorageError" in result.stdout
    # And the chunk whose read failed once was read again (the retry) and scored: its rows are in the output
    [fault] = [f for f in _fault(batch_cloud)["faults"] if f["key"] == transient]
    assert (fault["failed_calls"], fault["calls_left"]) == (1, 0)
    assert fault["served"] >= 1
    s3, lake_bucket = batch_cloud.client("s3"), batch_cloud.stack_outputs["LakeBucketName"]
    scored = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=lake_bucket, Key=key)["Body"].read()))
        for key in manifest["output_keys"]
    ]
    entities = {str(e) for table in scored for e in table.column("entity_id").to_pylist()}
    assert {str(e) for e in uploaded[transient]} <= entities
    assert not {str(e) for e in uploaded[archived]} & entities
    # And every row of the 23 chunks read is accounted for
    assert manifest["rows_in"] == 23 * SMALL_ROWS == manifest["rows_scored"] + manifest["rows_rejected"]
    assert sum(t.num_rows for t in scored) == manifest["rows_scored"]


def test_a_job_whose_failed_chunks_pass_the_tolerance_fails_with_the_reason_and_the_cli_exits_non_zero(
    batch_cloud: RunningCloud, batch_usecase: UseCase, usecase_file: Path, champion: int
) -> None:
    from tests.e2e.conftest import run_cli

    # Given 4 objects, one archived to Glacier: 1 of 4 chunks (25%) failing, over the tolerated 5%
    raw = batch_cloud.stack_outputs["RawBucketName"]
    _upload_jsonl(batch_cloud, batch_usecase, "jobs/over/", 4, skip=200)
    _archive(batch_cloud, "jobs/over/part-02.jsonl")
    # When the CLI scores the prefix
    started = time.monotonic()
    result = run_cli(batch_cloud, "batch", f"s3://{raw}/jobs/over/", usecase=usecase_file)
    print(f"\nover-tolerance job: {time.monotonic() - started:.1f}s\n{result.stdout}{result.stderr}")
    # Then it exits non-zero with the manifest's reason, naming the failed chunk
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 of 4 chunks failed (25.00%), above the tolerated 5%" in result.stderr
    assert "failed chunk jobs/over/part-02.jsonl#0: StorageError" in result.stdout
    # And the manifest records the failure, the other chunks' rows still reconciled
    manifest = _job_manifest(batch_cloud, batch_usecase, result.stdout)
    assert manifest["status"] == "failed"
    assert [f["key"] for f in manifest["failed"]] == ["jobs/over/part-02.jsonl"]
    assert manifest["rows_in"] == 3 * SMALL_ROWS == manifest["rows_scored"] + manifest["rows_rejected"]
