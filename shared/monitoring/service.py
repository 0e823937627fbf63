"""One monitoring run: the served versions against their baselines over the declared windows, written to the lake.

:meth:`MonitoringService.run` does, in order:

1. the served versions from the deployment state (the champion, and the challenger if any), their packages and
   baselines — a version whose package has no baseline (or whose baseline cannot be read) is monitored for data
   quality only, and the report says why;
2. the label join of the feedback days the windows touch (:func:`land_joined_labels`, idempotent: a day is
   rebuilt whole, so a rerun never joins twice);
3. each window (only its partitions, :func:`read_window`), then :func:`run_monitor` over all of them as one family;
4. ``report.json`` and ``report.html`` under ``monitoring/<usecase>/reports/<run_id>/`` and the pointer
   ``reports/latest.json``; the EMF metrics printed to stdout (:func:`telemetry.publish`).

The run id is ``now`` truncated to the schedule (``MonitoringSettings.schedule_minutes``), e.g.
``20261120T1200Z`` for an hourly monitor at 12:17, plus ``-w1-6`` (``-w90s``, ``-w5min`` under an hour) when the
windows are not the declared ones: the
same run twice (a retried invocation, the CLI's ``--run`` in the same slot) overwrites one report. The windows
end at ``now`` itself, so a run started by hand sees the traffic of the minutes since the slot began.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TextIO

from shared.deployment.state import DeploymentState, ModelRef
from shared.exceptions import SluiceError
from shared.lake import layout as lake
from shared.monitoring import telemetry
from shared.monitoring.adapters import LakeStore, MonitoringLake, window_days
from shared.monitoring.exceptions import MonitoringError
from shared.monitoring.html import render_report
from shared.monitoring.labels import land_joined_labels, read_window
from shared.monitoring.monitor import run_monitor
from shared.monitoring.types import MonitoringReport, MonitorWindow, ServedModel, window_span
from shared.registry.service import read_baseline
from shared.scoring.telemetry import CHALLENGER, CHAMPION, SHADOW
from shared.usecase.settings import UseCase


class MonitoringRequestError(MonitoringError):
    """The event that starts a run is not a schedule tick nor a CLI request."""


class DeploymentReader(Protocol):
    """What the monitor needs of the deployment state (:class:`~shared.deployment.adapters.DeploymentStore`)."""

    def get(self, usecase: str) -> DeploymentState: ...


class PackageReader(Protocol):
    """What the monitor needs of the registry (:class:`~shared.registry.adapters.SageMakerRegistry`)."""

    def describe(self, package_arn: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MonitorRequest:
    """When a run is for, and over which windows (None: the use case's ``windows_hours``)."""

    now: datetime
    windows_hours: tuple[float, ...] | None = None


def parse_monitor_event(event: Any, *, clock: datetime | None = None) -> MonitorRequest:
    """An EventBridge Scheduled Event (its ``time``), or the CLI's ``{"window_hours": [..], "now": iso}``
    (both optional; ``now`` defaults to the clock)."""
    if not isinstance(event, dict):
        raise MonitoringRequestError(f"a monitor event is a JSON object, got {type(event).__name__}")
    at = event.get("now") or (event.get("time") if event.get("detail-type") == "Scheduled Event" else None)
    try:
        now = _utc(datetime.fromisoformat(str(at).replace("Z", "+00:00"))) if at else clock or datetime.now(UTC)
    except ValueError as exc:
        raise MonitoringRequestError(f"{at!r} is not an ISO 8601 time") from exc
    hours = event.get("window_hours")
    if hours is None:
        return MonitorRequest(now=now)
    values = hours if isinstance(hours, list) else [hours]
    try:
        windows = tuple(float(h) for h in values)
    except (TypeError, ValueError) as exc:
        raise MonitoringRequestError(f"window_hours must be numbers of hours, got {hours!r}") from exc
    if not windows or any(not math.isfinite(h) or h <= 0 for h in windows):
        raise MonitoringRequestError(f"window_hours must be positive numbers of hours, got {hours!r}")
    return MonitorRequest(now=now, windows_hours=windows)


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def run_id_for(
    now: datetime, *, schedule_minutes: int, windows_hours: Sequence[float], declared: Sequence[float]
) -> str:
    """``now`` truncated to the schedule's slot (``YYYYMMDDTHHMMZ``), ``-w<hours>`` when not the declared windows."""
    slot = timedelta(minutes=schedule_minutes)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + ((_utc(now) - epoch) // slot) * slot
    run_id = start.strftime("%Y%m%dT%H%MZ")
    if tuple(windows_hours) != tuple(declared):
        run_id += "-w" + "-".join(window_span(h) for h in windows_hours)
    return run_id


@dataclass(frozen=True)
class RunSummary:
    """What a run wrote and found: the handler's answer and ``latest.json``'s content."""

    usecase: str
    run_id: str
    generated_at: str
    bucket: str
    report_json_key: str
    report_html_key: str
    violations: int
    alerts: list[str] = field(default_factory=list)
    """The violations' sentences."""
    insufficient: int = 0
    windows_hours: list[float] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    """``v<version> (<variant>)`` of each monitored version, ``, no baseline`` when it has none."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def report_uri(self) -> str:
        return f"s3://{self.bucket}/{self.report_html_key}"


class MonitoringService:
    """One use case's monitoring runs, on the lake, the deployment state and the registry."""

    def __init__(
        self,
        usecase: UseCase,
        *,
        store: LakeStore,
        bucket: str,
        deployments: DeploymentReader,
        registry: PackageReader,
        metrics_out: TextIO | None = None,
    ) -> None:
        self._usecase = usecase
        self._store = store
        self._bucket = bucket
        self._lake = MonitoringLake(store, bucket)
        self._deployments = deployments
        self._registry = registry
        self._metrics_out = metrics_out

    def run(self, now: datetime, *, windows_hours: Sequence[float] | None = None) -> RunSummary:
        """One run (see the module docstring); the same slot and windows twice write the same keys."""
        usecase, settings = self._usecase, self._usecase.monitoring
        now = _utc(now)
        hours = tuple(windows_hours) if windows_hours else tuple(settings.windows_hours)
        run_id = run_id_for(now, schedule_minutes=settings.schedule_minutes, windows_hours=hours,
                            declared=settings.windows_hours)  # fmt: skip
        models = self.served_models()
        earliest = now - timedelta(hours=max(hours))
        land_joined_labels(
            self._lake,
            usecase=usecase.name,
            contract=usecase.contract,
            settings=settings,
            days=window_days(earliest, now),
        )
        windows = [self._window(now, h) for h in hours]
        report = run_monitor(usecase, now=now, models=models, windows=windows)
        if not models:
            report = report.model_copy(update={"notes": ["Nothing is deployed: no model version to monitor.",
                                                         *report.notes]})  # fmt: skip
        summary = self._write(report, run_id, hours)
        telemetry.publish(report, out=self._metrics_out)
        return summary

    def served_models(self) -> list[ServedModel]:
        """The champion and the challenger (shadow when it only shadows), each with its baseline or the reason
        it has none."""
        state = self._deployments.get(self._usecase.name)
        served: list[tuple[ModelRef, str]] = []
        if state.champion is not None:
            served.append((state.champion, CHAMPION))
        if state.challenger is not None and state.challenger.version != getattr(state.champion, "version", None):
            served.append((state.challenger, SHADOW if state.shadow and not state.challenger_weight else CHALLENGER))
        return [self._served(ref, variant) for ref, variant in served]

    def latest(self) -> RunSummary | None:
        """The last run's summary (``latest.json``), None before the first run."""
        return read_latest(self._store, self._bucket, self._usecase.name)

    # --- steps --------------------------------------------------------------------------------------------------

    def _served(self, ref: ModelRef, variant: str) -> ServedModel:
        version = str(ref.version)
        try:
            package = self._registry.describe(ref.package_arn)
            baseline = read_baseline(package, self._store)  # type: ignore[arg-type]
        except SluiceError as exc:
            return ServedModel(model_version=version, variant=variant, baseline=None, threshold=ref.threshold,
                               reason=f"its baseline cannot be read: {exc}")  # fmt: skip
        reason = "" if baseline is not None else "its package was registered without a baseline"
        return ServedModel(
            model_version=version, variant=variant, baseline=baseline, threshold=ref.threshold, reason=reason
        )

    def _window(self, now: datetime, hours: float) -> MonitorWindow:
        return read_window(
            self._lake,
            usecase=self._usecase.name,
            contract=self._usecase.contract,
            start=now - timedelta(hours=hours),
            end=now,
        )

    def _write(self, report: MonitoringReport, run_id: str, hours: Sequence[float]) -> RunSummary:
        name = self._usecase.name
        json_key, html_key = lake.report_json_key(name, run_id), lake.report_html_key(name, run_id)
        self._store.put_bytes(self._bucket, json_key, report.to_json().encode(), content_type="application/json")
        self._store.put_bytes(
            self._bucket, html_key, render_report(report).encode(), content_type="text/html; charset=utf-8"
        )
        summary = RunSummary(
            usecase=name,
            run_id=run_id,
            generated_at=report.generated_at,
            bucket=self._bucket,
            report_json_key=json_key,
            report_html_key=html_key,
            violations=len(report.violations),
            alerts=[violation.description for violation in report.violations],
            insufficient=len(report.insufficient()),
            windows_hours=list(hours),
            models=[
                f"v{m.model_version} ({m.variant}{'' if m.has_baseline else ', no baseline'})" for m in report.models
            ],
        )
        pointer = json.dumps(summary.to_json(), indent=2).encode()
        self._store.put_bytes(self._bucket, lake.latest_report_key(name), pointer, content_type="application/json")
        return summary


def read_latest(store: LakeStore, bucket: str, usecase: str) -> RunSummary | None:
    """``latest.json`` of a use case; None when no run has written one."""
    key = lake.latest_report_key(usecase)
    if key not in store.list_keys(bucket, key):
        return None
    return RunSummary(**json.loads(store.get_bytes(bucket, key)))


def read_report(store: LakeStore, bucket: str, key: str) -> MonitoringReport:
    return MonitoringReport.model_validate_json(store.get_bytes(bucket, key))
