"""The batch handlers under moto (in memory): plan, score a chunk, finish, and start from an upload."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from shared.deployment.adapters import DeploymentStore
from shared.deployment.state import DeploymentState, ModelRef, model_ref_from_package
from shared.lake import layout as lake
from tests.fakes import FakeLambdaContext
from tests.scoring_model import TrainedModel, register_in_moto, trained_model

REPO = Path(__file__).resolve().parents[2]
RAW, LAKE, GROUP, USECASE = "sluice-raw", "sluice-lake", "sluice-telco-churn", "telco_churn"
DEPLOYMENTS = "sluice-deployments"
RUN_ID = "run-1"
PREFIX = "batch/customers/"
ROWS = 120


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return trained_model()


def _clear_caches() -> None:
    from shared.batch import runtime

    for factory in (
        runtime.client,
        runtime.plan_environment,
        runtime.worker_environment,
        runtime.finish_environment,
        runtime.start_environment,
        runtime.usecase_at,
        runtime.worker_models,
    ):
        factory.cache_clear()


def _register(model: TrainedModel) -> ModelRef:
    """The model in the lake, registered as SageMaker's registry holds it, and the champion of the use case."""
    return model_ref_from_package(*register_in_moto(model, lake=LAKE, group=GROUP, run_id=RUN_ID))


