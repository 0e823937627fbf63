"""Starting training runs for new data: one per time bucket, none while one runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from shared.training.trigger import execution_name, start_for_new_data
from shared.usecase.settings import ModelKind, ModelSettings

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class FakeRuns:
    def __init__(self, running: list[str] | None = None) -> None:
        self._running = list(running or [])
        self.started: dict[str, dict[str, Any]] = {}

    def running(self) -> list[str]:
        return list(self._running)

    def start(self, name: str, document: dict[str, Any]) -> bool:
        if name in self.started:
            return False
        self.started[name] = document
        return True


def test_execution_names_are_training_job_names_shared_by_one_time_bucket() -> None:
    # Given two batches 2 minutes apart in one 5-minute bucket, and one in the next
    first = execution_name("telco_churn", datetime(2026, 11, 23, 0, 16, tzinfo=UTC), bucket_seconds=300)
    second = execution_name("telco_churn", datetime(2026, 11, 23, 0, 18, tzinfo=UTC), bucket_seconds=300)
    later = execution_name("telco_churn", datetime(2026, 11, 23, 0, 21, tzinfo=UTC), bucket_seconds=300)
    # Then the first two share a name, valid as a SageMaker training job name
    assert first == second == "telco-churn-data-20261123t0015"
    assert later != first
    assert JOB_NAME.match(first)


def test_a_batch_starts_one_run_and_a_redelivery_is_not_a_second() -> None:
    runs, now = FakeRuns(), datetime(2026, 11, 23, 0, 16, tzinfo=UTC)
    first = start_for_new_data(runs, usecase="telco_churn", now=now, bucket_seconds=300, manifest_keys=["a", "b"])
    again = start_for_new_data(runs, usecase="telco_churn", now=now, bucket_seconds=300, manifest_keys=["a", "b"])
    assert first.action == "started"
    assert again.action == "already_started"
    assert len(runs.started) == 1


def test_no_run_starts_while_one_is_running() -> None:
    runs = FakeRuns(running=["telco-churn-data-20261123t0000"])
    outcome = start_for_new_data(
        runs,
        usecase="telco_churn",
        now=datetime(2026, 11, 23, 0, 16, tzinfo=UTC),
        bucket_seconds=300,
        manifest_keys=["a"],
    )
    assert outcome.action == "skipped_running"
    assert runs.started == {}


def test_model_settings_default_by_kind() -> None:
    # Given a light and a heavy model with no instance types set
    light, heavy = ModelSettings(), ModelSettings(kind=ModelKind.HEAVY)
    # Then light trains on a CPU and has no endpoint; heavy trains on a GPU and gets one
    assert (light.training_instance_type, light.endpoint_instance_type) == ("ml.m5.large", None)
    assert (heavy.training_instance_type, heavy.endpoint_instance_type) == ("ml.g5.xlarge", "ml.g5.xlarge")
    assert (light.max_runtime_seconds, light.use_spot, light.min_auc, light.max_ece) == (3600, False, 0.7, 0.1)
    assert (light.schedule, light.debounce_seconds) == ("rate(7 days)", 300)
