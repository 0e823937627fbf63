"""Adapters of the retrain function: the audit history (the deployment table) and the latest monitoring report
(the lake), each over a client or store it is given."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.deployment.adapters import DeploymentStore
from shared.lake import layout as lake
from shared.lake.adapters import StoredObject
from shared.training.retrain import RETRAIN_STARTED


class DeploymentAudit:
    """:class:`~shared.training.retrain.RetrainAudit` on the deployment table's audit events."""

    def __init__(self, store: DeploymentStore) -> None:
        self._store = store

    def last_started(self, usecase: str) -> datetime | None:
        event = self._store.latest_event(usecase, action=RETRAIN_STARTED)
        return datetime.fromisoformat(str(event["at"])) if event else None

    def record(self, usecase: str, event: dict[str, Any], *, at: datetime) -> None:
        self._store.append_event(usecase, event, at=at)


class ReportStore(Protocol):
    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]: ...

    def get_bytes(self, bucket: str, key: str) -> bytes: ...


@dataclass(frozen=True)
class LatestAlerts:
    report_key: str | None
    sentences: list[str]


def latest_alerts(store: ReportStore, bucket: str, usecase: str, *, check: str | None = None) -> LatestAlerts:
    """The alert sentences (``violations[].description``) of the newest report, those of ``check`` first."""
    reports = [item for item in store.list_objects(bucket, lake.report_prefix(usecase)) if _is_report(item.key)]
    if not reports:
        return LatestAlerts(None, [])
    newest = max(reports, key=lambda item: (item.last_modified, item.key))
    document = json.loads(store.get_bytes(bucket, newest.key))
    violations = [v for v in document.get("violations", []) if isinstance(v, dict)]
    violations.sort(key=lambda v: v.get("constraint_check_type") != check)
    return LatestAlerts(f"s3://{bucket}/{newest.key}", [str(v.get("description", "")) for v in violations])


def _is_report(key: str) -> bool:
    return key.endswith(f"/{lake.REPORT_JSON_FILE}")
