"""The promotion service's own bookkeeping, on in-memory stores (no AWS).

A promotion's watch window can run out with nothing to end it (the scheduled check not yet run): the next
promotion's first step ends that watch and rewrites the old promotion's page before it starts the new one, so the
lake never keeps a page that says "watch window open" about a promotion that is final.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.deployment.exceptions import ConcurrentUpdateError
from shared.deployment.state import DeploymentState
from shared.lake import layout as lake
from shared.promotion.adapters import PromotionLake
from shared.promotion.exceptions import PromotionInProgressError
from shared.promotion.service import PromotionService
from shared.promotion.targets import LightTarget
from shared.promotion.transitions import (
    AuditEvent,
    Promotion,
    PromotionOutcome,
    Stage,
    enter_stage,
    promote,
    set_canary_weight,
    start,
    start_shadow,
)
from shared.usecase.settings import load_usecase
from tests.fakes import InMemoryObjectStore
from tests.unit.promotion_fixtures import EXECUTION, T0, USECASE, ref, serving

ROOT = Path(__file__).resolve().parents[2]
LAKE = "sluice-lake"
WATCH_SECONDS = 120
NEXT_EXECUTION = EXECUTION.replace("promote-v2", "promote-v3")


class InMemoryDeploymentTable:
    """The deployment table as the service uses it: the state (conditional on its revision), the promotion
    record and the audit log."""

    def __init__(self, state: DeploymentState, promotion: Promotion, events: list[AuditEvent]) -> None:
        self.state = state
        self.promotion: Promotion | None = promotion
        self.promotions_written: list[Promotion] = []
        self.log = [event.model_dump(mode="json") for event in events]

    # DeploymentStore
    def get(self, usecase: str) -> DeploymentState:
        return self.state

    def put(
        self, state: DeploymentState, *, expected_revision: int, updated_by: str = "", reason: str = ""
    ) -> DeploymentState:
        if self.state.revision != expected_revision:
            raise ConcurrentUpdateError(state.usecase, expected_revision)
        self.state = state.model_copy(update={"revision": expected_revision + 1, "updated_by": updated_by})
        return self.state

    def append_event(self, usecase: str, event: dict[str, Any], *, at: datetime | None = None) -> str:
        self.log.append(event)
        return f"event#{len(self.log)}"


class InMemoryPromotions:
    """The promotion record and audit events of the same table."""

    def __init__(self, table: InMemoryDeploymentTable) -> None:
        self.table = table

    def get(self, usecase: str) -> Promotion | None:
        return self.table.promotion

    def put(self, promotion: Promotion) -> None:
        self.table.promotion = promotion
        self.table.promotions_written.append(promotion)

    def events(self, usecase: str, *, since: datetime) -> list[AuditEvent]:
        events = [AuditEvent.model_validate(document) for document in self.table.log]
        return sorted((e for e in events if e.time >= since), key=lambda e: e.time)


class RegisteredPackages:
    """``DescribeModelPackage`` answers for versions 1 to 3, each naming its metrics.json in the lake."""

    def describe(self, package_arn: str) -> dict[str, Any]:
        version = int(package_arn.rsplit("/", 1)[-1])
        model = ref(version)
        return {
            "ModelPackageArn": model.package_arn,
            "ModelPackageVersion": version,
            "ModelPackageGroupName": "sluice-telco-churn",
            "CustomerMetadataProperties": {
                "run_id": model.run_id,
                "onnx_s3_key": model.onnx_key,
                "onnx_sha256": model.onnx_sha256,
            },
            "ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": f"s3://{LAKE}/{metrics_key(version)}"}}},
        }


class QuietMetrics:
    """CloudWatch with one p99 datapoint a minute for each variant."""

    def series(
        self, usecase: str, start: datetime, end: datetime, *, period: int = 60
    ) -> dict[str, list[tuple[datetime, float]]]:
        minutes = int((end - start).total_seconds() // 60) + 1
        points = [start.replace(second=0, microsecond=0) + timedelta(minutes=m) for m in range(minutes)]
        return {
            "p99 latency champion (ms)": [(p, 40.0) for p in points],
            "p99 latency challenger (ms)": [(p, 44.0) for p in points],
        }


class Untouched:
    """A collaborator this step must not use (any attribute read fails the test)."""


def metrics_key(version: int) -> str:
    return f"models/{USECASE}/run-{version}/metrics.json"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def promoted_with_its_watch_open() -> tuple[DeploymentState, Promotion, list[AuditEvent]]:
    """Version 2 promoted over version 1 at +100 s, watched for 120 s: the page written then says "watch open"."""
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    replay = enter_stage(begun.state, begun.promotion, Stage.REPLAY, now=at(1), actor="promotion")
    shadow = start_shadow(replay.state, replay.promotion, now=at(2), actor="promotion")
    canary = set_canary_weight(shadow.state, shadow.promotion, 0, (0.5, 1.0), now=at(40), actor="promotion")
    full = set_canary_weight(canary.state, canary.promotion, 1, (0.5, 1.0), now=at(70), actor="promotion")
    promoted = promote(full.state, full.promotion, now=at(100), actor="promotion", watch_window_seconds=WATCH_SECONDS)
    events = [t.event for t in (begun, replay, shadow, canary, full, promoted)]
    return promoted.state, promoted.promotion, events


def service_at(now: datetime, table: InMemoryDeploymentTable, store: InMemoryObjectStore) -> PromotionService:
    usecase = load_usecase(ROOT / "usecases" / f"{USECASE}.toml")
    return PromotionService(
        usecase=usecase,
        model_package_group="sluice-telco-churn",
        deployments=table,  # type: ignore[arg-type]
        promotions=InMemoryPromotions(table),  # type: ignore[arg-type]
        target=LightTarget(table),  # type: ignore[arg-type]
        registry=RegisteredPackages(),  # type: ignore[arg-type]
        lake=PromotionLake(store, LAKE),  # type: ignore[arg-type]
        metrics=QuietMetrics(),  # type: ignore[arg-type]
        notifier=Untouched(),  # type: ignore[arg-type]
        executions=Untouched(),  # type: ignore[arg-type]
        clock=lambda: now,
    )


def lake_with_metrics() -> InMemoryObjectStore:
    store = InMemoryObjectStore()
    for version in (1, 2, 3):
        store.put(LAKE, metrics_key(version), json.dumps({"threshold": {"threshold": 0.3}}).encode())
    return store


def test_a_new_promotion_after_the_watch_ran_out_rewrites_the_old_page_as_final_first() -> None:
    # Given version 2 promoted, its watch window over at +220 s, and nothing has ended it yet
    state, promotion, events = promoted_with_its_watch_open()
    table = InMemoryDeploymentTable(state, promotion, events)
    store = lake_with_metrics()
    old_page = lake.timeline_html_key(USECASE, promotion.execution_name)
    old_document = lake.timeline_json_key(USECASE, promotion.execution_name)
    assert promotion.watch_until == at(100 + WATCH_SECONDS)

    # When a promotion of version 3 starts at +300 s
    result = service_at(at(300), table, store).prepare(
        model_package_arn=ref(3).package_arn, requested_by="ana", execution_arn=NEXT_EXECUTION
    )

    # Then version 2's page is rewritten: promoted, final, ended when the new promotion came, with no new event on it
    document = store.json(LAKE, old_document)
    assert (document["execution"], document["outcome"], document["watch_open"]) == ("promote-v2", "promoted", False)
    assert document["end"] == at(300).isoformat()
    assert [(e["action"], e["stage"]) for e in document["stages"]][-2:] == [("promote", "watch"), ("stage", "idle")]
    page = store.body(LAKE, old_page).decode()
    assert "the promotion is final" in page
    assert "Watch window open" not in page
    # And it was written before the new promotion began (its last event is the watch's end, not the new start):
    # the old record ended, then the new one started
    assert [(p.candidate.version, p.outcome) for p in table.promotions_written] == [
        (2, PromotionOutcome.PROMOTED),
        (3, PromotionOutcome.RUNNING),
    ]
    assert (table.state.stage, table.state.champion.version) == (Stage.OFFLINE_GATE.value, 2)  # type: ignore[union-attr]
    assert result.extra["candidate_version"] == 3
    # And the new promotion wrote no page yet (its own is written when it finishes)
    assert not store.exists(LAKE, lake.timeline_html_key(USECASE, "promote-v3"))


def test_a_new_promotion_inside_the_watch_window_is_refused_and_rewrites_nothing() -> None:
    # Given version 2 promoted and still inside its watch window at +200 s
    state, promotion, events = promoted_with_its_watch_open()
    table = InMemoryDeploymentTable(state, promotion, events)
    store = lake_with_metrics()

    # When a promotion of version 3 is asked for, Then it is refused as a promotion in progress
    with pytest.raises(PromotionInProgressError, match="is running"):
        service_at(at(200), table, store).prepare(
            model_package_arn=ref(3).package_arn, requested_by="ana", execution_arn=NEXT_EXECUTION
        )

    # And version 2's page and record are left as they were
    assert store.writes == []
    assert table.promotion == promotion
