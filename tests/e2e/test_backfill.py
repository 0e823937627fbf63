"""A backfill on the embedded cloud, driven as a user drives it: the stack runs contract 1.0.0 and has ingested a
few objects; a new use-case file (1.1.0: an optional column, a tighter tenure range) is deployed to the functions
that carry it; ``python -m cli backfill --contract-version 1.1.0`` runs the backfill state machine (a Distributed
Map over the objects); then a training run reads the new curated set, and its point in time still holds.

"Deploying" the file is what ``cdk deploy`` does for a changed asset: each function whose bundle carries the use
case (its ``SLUICE_USECASE_FILE``) gets its package again with the new file, through ``UpdateFunctionCode``.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from local.demo.sample_data import load_sample_rows, to_csv
from local.launcher import ROOT, RunningCloud, launch
from shared.environment import UseCaseEnvironment
from shared.lake import layout as lake
from shared.usecase.settings import UseCase, load_usecase
from tests.e2e.conftest import run_cli, wait_for_execution

pytestmark = pytest.mark.e2e

NEW_VERSION = "1.1.0"
TENURE_MAX = 60
NEW_COLUMN = "referral_channel"
OPTIONAL_COLUMN = f"""
[[contract.columns]]
name = "{NEW_COLUMN}"
type = "category"
allowed = ["friend", "partner", "web"]
required = false
nullable = true
"""
ROWS_PER_OBJECT = 150


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The use-case file the cloud starts on (1.0.0) and the one deployed later (1.1.0)."""
    directory = tmp_path_factory.mktemp("usecases")
    text = (ROOT / "usecases" / "telco_churn.toml").read_text()
    old = directory / "telco_churn.toml"
    old.write_text(text)
    tenure = 'name = "tenure"\ntype = "int"\nmin = 0\nmax = 120\ndescription = "months as a customer"\n'
    assert tenure in text
    newer = text.replace('version = "1.0.0"', f'version = "{NEW_VERSION}"', 1)
    newer = newer.replace(tenure, tenure.replace("max = 120", f"max = {TENURE_MAX}") + OPTIONAL_COLUMN, 1)
    new = directory / "telco_churn-1.1.0.toml"
    new.write_text(newer)
    assert load_usecase(new).contract.version == NEW_VERSION
    return old, new


