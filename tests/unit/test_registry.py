"""The registry gate, model unpacking and registration (in-memory fakes, no network)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shared.monitoring.baseline import Baseline, MetricSummary, NumericProfile
from shared.registry.exceptions import GateFailedError, ModelIntegrityError, RegistryError
from shared.registry.gate import GateThresholds, TrainingMetrics, gate
from shared.registry.package import (
    Lineage,
    PackageInputs,
    baseline_uri,
    extract_model_files,
    model_package_request,
    package_version,
)
from shared.registry.service import RegistrationRequest, read_baseline, register_trained_model
from tests.fakes import InMemoryObjectStore

THRESHOLDS = GateThresholds(min_auc=0.7, max_ece=0.1)
ONNX = b"\x08\x07fake-onnx-graph"
GROUP_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/sluice-telco-churn"


def _lineage(onnx: bytes = ONNX) -> dict[str, Any]:
    return {
        "onnx_sha256": hashlib.sha256(onnx).hexdigest(),
        "training_set_hash": "ts-abc",
        "contract_version": "1.0.0",
        "code_version": "fe7013ddc0436c4f",
    }


def _archive(files: dict[str, bytes], folder: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(folder + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def _baseline() -> bytes:
    summary = MetricSummary(
        n=100, positives=30, auc=0.8, auc_variance=0.002, brier=0.15, brier_variance=0.01, ece=0.03,
        positive_rate=0.3, mean_score=0.31, threshold=0.4, true_positives=20, false_positives=10,
        false_negatives=10, true_negatives=60,
    )  # fmt: skip
    score = NumericProfile(count=100, null_count=0, edges=[0.5], counts=[70, 30])
    baseline = Baseline(
        usecase="telco_churn", contract_version="1.0.0", threshold=0.4, rows=100, features={}, score=score,
        overall=summary, segments={"contract": {"Month-to-month": summary}},
    )  # fmt: skip
    return baseline.model_dump_json().encode()


BASELINE = _baseline()
BASELINE_SHA256 = hashlib.sha256(BASELINE).hexdigest()


def _with_baseline(metrics: dict[str, Any], body: bytes = BASELINE, *, named: bool = True) -> dict[str, bytes]:
    """A newer job's archive: baseline.json beside the others, named (file and sha256) in its lineage."""
    lineage = _lineage() | ({"baseline": {"file": "baseline.json", "sha256": BASELINE_SHA256}} if named else {})
    return {**_model_files(metrics, lineage), "baseline.json": body}


def _model_files(metrics: dict[str, Any], lineage: dict[str, Any] | None = None) -> dict[str, bytes]:
    return {
        "model.onnx": ONNX,
        "metrics.json": json.dumps(metrics).encode(),
        "lineage.json": json.dumps(lineage or _lineage()).encode(),
    }


class FakeRegistry:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def create_model_package(self, request: dict[str, Any]) -> str:
        self.requests.append(request)
        return f"{GROUP_ARN}/{len(self.requests)}"


def _request(approval: str = "manual") -> RegistrationRequest:
    return RegistrationRequest(
        usecase="telco_churn",
        run_id="run-1",
        job_name="run-1",
        model_data_url="s3://lake/sagemaker/telco_churn/jobs/run-1/output/model.tar.gz",
        lake_bucket="lake",
        group_name="sluice-telco-churn",
        image_uri="123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        approval=approval,  # type: ignore[arg-type]
        thresholds=THRESHOLDS,
    )


# --- the gate ----------------------------------------------------------------------------------


def test_a_model_within_every_threshold_passes() -> None:
    # Given metrics at the thresholds exactly
    metrics = TrainingMetrics(auc=0.7, ece=0.1, parity_ok=True)
    # When the gate judges them
    verdict = gate(metrics, THRESHOLDS)
    # Then the model passes with no reason against it
    assert verdict.passed
    assert verdict.reasons == ()


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ({"auc": 0.69, "ece": 0.05, "parity_ok": True}, "AUC 0.6900 is below the minimum 0.7000"),
        ({"auc": 0.9, "ece": 0.11, "parity_ok": True}, "ECE 0.1100 is above the maximum 0.1000"),
        ({"auc": 0.9, "ece": 0.05, "parity_ok": False}, "parity check failed"),
    ],
)
def test_a_model_missing_one_threshold_fails_with_its_reason(metrics: dict[str, Any], reason: str) -> None:
    # Given metrics that miss one threshold
    verdict = gate(TrainingMetrics.model_validate(metrics), THRESHOLDS)
    # Then the model fails, and the one reason says which
    assert not verdict.passed
    assert len(verdict.reasons) == 1
    assert reason in verdict.reasons[0]


def test_every_missed_threshold_is_reported() -> None:
    verdict = gate(TrainingMetrics(auc=0.5, ece=0.3, parity_ok=False), THRESHOLDS)
    assert len(verdict.reasons) == 3


