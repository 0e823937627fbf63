"""One monitoring run over an in-memory lake: a planted drift and a degraded segment are found, one report is written,
a rerun rewrites the same keys and joins nothing twice, and the training job's baseline lines up with the cells."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.deployment.state import DeploymentState, ModelRef
from shared.lake import layout as lake
from shared.monitoring.monitor import OVERALL
from shared.monitoring.service import (
    MonitoringRequestError,
    MonitoringService,
    parse_monitor_event,
    read_latest,
    read_report,
    run_id_for,
)
from shared.monitoring.types import DATA_DRIFT, SEGMENT_DEGRADATION, window_name
from shared.usecase.settings import UseCase
from tests.fakes import InMemoryObjectStore
from training.baseline import build_baseline

NOW = datetime(2026, 11, 20, 12, 17, tzinfo=UTC)
BUCKET = "lake"
USECASE = "churn"
CONTRACTS = ("Month-to-month", "One year", "Two year")
PACKAGE = "arn:aws:sagemaker:us-east-1:1:model-package/churn/7"
OLD_PACKAGE = "arn:aws:sagemaker:us-east-1:1:model-package/churn/6"


class _Store(InMemoryObjectStore):
    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        self._write(bucket, key, body)


class _Deployments:
    def __init__(self, state: DeploymentState) -> None:
        self.state = state

    def get(self, usecase: str) -> DeploymentState:
        return self.state


class _Registry:
    def __init__(self, packages: dict[str, dict[str, Any]]) -> None:
        self.packages = packages

    def describe(self, package_arn: str) -> dict[str, Any]:
        return self.packages[package_arn]


def usecase() -> UseCase:
    columns: list[dict[str, Any]] = [
        {"name": "customer", "type": "int"},
        {"name": "churn", "type": "category", "allowed": ["No", "Yes"]},
        {"name": "tenure", "type": "float"},
        {"name": "monthly", "type": "float"},
        {"name": "contract", "type": "category", "allowed": list(CONTRACTS)},
        {"name": "senior", "type": "int"},
    ]
    contract = {"version": "1.0.0", "entity_id": "customer", "label": "churn", "positive_class": "Yes",
                "segments": ["contract", "senior"], "columns": columns}  # fmt: skip
    return UseCase.model_validate({"name": USECASE, "contract": contract, "monitoring": {"schedule_minutes": 60}})


def draw(rng: np.random.Generator, rows: int, *, shifted: bool = False) -> pd.DataFrame:
    """Calibrated scores; ``shifted``: ``monthly`` up by 2 sd, and scores unrelated to the label on month-to-month."""
    contract = rng.choice(np.array(CONTRACTS, dtype=object), size=rows, p=[0.5, 0.3, 0.2])
    tenure = rng.normal(30.0, 10.0, size=rows)
    monthly = rng.normal(70.0, 20.0, size=rows) + (40.0 if shifted else 0.0)
    senior = (rng.uniform(size=rows) < 0.3).astype(np.int64)
    logit = -0.6 - 0.1 * (tenure - 30.0) + 0.8 * (contract == "Month-to-month") + 0.3 * senior
    probability = 1.0 / (1.0 + np.exp(-logit))
    positive = rng.uniform(size=rows) < probability
    score = probability.copy()
    if shifted:
        inside = contract == "Month-to-month"
        score[inside] = rng.uniform(0.05, 0.95, size=int(inside.sum()))
    return pd.DataFrame({"customer": np.arange(rows), "churn": np.where(positive, "Yes", "No"), "tenure": tenure,
                         "monthly": monthly, "contract": contract, "senior": senior, "score": score})  # fmt: skip


@lru_cache(maxsize=1)
def baseline_json() -> bytes:
    holdout = draw(np.random.default_rng(1), 4000)
    baseline = build_baseline(holdout, holdout["score"].to_numpy(), usecase(), 0.5)
    return baseline.model_dump_json().encode()


def lake_with_traffic(*, shifted: bool, hours: int = 6, rows_per_hour: int = 800) -> _Store:
    """``hours`` of logged predictions before NOW by champion v7, labels for half of them (observed 10 min later)."""
    store = _Store()
    store.put(BUCKET, "models/churn/run-7/baseline.json", baseline_json())
    rng = np.random.default_rng(5)
    for hour in range(hours, 0, -1):
        at = NOW.replace(minute=0) - timedelta(hours=hour)
        frame = draw(rng, rows_per_hour, shifted=shifted)
        lines = []
        for i, row in enumerate(frame.itertuples()):
            time = at + timedelta(seconds=4 * i)
            lines.append({"usecase": USECASE, "request_id": f"r{hour}-{i}", "index": 0, "entity_id": f"c{hour}-{i}",
                          "features": {"tenure": row.tenure, "monthly": row.monthly, "contract": row.contract,
                                       "senior": int(row.senior)},
                          "score": row.score, "threshold": 0.5, "model_version": 7, "variant": "champion",
                          "served": True, "time": time.isoformat()})  # fmt: skip
            if i % 2 == 0:
                seen = time + timedelta(minutes=10)
                label = {"request_id": f"r{hour}-{i}", "label": row.churn, "observed_at": seen.isoformat(),
                         "received_at": seen.isoformat()}  # fmt: skip
                key = f"{lake.feedback_day_prefix(USECASE, seen.date())}r{hour}-{i}.json"
                store.put(BUCKET, key, json.dumps(label).encode())
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        store.put(BUCKET, lake.prediction_log_key(USECASE, at=at, object_id=f"o{hour}"), body)
    return store


def package(with_baseline: bool) -> dict[str, Any]:
    document: dict[str, Any] = {"ModelPackageArn": PACKAGE if with_baseline else OLD_PACKAGE}
    if with_baseline:
        uri = f"s3://{BUCKET}/models/churn/run-7/baseline.json"
        document["DriftCheckBaselines"] = {"ModelDataQuality": {"Statistics": {"S3Uri": uri}}}
    return document


def ref(version: int, arn: str) -> ModelRef:
    return ModelRef(version=version, package_arn=arn, run_id=f"run-{version}", onnx_key="k", onnx_sha256="0" * 64,
                    threshold=0.5)  # fmt: skip


def service(store: _Store, *, champion: ModelRef | None = None, out: io.StringIO | None = None) -> MonitoringService:
    state = DeploymentState(usecase=USECASE, champion=champion or ref(7, PACKAGE))
    registry = _Registry({PACKAGE: package(True), OLD_PACKAGE: package(False)})
    return MonitoringService(usecase(), store=store, bucket=BUCKET, deployments=_Deployments(state),
                             registry=registry, metrics_out=out or io.StringIO())  # fmt: skip


@lru_cache(maxsize=1)
def shifted_run() -> tuple[_Store, Any, str]:
    store = lake_with_traffic(shifted=True)
    out = io.StringIO()
    summary = service(store, out=out).run(NOW)
    return store, summary, out.getvalue()


def test_a_run_finds_the_planted_drift_and_the_degraded_segment_and_only_those() -> None:
    # Given six hours of traffic in which monthly drifted and month-to-month's scores lost their meaning
    store, summary, _ = shifted_run()
    # Then the report written flags monthly's drift and the month-to-month segment
    report = read_report(store, BUCKET, summary.report_json_key)
    flagged = {(v.constraint_check_type, v.feature_name, v.segment) for v in report.violations}
    assert (DATA_DRIFT, "monthly", OVERALL) in flagged
    assert any(kind == SEGMENT_DEGRADATION and seg == "contract=Month-to-month" for kind, _, seg in flagged)
    # And nothing else drifted, and no other contract degraded (senior's values each hold half month-to-month
    # rows, so they may rightly degrade too: the segments cross)
    assert {name for kind, name, _ in flagged if kind == DATA_DRIFT} == {"monthly"}
    contracts = {seg for kind, _, seg in flagged if kind == SEGMENT_DEGRADATION and seg.startswith("contract=")}
    assert contracts == {"contract=Month-to-month"}
    assert summary.violations == len(report.violations) == len(summary.alerts)


def test_a_run_writes_one_report_a_pointer_and_its_metrics() -> None:
    store, summary, emf = shifted_run()
    # Then one report (JSON and HTML) under the run id of 12:00 (hourly schedule), and latest.json pointing at it
    assert summary.run_id == "20261120T1200Z"
    assert sorted(store.keys(BUCKET, lake.report_prefix(USECASE))) == sorted(
        [summary.report_json_key, summary.report_html_key, lake.latest_report_key(USECASE)]
    )
    assert read_latest(store, BUCKET, USECASE) == summary
    assert store.body(BUCKET, summary.report_html_key).startswith(b"<!")
    # And EMF documents were printed, one JSON object a line
    documents = [json.loads(line) for line in emf.splitlines()]
    assert documents
    assert all("_aws" in document for document in documents)


def test_the_same_run_twice_rewrites_the_same_keys_and_joins_nothing_twice() -> None:
    # Given a run done once
    store = lake_with_traffic(shifted=False, hours=2, rows_per_hour=300)
    first = service(store).run(NOW)
    joined = {k: store.body(BUCKET, k) for k in store.keys(BUCKET, lake.joined_prefix(USECASE))}
    keys = store.keys(BUCKET, lake.monitoring_prefix(USECASE))
    # When it runs again in the same slot (a retried invocation, 20 minutes later)
    second = service(store).run(NOW + timedelta(minutes=20))
    # Then the same keys, the joined set byte for byte, every label joined once
    assert second.run_id == first.run_id
    assert store.keys(BUCKET, lake.monitoring_prefix(USECASE)) == keys
    assert {k: store.body(BUCKET, k) for k in joined} == joined
    rows = [line for k in joined if k.endswith(lake.JOINED_FILE) for line in joined[k].splitlines() if line.strip()]
    assert len(rows) == 300  # 2 hours x 300 rows, every other one labeled
    assert len({json.loads(line)["request_id"] for line in rows}) == len(rows)


def test_the_training_baseline_lines_up_with_the_monitors_segment_cells() -> None:
    # Given a baseline built by the training job (segment values spelled by segment_value: senior "0"/"1")
    store, summary, _ = shifted_run()
    report = read_report(store, BUCKET, summary.report_json_key)
    # Then every baseline segment value has cells over the window's labels, none of them empty
    cells = {c.segment: c.n for c in report.cells if c.metric == "auc" and c.window == "last 6 h"}
    assert set(cells) == {OVERALL, *(f"contract={c}" for c in CONTRACTS), "senior=0", "senior=1"}
    assert all(n > 0 for n in cells.values())
    assert cells["senior=0"] + cells["senior=1"] == cells[OVERALL]


def test_a_version_without_a_baseline_is_monitored_for_data_quality_only_with_the_reason() -> None:
    # Given a champion whose package predates baselines
    store = lake_with_traffic(shifted=False, hours=1, rows_per_hour=300)
    summary = service(store, champion=ref(7, OLD_PACKAGE)).run(NOW)
    report = read_report(store, BUCKET, summary.report_json_key)
    # Then no tests, the data quality of the traffic, and the reason in the notes
    assert report.cells == []
    assert report.data_quality
    assert any("registered without a baseline" in note for note in report.notes)
    assert summary.models == ["v7 (champion, no baseline)"]


def test_the_run_id_is_the_schedule_slot_and_names_other_windows() -> None:
    assert run_id_for(NOW, schedule_minutes=15, windows_hours=(1, 6), declared=(1, 6)) == "20261120T1215Z"
    assert run_id_for(NOW, schedule_minutes=60, windows_hours=(6,), declared=(1, 6)) == "20261120T1200Z-w6"
    assert (
        run_id_for(NOW, schedule_minutes=60, windows_hours=(0.05, 1.5), declared=(1, 6)) == "20261120T1200Z-w3min-1.5"
    )
    assert run_id_for(NOW, schedule_minutes=60, windows_hours=(47 / 3600,), declared=(1, 6)) == "20261120T1200Z-w47s"
    assert [window_name(h) for h in (6, 1.5, 0.05, 47 / 3600)] == ["last 6 h", "last 1.5 h", "last 3 min", "last 47 s"]


def test_events_of_the_schedule_and_of_the_cli_are_understood() -> None:
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-20T12:00:00Z"}
    assert parse_monitor_event(scheduled).now == datetime(2026, 11, 20, 12, tzinfo=UTC)
    request = parse_monitor_event({"window_hours": [6], "now": "2026-11-20T12:17:00+00:00"})
    assert (request.now, request.windows_hours) == (NOW, (6.0,))
    assert parse_monitor_event({}, clock=NOW).now == NOW
    for bad in ({"window_hours": [-1]}, {"window_hours": ["x"]}, {"now": "yesterday"}, []):
        with pytest.raises(MonitoringRequestError):
            parse_monitor_event(bad)