@pytest.fixture(scope="module")
def cloud(files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    workdir = tmp_path_factory.mktemp("backfill-cloud")
    running = launch(usecase=files[0], outputs_file=workdir / "outputs.json", log_file=workdir / "cloud.log")
    try:
        yield running
    finally:
        running.stop()


def deploy_usecase_file(cloud: RunningCloud, usecase_file: Path) -> list[str]:
    """Deploy a new use-case file as ``cdk deploy`` would: every function whose bundle carries the use case (its
    ``SLUICE_USECASE_FILE`` names it) gets its package back with the new file, through ``UpdateFunctionCode``.
    Returns the functions updated."""
    client, variable = cloud.client("lambda"), UseCaseEnvironment.variable("usecase_file")
    stack = next(iter(cloud.outputs))
    updated = []
    for page in client.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            bundled = (function.get("Environment") or {}).get("Variables", {}).get(variable)
            if not bundled or not function["FunctionName"].startswith(stack):
                continue
            location = client.get_function(FunctionName=function["FunctionName"])["Code"]["Location"]
            with urllib.request.urlopen(location) as response:
                package = response.read()
            client.update_function_code(
                FunctionName=function["FunctionName"], ZipFile=_replaced(package, bundled, usecase_file.read_bytes())
            )
            updated.append(function["FunctionName"])
    return sorted(updated)


def _replaced(package: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        assert name in source.namelist(), f"{name} is not in the package"
        for entry in source.infolist():
            target.writestr(entry, content if entry.filename == name else source.read(entry))
    return out.getvalue()


def _ingest(cloud: RunningCloud, usecase: UseCase, key: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    """Upload ``rows`` under ``key``; wait for its live manifest and return it."""
    outputs, s3 = cloud.stack_outputs, cloud.client("s3")
    s3.put_object(Bucket=outputs["RawBucketName"], Key=key, Body=to_csv(rows))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for manifest_key in _keys(cloud, lake.manifest_prefix(usecase.name)):
            if lake.is_live_manifest_key(usecase.name, manifest_key):
                manifest = _json(cloud, manifest_key)
                if manifest["source_key"] == key:
                    return manifest
        time.sleep(0.5)
    raise AssertionError(f"{key} was not ingested")


def _keys(cloud: RunningCloud, prefix: str) -> dict[str, str]:
    s3, bucket, found = cloud.client("s3"), cloud.stack_outputs["LakeBucketName"], {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})
    return found


def _body(cloud: RunningCloud, key: str) -> bytes:
    return cloud.client("s3").get_object(Bucket=cloud.stack_outputs["LakeBucketName"], Key=key)["Body"].read()


def _json(cloud: RunningCloud, key: str) -> Any:
    return json.loads(_body(cloud, key))


def _live_curated(cloud: RunningCloud, usecase: UseCase) -> dict[str, str]:
    return {
        k: v
        for k, v in _keys(cloud, lake.curated_prefix(usecase.name)).items()
        if lake.CONTRACT_PARTITION not in k and not k.endswith(lake.CURATED_POINTER_FILE)
    }


def _rows(cloud: RunningCloud, key: str) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(_body(cloud, key))).to_pylist()


def test_a_backfill_under_a_new_contract_reconciles_switches_and_keeps_the_point_in_time(
    cloud: RunningCloud, files: tuple[Path, Path]
) -> None:
    started = time.monotonic()
    old_file, new_file = files
    usecase = load_usecase(old_file)
    sample = load_sample_rows(usecase)
    # Given three small objects ingested under 1.0.0: two before a training cutoff, one after it that relabels
    # the first object's customers (what must not leak into a training set as of the cutoff)
    first, second = sample[:ROWS_PER_OBJECT], sample[ROWS_PER_OBJECT : 2 * ROWS_PER_OBJECT]
    relabelled = [{**row, "churn": "No" if row["churn"] == "Yes" else "Yes"} for row in first[:20]]
    manifests = [
        _ingest(cloud, usecase, "backfill/first.csv", first),
        _ingest(cloud, usecase, "backfill/second.csv", second),
    ]
    time.sleep(1.1)
    cutoff = datetime.now(UTC)
    time.sleep(1.1)
    manifests.append(_ingest(cloud, usecase, "backfill/late.csv", relabelled))
    assert all(m["contract_version"] == "1.0.0" for m in manifests)
    live_before = _live_curated(cloud, usecase)
    assert live_before

    # When the 1.1.0 file is deployed to the functions that carry it, and the backfill runs through the CLI
    updated = deploy_usecase_file(cloud, new_file)
    result = run_cli(cloud, "backfill", "--contract-version", NEW_VERSION, usecase=new_file)

    # Then the ingest, backfill and training-set functions run the new file, and the run reconciles and switches
    names = " ".join(updated)
    for part in ("Ingest", "BackfillBackfillFunction", "BackfillPlanFunction", "TrainingSet"):
        assert part in names, (part, updated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"/{len(manifests)} objects" in result.stdout
    assert "reconciled   3 objects (3 backfilled" in result.stdout, result.stdout
    assert "switched" in result.stdout

    # And per object: rows in (as ingest counted them) = curated + quarantined under contract=1.1.0, and the
    # customers over the tightened tenure range are quarantined with the reason
    sources = {"backfill/first.csv": first, "backfill/second.csv": second, "backfill/late.csv": relabelled}
    for manifest in manifests:
        versioned = _json(cloud, lake.manifest_key(usecase.name, manifest["object_id"], NEW_VERSION))
        assert versioned["contract_version"] == NEW_VERSION
        assert versioned["rows_in"] == manifest["rows_in"] == len(sources[manifest["source_key"]])
        assert versioned["rows_curated"] + versioned["rows_quarantined"] == versioned["rows_in"]
        over = sum(1 for row in sources[manifest["source_key"]] if int(row["tenure"]) > TENURE_MAX)
        assert versioned["rows_quarantined"] == manifest["rows_quarantined"] + over
        assert over > 0 or manifest["source_key"] == "backfill/late.csv"
        assert all(f"{lake.CONTRACT_PARTITION}{NEW_VERSION}/" in key for key in versioned["curated_keys"])
        reasons = "".join(_body(cloud, key).decode() for key in versioned["quarantine_keys"])
        assert reasons.count(f"above the maximum {TENURE_MAX}") == over
    # And the live curated set is untouched (same keys, same ETags)
    assert _live_curated(cloud, usecase) == live_before
    # And the pointer names 1.1.0, and the switch is in the audit history
    pointer = _json(cloud, lake.curated_pointer_key(usecase.name))
    assert pointer["contract_version"] == NEW_VERSION
    history = run_cli(cloud, "history", usecase=new_file)
    assert history.returncode == 0, history.stderr
    assert "curated_switch" in history.stdout

    # When a training run is started as of the cutoff, after the switch
    before = set(_keys(cloud, lake.training_set_prefix(usecase.name)))
    execution = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.stack_outputs["TrainingStateMachineArn"],
        name=f"after-backfill-{int(time.time())}",
        input=json.dumps({"cutoff": cutoff.isoformat()}),
    )
    wait_for_execution(cloud, execution["executionArn"])
    (report_key,) = [
        key
        for key in _keys(cloud, lake.training_set_prefix(usecase.name))
        if key not in before and key.endswith(lake.TRAINSET_REPORT_FILE)
    ]
    report = _json(cloud, report_key)
    run_id = report["run_id"]

    # Then its training set reads the 1.1.0 set and carries the new column
    assert report["curated_version"] == NEW_VERSION
    assert report["contract_version"] == NEW_VERSION
    rows = _rows(cloud, lake.training_set_train_key(usecase.name, run_id)) + _rows(
        cloud, lake.training_set_holdout_key(usecase.name, run_id)
    )
    assert rows
    assert all(NEW_COLUMN in row and row[NEW_COLUMN] is None for row in rows)
    assert max(int(row["tenure"]) for row in rows) <= TENURE_MAX
    # And the point in time holds on it: every row keeps the ingest time of its original ingest, none is later
    # than the cutoff, the late object is left out (from its backfilled manifest) and its relabels do not leak
    ingested_at = {m["source_key"]: datetime.fromisoformat(m["ingested_at"]) for m in manifests}
    assert all(row["_ingested_at"] == ingested_at[row["_source_key"]] for row in rows)
    assert all(row["_ingested_at"] <= cutoff for row in rows)
    late = next(m for m in manifests if m["source_key"] == "backfill/late.csv")
    assert report["manifests_late"] == [lake.manifest_key(usecase.name, late["object_id"], NEW_VERSION)]
    label = {int(row["rownames"]): row["churn"] for row in first}
    assert all(row["churn"] == label[row["rownames"]] for row in rows if row["rownames"] in label)
    assert {row["_source_key"] for row in rows} == {"backfill/first.csv", "backfill/second.csv"}
    print(f"backfill e2e: {time.monotonic() - started:.1f}s")