def test_parity_may_be_reported_as_a_nested_object() -> None:
    # Given metrics.json with {"parity": {"ok": ...}}
    metrics = TrainingMetrics.model_validate({"auc": 0.8, "ece": 0.02, "parity": {"ok": True, "max_abs_diff": 1e-7}})
    # Then the gate reads it as parity_ok
    assert metrics.parity_ok


# --- unpacking and requests --------------------------------------------------------------------


def test_model_files_are_found_at_the_root_or_in_one_folder(tmp_path: Path) -> None:
    for folder in ("", "model/"):
        # Given an archive with the three files (and something else)
        archive = tmp_path / f"model{len(folder)}.tar.gz"
        archive.write_bytes(_archive({**_model_files({"auc": 1}), "extra.pkl": b"x"}, folder))
        into = tmp_path / f"out{len(folder)}"
        into.mkdir()
        # When they are extracted
        files = extract_model_files(archive, into)
        # Then exactly the model files come out
        assert sorted(files) == ["lineage.json", "metrics.json", "model.onnx"]
        assert files["model.onnx"].read_bytes() == ONNX


def test_the_baseline_is_extracted_when_the_archive_has_one(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(_archive(_with_baseline({"auc": 1}), "model/"))
    files = extract_model_files(archive, tmp_path)
    assert sorted(files) == ["baseline.json", "lineage.json", "metrics.json", "model.onnx"]
    assert files["baseline.json"].read_bytes() == BASELINE


def test_an_archive_without_lineage_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(_archive({"model.onnx": ONNX, "metrics.json": b"{}"}))
    with pytest.raises(ModelIntegrityError, match=r"lineage\.json"):
        extract_model_files(archive, tmp_path)


def test_the_package_request_records_lineage_metrics_and_approval() -> None:
    # Given a model that passed the gate
    inputs = PackageInputs(
        group_name="sluice-telco-churn",
        usecase="telco_churn",
        run_id="run-1",
        job_name="run-1",
        lake_bucket="lake",
        model_data_url="s3://lake/sagemaker/telco_churn/jobs/run-1/output/model.tar.gz",
        image_uri="image",
        approval="manual",
        onnx_sha256="a" * 64,
        lineage=Lineage.model_validate(_lineage()),
    )
    # When its CreateModelPackage request is built
    request = model_package_request(inputs)
    # Then it waits for manual approval, points at the unpacked metrics, and carries the lineage
    assert request["ModelApprovalStatus"] == "PendingManualApproval"
    assert request["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": "s3://lake/models/telco_churn/run-1/metrics.json",
    }
    assert request["CustomerMetadataProperties"] == {
        "contract_version": "1.0.0",
        "training_set_hash": "ts-abc",
        "code_version": "fe7013ddc0436c4f",
        "onnx_sha256": "a" * 64,
        "onnx_s3_key": "models/telco_churn/run-1/model.onnx",
        "lineage_s3_key": "models/telco_churn/run-1/lineage.json",
        "run_id": "run-1",
        "training_job_name": "run-1",
    }
    (container,) = request["InferenceSpecification"]["Containers"]
    assert container == {"Image": "image", "ModelDataUrl": inputs.model_data_url}


def test_a_package_an_endpoint_serves_carries_its_inference_code_in_the_container() -> None:
    # Given a model registered for an endpoint: its serving image, inference program and code archive
    inputs = PackageInputs(
        group_name="g", usecase="telco_churn", run_id="run-1", job_name="run-1", lake_bucket="lake",
        model_data_url="s3://lake/m.tar.gz", image_uri="gpu-image", approval="manual", onnx_sha256="a" * 64,
        lineage=Lineage.model_validate(_lineage()), inference_program="training/inference.py",
        inference_code_url="s3://assets/gpu-source.tar.gz",
    )  # fmt: skip
    # When its CreateModelPackage request is built
    request = model_package_request(inputs)
    # Then its container runs that code in that image (a model created from the package loads model.onnx with it)
    (container,) = request["InferenceSpecification"]["Containers"]
    assert container == {
        "Image": "gpu-image",
        "ModelDataUrl": "s3://lake/m.tar.gz",
        "Environment": {
            "SAGEMAKER_PROGRAM": "training/inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "s3://assets/gpu-source.tar.gz",
        },
    }


def test_a_registration_for_an_endpoint_passes_its_inference_code_to_the_package(tmp_path: Path) -> None:
    # Given a good model's archive and a registration that names the endpoint's inference code
    store, registry = _store_with(_model_files({"auc": 0.84, "ece": 0.03, "parity_ok": True})), FakeRegistry()
    request = replace(_request(), inference_program="training/inference.py", inference_code_url="s3://assets/c.gz")
    # When it is registered
    register_trained_model(request, store=store, registry=registry, workdir=tmp_path)
    # Then the package's container carries them
    (container,) = registry.requests[0]["InferenceSpecification"]["Containers"]
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "training/inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "s3://assets/c.gz",
    }


