"""Retraining from evidence: the decision (cooldown, one run at a time, start), its audit and its notification."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.lake.adapters import StoredObject
from shared.monitoring.alarms import check_of_alarm, monitoring_alarm_name, monitoring_alarm_prefix
from shared.monitoring.types import DATA_DRIFT, SEGMENT_DEGRADATION
from shared.training.retrain import (
    ACTOR,
    RETRAIN_SKIPPED,
    RETRAIN_STARTED,
    TRIGGER,
    decide_retrain,
    notification,
    retrain_execution_name,
    retrain_on_alarm,
)
from shared.training.retrain_adapters import latest_alerts

USECASE = "telco_churn"
ALARM = monitoring_alarm_name(USECASE, SEGMENT_DEGRADATION)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
COOLDOWN = timedelta(hours=24)


class InMemoryRuns:
    def __init__(self, running: list[str] | None = None, existing: set[str] | None = None) -> None:
        self.in_progress = list(running or [])
        self.existing = set(existing or ())
        self.started: list[tuple[str, dict[str, Any]]] = []

    def running(self) -> list[str]:
        return list(self.in_progress)

    def start(self, name: str, document: dict[str, Any]) -> bool:
        if name in self.existing:
            return False
        self.existing.add(name)
        self.started.append((name, document))
        return True


class InMemoryAudit:
    def __init__(self, last: datetime | None = None) -> None:
        self.last = last
        self.events: list[dict[str, Any]] = []

    def last_started(self, usecase: str) -> datetime | None:
        return self.last

    def record(self, usecase: str, event: dict[str, Any], *, at: datetime) -> None:
        self.events.append(event)
        if event["action"] == RETRAIN_STARTED:
            self.last = at


def _decide(*, last_started: datetime | None = None, in_progress: tuple[str, ...] = ()) -> Any:
    return decide_retrain(
        usecase=USECASE,
        alarm_name=ALARM,
        alarm_time=NOW,
        now=NOW,
        last_started=last_started,
        in_progress=in_progress,
        cooldown=COOLDOWN,
    )


def test_an_alarm_with_no_recent_run_and_none_in_progress_starts_one() -> None:
    # Given no run started by monitoring and none in progress / When an alarm arrives
    decision = _decide()
    # Then a run starts, named after the alarm's time
    assert decision.action == RETRAIN_STARTED
    assert decision.execution_name == "telco-churn-retrain-20261123t120000"


def test_an_alarm_inside_the_cooldown_is_skipped_until_its_end() -> None:
    # Given a run monitoring started 3 hours ago
    last = NOW - timedelta(hours=3)
    # When an alarm arrives
    decision = _decide(last_started=last, in_progress=("other",))
    # Then it is skipped, and the reason says until when (the cooldown is checked first)
    assert decision.action == RETRAIN_SKIPPED
    assert decision.cooldown_until == last + COOLDOWN
    assert "cooldown" in decision.reason
    assert (last + COOLDOWN).isoformat() in decision.reason


def test_an_alarm_after_the_cooldown_while_a_run_is_in_progress_is_skipped() -> None:
    # Given a run started long ago, and a training execution in progress
    decision = _decide(last_started=NOW - timedelta(hours=25), in_progress=("telco-churn-data-20261123t1100",))
    # Then the alarm starts nothing, and says which run is in progress
    assert decision.action == RETRAIN_SKIPPED
    assert decision.in_progress == ("telco-churn-data-20261123t1100",)
    assert "telco-churn-data-20261123t1100" in decision.reason


def test_every_decision_is_audited_and_only_the_first_of_two_alarms_starts_a_run() -> None:
    # Given no run
    runs, audit = InMemoryRuns(), InMemoryAudit()
    # When two alarms arrive an hour apart
    first = retrain_on_alarm(runs, audit, usecase=USECASE, alarm_name=ALARM, alarm_time=NOW, now=NOW, cooldown=COOLDOWN)
    later = NOW + timedelta(hours=1)
    second = retrain_on_alarm(
        runs, audit, usecase=USECASE, alarm_name=ALARM, alarm_time=later, now=later, cooldown=COOLDOWN
    )
    # Then one run started, with the monitoring trigger, and both decisions are in the audit history
    assert [name for name, _ in runs.started] == [first.execution_name]
    assert runs.started[0][1]["trigger"] == TRIGGER
    assert second.action == RETRAIN_SKIPPED
    assert [event["action"] for event in audit.events] == [RETRAIN_STARTED, RETRAIN_SKIPPED]
    assert {event["actor"] for event in audit.events} == {ACTOR}
    assert audit.events[0]["execution_name"] == first.execution_name


def test_a_redelivered_alarm_finds_its_execution_and_starts_nothing() -> None:
    # Given the alarm's execution already exists (the event was delivered twice)
    runs = InMemoryRuns(existing={retrain_execution_name(USECASE, NOW)})
    audit = InMemoryAudit()
    # When the alarm arrives again
    decision = retrain_on_alarm(
        runs, audit, usecase=USECASE, alarm_name=ALARM, alarm_time=NOW, now=NOW, cooldown=COOLDOWN
    )
    # Then nothing starts, and the skip is audited
    assert decision.action == RETRAIN_SKIPPED
    assert runs.started == []
    assert "already exists" in audit.events[0]["reason"]


def test_alarm_names_are_recognized_by_their_check() -> None:
    assert monitoring_alarm_name(USECASE, DATA_DRIFT) == "sluice-telco-churn-monitoring-data-drift"
    assert ALARM.startswith(monitoring_alarm_prefix(USECASE))
    assert check_of_alarm(USECASE, ALARM) == SEGMENT_DEGRADATION
    assert check_of_alarm(USECASE, "sluice-telco-churn-candidate-error-rate") is None


class InMemoryReports:
    def __init__(self, reports: dict[str, tuple[datetime, dict[str, Any]]]) -> None:
        self.reports = reports

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        return [StoredObject(key, at) for key, (at, _) in self.reports.items() if key.startswith(prefix)]

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return json.dumps(self.reports[key][1]).encode()


def test_the_notification_carries_the_newest_reports_sentences_of_the_alarms_check_first() -> None:
    # Given two reports, the newer with a drift and a segment alert
    sentence = "AUC on contract=Month-to-month fell from 0.755 (n=612) to 0.61 (n=812) over the last 6 h; q = 0.0004"
    older = {"violations": [{"constraint_check_type": DATA_DRIFT, "description": "old"}]}
    newer = {
        "violations": [
            {"constraint_check_type": DATA_DRIFT, "description": "tenure drifted"},
            {"constraint_check_type": SEGMENT_DEGRADATION, "description": sentence},
        ]
    }
    store = InMemoryReports(
        {
            f"monitoring/{USECASE}/reports/a/report.json": (NOW - timedelta(hours=1), older),
            f"monitoring/{USECASE}/reports/b/report.json": (NOW, newer),
            f"monitoring/{USECASE}/reports/b/report.html": (NOW, {}),
        }
    )
    # When the alerts of a segment-degradation alarm are read and the message is written
    alerts = latest_alerts(store, "lake", USECASE, check=SEGMENT_DEGRADATION)
    message = notification(USECASE, _decide(), alerts.sentences, alerts.report_key)
    # Then the newest report's sentences come, the alarm's check first, with the report's place
    assert alerts.sentences == [sentence, "tenure drifted"]
    assert alerts.report_key == f"s3://lake/monitoring/{USECASE}/reports/b/report.json"
    assert sentence in message
    assert "Retraining started" in message


def test_no_report_yet_still_gives_a_notification() -> None:
    alerts = latest_alerts(InMemoryReports({}), "lake", USECASE)
    assert alerts.report_key is None
    assert alerts.sentences == []
    assert "No monitoring report" in notification(USECASE, _decide(), alerts.sentences, alerts.report_key)