def _deploy(champion: ModelRef) -> None:
    DeploymentStore(boto3.client("dynamodb"), DEPLOYMENTS).put(
        DeploymentState(usecase=USECASE, champion=champion), expected_revision=0, updated_by="test"
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: TrainedModel) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_TASK_ROOT": str(REPO),
        "SLUICE_USECASE_FILE": "usecases/telco_churn.toml",
        "LAKE_BUCKET": LAKE,
        "DEPLOYMENT_TABLE": DEPLOYMENTS,
        "MODEL_PACKAGE_GROUP": GROUP,
        "SLUICE_WORKDIR": str(tmp_path),
        "POWERTOOLS_SERVICE_NAME": "batch",
        "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (RAW, LAKE):
            s3.create_bucket(Bucket=bucket)
        boto3.client("dynamodb").create_table(
            TableName=DEPLOYMENTS,
            KeySchema=[{"AttributeName": "usecase", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "usecase", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        machine = boto3.client("stepfunctions").create_state_machine(
            name="sluice-batch",
            definition=json.dumps({"StartAt": "Plan", "States": {"Plan": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/sluice-batch",
        )["stateMachineArn"]
        monkeypatch.setenv("BATCH_STATE_MACHINE_ARN", machine)
        _clear_caches()
        yield {"s3": s3, "champion": _register(model), "machine": machine}
        _clear_caches()


def _csv(model: TrainedModel, records: list[dict[str, Any]]) -> bytes:
    names = list(model.usecase.contract.names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        writer.writerow(["" if record.get(n) is None else record.get(n) for n in names])
    return buffer.getvalue().encode()


def _upload(s3: Any, model: TrainedModel, *, bad_rows: tuple[int, ...] = ()) -> None:
    """Two CSV objects of ``ROWS`` rows under the prefix; the first with out-of-range values at ``bad_rows``."""
    for part in range(2):
        records = [dict(r) for r in model.records[part * ROWS : (part + 1) * ROWS]]
        for index in bad_rows if part == 0 else ():
            records[index]["female"] = 7
        s3.put_object(Bucket=RAW, Key=f"{PREFIX}part-{part}.csv", Body=_csv(model, records))


def _keys(s3: Any, prefix: str) -> dict[str, str]:
    """Key → ETag of every lake object under ``prefix`` (all pages)."""
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE, Prefix=prefix):
        found.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return found


def _json(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=LAKE, Key=key)["Body"].read())


def _plan(**request: Any) -> dict[str, Any]:
    from functions.batch_plan.handler import lambda_handler

    planned: dict[str, Any] = lambda_handler(
        {"usecase": USECASE, "source_uri": f"s3://{RAW}/{PREFIX}", **request}, FakeLambdaContext()
    )
    return planned


def _score(chunk: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    from functions.batch_worker.handler import lambda_handler

    result: dict[str, Any] = lambda_handler({"chunk": chunk, "context": planned["context"]}, FakeLambdaContext())
    return result


def _finish(planned: dict[str, Any]) -> dict[str, Any]:
    from functions.batch_finish.handler import lambda_handler

    manifest: dict[str, Any] = lambda_handler({"usecase": USECASE, "job_id": planned["job_id"]}, FakeLambdaContext())
    return manifest


# --- batch_plan ------------------------------------------------------------------------------------


def test_a_prefix_is_planned_into_a_plan_and_the_maps_chunk_list(aws: dict[str, Any], model: TrainedModel) -> None:
    # Given two CSV objects under a prefix and a champion
    s3 = aws["s3"]
    _upload(s3, model)
    _deploy(aws["champion"])
    # When the plan handler gets the job
    planned = _plan()
    # Then plan.json and chunks.json (the map's items: a JSON array) are in the lake, one chunk an object
    plan = _json(s3, lake.batch_plan_key(USECASE, planned["job_id"]))
    chunks = _json(s3, planned["chunks_key"])
    assert planned["chunks_key"] == lake.batch_chunks_key(USECASE, planned["job_id"])
    assert isinstance(chunks, list)
    assert len(chunks) == planned["chunks"] == len(plan["chunks"]) == 2
    assert {c["key"] for c in chunks} == {f"{PREFIX}part-0.csv", f"{PREFIX}part-1.csv"}
    assert planned["model_version"] == aws["champion"].version
    assert planned["context"]["model"]["onnx_sha256"] == model.sha256


def test_a_version_that_does_not_exist_is_refused_with_a_clear_error(aws: dict[str, Any], model: TrainedModel) -> None:
    # Given objects to score and a registry holding version 1 only
    from shared.batch.exceptions import UnknownModelVersionError

    _upload(aws["s3"], model)
    _deploy(aws["champion"])
    # When a job names version 9, Then planning refuses it, naming the version and the group; nothing is written
    with pytest.raises(UnknownModelVersionError, match=f"no model version 9 in {GROUP}"):
        _plan(model_version=9)
    assert _keys(aws["s3"], lake.batch_prefix(USECASE)) == {}


def test_a_prefix_of_5000_objects_is_listed_past_one_page(aws: dict[str, Any], model: TrainedModel) -> None:
    # Given 5,000 one-row objects under a prefix (S3 lists at most 1,000 keys a page)
    from shared.batch import runtime

    s3 = aws["s3"]
    body = _csv(model, model.records[:1])
    for index in range(5000):
        s3.put_object(Bucket=RAW, Key=f"{PREFIX}{index:05d}.csv", Body=body)
    _deploy(aws["champion"])
    pages: list[int] = []
    runtime.client("s3").meta.events.register(
        "after-call.s3.ListObjectsV2", lambda parsed, **_: pages.append(parsed.get("KeyCount", 0))
    )
    # When the job is planned
    planned = _plan()
    # Then every object became a chunk, listed over several pages
    assert planned["chunks"] == 5000
    assert len(_json(s3, planned["chunks_key"])) == 5000
    assert len(pages) >= 5
    assert max(pages) <= 1000


# --- batch_worker ----------------------------------------------------------------------------------


def test_a_chunk_is_scored_into_parquet_rejected_rows_and_a_result_once(
    aws: dict[str, Any], model: TrainedModel
) -> None:
    # Given a planned job whose first object holds two out-of-range rows
    s3 = aws["s3"]
    _upload(s3, model, bad_rows=(3, 50))
    _deploy(aws["champion"])
    planned = _plan()
    chunk = next(c for c in _json(s3, planned["chunks_key"]) if c["key"].endswith("part-0.csv"))
    # When the worker scores the chunk
    outcome = _score(chunk, planned)
    # Then the scores are Parquet (entity id, score, decision, version), the bad rows are rejected at their line,
    # and the chunk's result is stored
    job = planned["job_id"]
    assert outcome == {"chunk_key": chunk["chunk_key"], "rows_in": ROWS}
    output = s3.get_object(Bucket=LAKE, Key=lake.batch_output_key(USECASE, job, chunk["chunk_key"]))
    scores = pq.read_table(io.BytesIO(output["Body"].read()))
    assert scores.column_names == ["entity_id", "score", "decision", "model_version"]
    assert scores.num_rows == ROWS - 2
    rejected_body = s3.get_object(Bucket=LAKE, Key=lake.batch_rejected_key(USECASE, job, chunk["chunk_key"]))["Body"]
    rejected = [json.loads(line) for line in rejected_body.read().splitlines()]
    assert [r["line"] for r in rejected] == [5, 52]  # the header is line 1
    result = _json(s3, lake.batch_result_key(USECASE, job, chunk["chunk_key"]))
    assert (result["rows_in"], result["rows_scored"], result["rows_rejected"]) == (ROWS, ROWS - 2, 2)
    assert _keys(s3, lake.prediction_log_prefix(USECASE))
    # When the same chunk is scored again (a redrive, a retried item)
    before = {**_keys(s3, lake.batch_prefix(USECASE)), **_keys(s3, lake.prediction_log_prefix(USECASE))}
    _score(chunk, planned)
    # Then no object is added or rewritten
    assert {**_keys(s3, lake.batch_prefix(USECASE)), **_keys(s3, lake.prediction_log_prefix(USECASE))} == before


def test_a_model_file_failing_its_hash_fails_the_chunk_and_writes_nothing(
    aws: dict[str, Any], model: TrainedModel
) -> None:
    # Given a champion whose registered sha256 is not its file's
    from shared.batch.exceptions import ChunkFailedError

    s3 = aws["s3"]
    _upload(s3, model)
    _deploy(aws["champion"].model_copy(update={"onnx_sha256": "0" * 64}))
    planned = _plan()
    chunk = _json(s3, planned["chunks_key"])[0]
    # When the worker scores a chunk, Then it fails with the reason and writes no output
    with pytest.raises(ChunkFailedError, match="sha256"):
        _score(chunk, planned)
    assert set(_keys(s3, lake.batch_prefix(USECASE, planned["job_id"]))) == {
        lake.batch_plan_key(USECASE, planned["job_id"]),
        planned["chunks_key"],
    }


# --- batch_finish ----------------------------------------------------------------------------------


def test_the_results_fold_into_a_manifest_that_reconciles(aws: dict[str, Any], model: TrainedModel) -> None:
    # Given a job whose every chunk was scored
    s3 = aws["s3"]
    _upload(s3, model, bad_rows=(7,))
    _deploy(aws["champion"])
    planned = _plan()
    for chunk in _json(s3, planned["chunks_key"]):
        _score(chunk, planned)
    # When the finish handler folds them
    outcome = _finish(planned)
    # Then the manifest says the job succeeded and rows in = scored + rejected
    manifest = _json(s3, lake.batch_manifest_key(USECASE, planned["job_id"]))
    assert outcome["status"] == manifest["status"] == "succeeded"
    assert (manifest["rows_in"], manifest["rows_scored"], manifest["rows_rejected"]) == (2 * ROWS, 2 * ROWS - 1, 1)
    assert manifest["chunks_failed"] == 0


def test_failures_past_the_tolerance_fail_the_job_with_its_manifest(aws: dict[str, Any], model: TrainedModel) -> None:
    # Given a job (no failure tolerated) where one chunk was scored and the other's failure was recorded by the map
    from shared.batch.exceptions import JobFailedError

    s3 = aws["s3"]
    _upload(s3, model)
    _deploy(aws["champion"])
    planned = _plan()
    scored, failed = _json(s3, planned["chunks_key"])
    _score(scored, planned)
    document = {"chunk": failed, "error": "ChunkFailedError", "cause": json.dumps({"errorMessage": "gzip truncated"})}
    failure_key = lake.batch_failure_key(USECASE, planned["job_id"], failed["chunk_key"])
    s3.put_object(Bucket=LAKE, Key=failure_key, Body=json.dumps(document).encode())
    # When the finish handler folds them, Then the job fails, and its manifest says which chunk and why
    with pytest.raises(JobFailedError):
        _finish(planned)
    manifest = _json(s3, lake.batch_manifest_key(USECASE, planned["job_id"]))
    assert manifest["status"] == "failed"
    assert manifest["chunks_failed"] == 1
    assert manifest["failed"][0]["chunk_key"] == failed["chunk_key"]
    assert manifest["failed"][0]["reason"] == "gzip truncated"


# --- batch_start -----------------------------------------------------------------------------------


def _object_created(key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": RAW}, "object": {"key": key, "size": 1}},
    }


def _start(key: str) -> dict[str, Any]:
    from functions.batch_start.handler import lambda_handler

    outcome: dict[str, Any] = lambda_handler(_object_created(key), FakeLambdaContext())
    return outcome


def test_an_upload_under_batch_starts_one_execution_and_a_second_finds_it(
    aws: dict[str, Any], model: TrainedModel
) -> None:
    # Given a champion and an object uploaded under batch/
    s3 = aws["s3"]
    _upload(s3, model)
    _deploy(aws["champion"])
    key = f"{PREFIX}part-0.csv"
    sfn = boto3.client("stepfunctions")
    # When its Object Created event reaches the start handler
    first = _start(key)
    # Then one execution runs, named after the job, with the object as its request
    assert first["started"] is True
    execution = sfn.describe_execution(executionArn=first["execution_arn"])
    request = json.loads(execution["input"])
    assert request["objects"] == [{"bucket": RAW, "key": key}]
    assert request["job_id"] == execution["name"]
    # When the same event comes again while it runs, Then the running execution is reported, not started again
    assert _start(key) == {"execution_arn": first["execution_arn"], "started": False}
    assert len(sfn.list_executions(stateMachineArn=aws["machine"])["executions"]) == 1
    # When it comes again after the execution ended, Then the existing execution is reported, not started
    sfn.stop_execution(executionArn=first["execution_arn"])
    assert _start(key) == {"execution_arn": first["execution_arn"], "started": False}
    assert len(sfn.list_executions(stateMachineArn=aws["machine"])["executions"]) == 1


def test_a_manifest_upload_starts_the_job_it_describes(aws: dict[str, Any], model: TrainedModel) -> None:
    # Given a job manifest uploaded under batch/: a prefix to score with version 1
    s3 = aws["s3"]
    _upload(s3, model)
    _deploy(aws["champion"])
    document = {"source_uri": f"s3://{RAW}/{PREFIX}", "model_version": 1}
    s3.put_object(Bucket=RAW, Key="batch/jobs/tonight.manifest.json", Body=json.dumps(document).encode())
    # When its Object Created event reaches the start handler
    outcome = _start("batch/jobs/tonight.manifest.json")
    # Then the execution's request is the manifest's, for this deployment's use case
    request = json.loads(
        boto3.client("stepfunctions").describe_execution(executionArn=outcome["execution_arn"])["input"]
    )
    assert outcome["started"] is True
    assert (request["usecase"], request["source_uri"], request["model_version"]) == (
        USECASE,
        f"s3://{RAW}/{PREFIX}",
        1,
    )
    # And starting it twice finds the first execution
    assert _start("batch/jobs/tonight.manifest.json")["execution_arn"] == outcome["execution_arn"]