def test_the_package_request_attaches_the_baseline_when_the_model_has_one() -> None:
    # Given a model that passed the gate, with a baseline
    inputs = PackageInputs(
        group_name="sluice-telco-churn",
        usecase="telco_churn",
        run_id="run-1",
        job_name="run-1",
        lake_bucket="lake",
        model_data_url="s3://lake/sagemaker/telco_churn/jobs/run-1/output/model.tar.gz",
        image_uri="image",
        approval="automatic",
        onnx_sha256="a" * 64,
        lineage=Lineage.model_validate(_lineage()),
        baseline_sha256="b" * 64,
    )
    # When its CreateModelPackage request is built
    request = model_package_request(inputs)
    # Then the baseline is the package's data-quality and model-quality drift baseline, digest included
    source = {
        "ContentType": "application/json",
        "ContentDigest": "sha256:" + "b" * 64,
        "S3Uri": "s3://lake/models/telco_churn/run-1/baseline.json",
    }
    assert request["DriftCheckBaselines"] == {
        "ModelDataQuality": {"Statistics": source},
        "ModelQuality": {"Statistics": source},
    }
    assert request["ModelMetrics"]["ModelDataQuality"] == {"Statistics": source}
    # And the model-quality statistics stay metrics.json (promotion and the CLI read them there)
    assert (
        request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
        == "s3://lake/models/telco_churn/run-1/metrics.json"
    )
    assert request["CustomerMetadataProperties"]["baseline_s3_key"] == "models/telco_churn/run-1/baseline.json"
    assert request["CustomerMetadataProperties"]["baseline_sha256"] == "b" * 64
    # And a described package gives its baseline's URI back
    assert baseline_uri(request) == source["S3Uri"]


def test_a_package_without_a_baseline_names_none() -> None:
    inputs = PackageInputs(
        group_name="g", usecase="telco_churn", run_id="run-1", job_name="run-1", lake_bucket="lake",
        model_data_url="s3://lake/m.tar.gz", image_uri="image", approval="manual", onnx_sha256="a" * 64,
        lineage=Lineage.model_validate(_lineage()),
    )  # fmt: skip
    request = model_package_request(inputs)
    assert "DriftCheckBaselines" not in request
    assert "ModelDataQuality" not in request["ModelMetrics"]
    assert baseline_uri(request) is None


def test_package_versions_come_from_the_arn() -> None:
    assert package_version(f"{GROUP_ARN}/12") == 12
    with pytest.raises(RegistryError):
        package_version("arn:aws:sagemaker:us-east-1:1:model-package/unversioned")


# --- registration end to end -------------------------------------------------------------------


def _store_with(files: dict[str, bytes]) -> InMemoryObjectStore:
    store = InMemoryObjectStore()
    store.put("lake", "sagemaker/telco_churn/jobs/run-1/output/model.tar.gz", _archive(files))
    return store


def test_a_good_model_is_unpacked_into_the_lake_and_registered(tmp_path: Path) -> None:
    # Given a finished job's archive of a good model
    store, registry = _store_with(_model_files({"auc": 0.84, "ece": 0.03, "parity_ok": True})), FakeRegistry()
    # When it is registered with automatic approval
    registered = register_trained_model(_request("automatic"), store=store, registry=registry, workdir=tmp_path)
    # Then its files are in the lake, unpacked, and the package is version 1, approved
    assert store.keys("lake", "models/") == [
        "models/telco_churn/run-1/lineage.json",
        "models/telco_churn/run-1/metrics.json",
        "models/telco_churn/run-1/model.onnx",
    ]
    assert store.body("lake", "models/telco_churn/run-1/model.onnx") == ONNX
    assert registered.version == 1
    assert registered.approval_status == "Approved"
    assert registry.requests[0]["ModelPackageGroupName"] == "sluice-telco-churn"


def test_a_weak_model_fails_the_gate_and_is_not_registered(tmp_path: Path) -> None:
    # Given a model under the AUC threshold
    store, registry = _store_with(_model_files({"auc": 0.55, "ece": 0.03, "parity_ok": True})), FakeRegistry()
    # When registration is attempted
    with pytest.raises(GateFailedError, match="AUC") as failure:
        register_trained_model(_request(), store=store, registry=registry, workdir=tmp_path)
    # Then nothing is registered, the reason is given, and the files stay in the lake for inspection
    assert registry.requests == []
    assert failure.value.reasons
    assert "models/telco_churn/run-1/metrics.json" in store.keys("lake", "models/")


def test_an_onnx_file_that_does_not_match_its_lineage_is_refused(tmp_path: Path) -> None:
    # Given lineage naming another ONNX file
    files = _model_files({"auc": 0.9, "ece": 0.01, "parity_ok": True}, _lineage(b"another graph"))
    store, registry = _store_with(files), FakeRegistry()
    # Then registration stops before the gate and before the lake is written
    with pytest.raises(ModelIntegrityError, match="sha256"):
        register_trained_model(_request(), store=store, registry=registry, workdir=tmp_path)
    assert registry.requests == []
    assert store.keys("lake", "models/") == []


def test_a_model_with_a_baseline_is_registered_with_it_and_it_reads_back(tmp_path: Path) -> None:
    # Given a newer job's archive: a good model with its baseline, named in its lineage
    store, registry = _store_with(_with_baseline({"auc": 0.84, "ece": 0.03, "parity_ok": True})), FakeRegistry()
    # When it is registered
    register_trained_model(_request(), store=store, registry=registry, workdir=tmp_path)
    # Then baseline.json is unpacked into the lake beside the others
    assert store.keys("lake", "models/") == [
        "models/telco_churn/run-1/baseline.json",
        "models/telco_churn/run-1/lineage.json",
        "models/telco_churn/run-1/metrics.json",
        "models/telco_churn/run-1/model.onnx",
    ]
    assert store.body("lake", "models/telco_churn/run-1/baseline.json") == BASELINE
    # And the package carries it, with its sha256
    (package,) = registry.requests
    statistics = package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]
    assert statistics["S3Uri"] == "s3://lake/models/telco_churn/run-1/baseline.json"
    assert statistics["ContentDigest"] == f"sha256:{BASELINE_SHA256}"
    assert package["CustomerMetadataProperties"]["baseline_sha256"] == BASELINE_SHA256
    # And the monitor reads the baseline back by the package
    baseline = read_baseline(package, store)
    assert baseline is not None
    assert baseline.segments["contract"]["Month-to-month"].auc == 0.8


def test_an_older_model_without_a_baseline_still_registers(tmp_path: Path) -> None:
    # Given an older job's archive: no baseline.json, none named in its lineage
    store, registry = _store_with(_model_files({"auc": 0.84, "ece": 0.03, "parity_ok": True})), FakeRegistry()
    # When it is registered
    register_trained_model(_request(), store=store, registry=registry, workdir=tmp_path)
    # Then it is, without a baseline; the monitor then reads none (data quality only)
    (package,) = registry.requests
    assert "DriftCheckBaselines" not in package
    assert "baseline_sha256" not in package["CustomerMetadataProperties"]
    assert read_baseline(package, store) is None


def test_a_baseline_unnamed_in_lineage_is_still_attached(tmp_path: Path) -> None:
    store, registry = (
        _store_with(_with_baseline({"auc": 0.84, "ece": 0.03, "parity_ok": True}, named=False)),
        FakeRegistry(),
    )
    register_trained_model(_request(), store=store, registry=registry, workdir=tmp_path)
    assert registry.requests[0]["CustomerMetadataProperties"]["baseline_sha256"] == BASELINE_SHA256


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (_with_baseline({"auc": 0.9, "ece": 0.01, "parity_ok": True}, BASELINE + b" "), "sha256"),
        (_with_baseline({"auc": 0.9, "ece": 0.01, "parity_ok": True}, b'{"format": 1}', named=False), "invalid"),
        (
            _model_files(
                {"auc": 0.9, "ece": 0.01, "parity_ok": True},
                _lineage() | {"baseline": {"file": "baseline.json", "sha256": BASELINE_SHA256}},
            ),
            "lacks",
        ),
    ],
    ids=["sha256-differs", "not-a-baseline", "named-but-missing"],
)
def test_a_baseline_that_does_not_match_its_lineage_or_format_is_refused(
    files: dict[str, bytes], reason: str, tmp_path: Path
) -> None:
    # Given an archive whose baseline differs from its lineage, is no baseline, or is named but absent
    store, registry = _store_with(files), FakeRegistry()
    # Then registration stops before the lake is written and nothing is registered
    with pytest.raises(ModelIntegrityError, match=reason):
        register_trained_model(_request(), store=store, registry=registry, workdir=tmp_path)
    assert registry.requests == []
    assert store.keys("lake", "models/") == []


def test_a_stored_baseline_that_is_not_valid_is_an_integrity_error() -> None:
    store = InMemoryObjectStore()
    store.put("lake", "models/telco_churn/run-1/baseline.json", b"{}")
    package = {
        "DriftCheckBaselines": {
            "ModelDataQuality": {"Statistics": {"S3Uri": "s3://lake/models/telco_churn/run-1/baseline.json"}}
        }
    }
    with pytest.raises(ModelIntegrityError, match="not a valid baseline"):
        read_baseline(package, store)
