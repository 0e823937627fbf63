"""A backfill run on the state machine (``infra/backfill.py``): plan → Distributed Map of objects → finish.

* :func:`plan_run` (the ``Plan`` state) refuses a contract version the deployed use-case file does not carry,
  plans over the live manifests and writes the objects still to do as a JSON array, the map's items
  (``backfill-runs/{usecase}/contract={v}/{run}/items.json``).
* Each item is one invocation of the backfill function (idempotent per object); a failure the map's retries do
  not absorb is caught and written under the run's ``failures/``.
* :func:`finish_run` (the ``Finish`` state) re-plans, reads the run's failures and, when every object is
  reconciled or native, switches training's curated set (unless the run asked not to); otherwise it raises
  :class:`~shared.backfill.exceptions.BackfillIncompleteError` with the reason, which fails the execution.

Execution names are deterministic (:func:`execution_name`): one use case and contract version is one name, and
a later run of the same command (to resume or to pick up new objects) is the next run number.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.backfill.exceptions import BackfillError, BackfillIncompleteError
from shared.backfill.service import (
    AuditLog,
    BackfillPlan,
    ObjectState,
    plan_backfill,
    require_version,
    switch_curated_set,
)
from shared.lake import layout as lake
from shared.lake.adapters import ObjectStore

if TYPE_CHECKING:
    from shared.usecase.settings import UseCase

EXECUTION_NAME_LIMIT = 80
"""Step Functions' limit on an execution name."""
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class RunStore(ObjectStore, Protocol):
    """The lake as a run uses it (:class:`~shared.lake.adapters.S3ObjectStore`): ingest's store, plus bytes."""

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None: ...


def execution_name(usecase: str, contract_version: str, run_number: int = 1) -> str:
    """``backfill-telco_churn-1_1_0`` for the first run, ``…-r2`` for the second (names allow no dots)."""
    if run_number < 1:
        raise BackfillError(f"a run number starts at 1, not {run_number}")
    base = _NAME_UNSAFE.sub("_", f"backfill-{usecase}-{contract_version}")
    suffix = "" if run_number == 1 else f"-r{run_number}"
    return f"{base[: EXECUTION_NAME_LIMIT - len(suffix)]}{suffix}"


class RunRequest(BaseModel):
    """The execution's input (what ``python -m cli backfill`` starts)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    contract_version: str = Field(min_length=1)
    run: str = Field(min_length=1, max_length=EXECUTION_NAME_LIMIT)
    """The execution name: the run's folder in the lake."""
    switch: bool = True
    """Switch training's curated set when every object reconciles."""
    requested_by: str = "state machine"


class PlannedRun(BaseModel):
    """What the plan step hands on: where the items are and how many; the map reads ``items_key``."""

    model_config = ConfigDict(frozen=True)

    usecase: str
    contract_version: str
    run: str
    switch: bool
    requested_by: str
    items_key: str
    objects: int = Field(ge=0)
    """Every ingested object of the use case."""
    to_run: int = Field(ge=0)
    """Items of this run (pending or mismatched objects)."""


class RunSummary(BaseModel):
    """Where the curated set of the version stands after a run: the finish step's output."""

    model_config = ConfigDict(frozen=True)

    usecase: str
    contract_version: str
    run: str
    objects: int
    reconciled: int
    native: int
    pending: int
    mismatched: int
    rows_in: int
    rows_curated: int
    rows_quarantined: int
    failures: dict[str, str] = Field(default_factory=dict)
    """Objects of this run that failed (source key → error), as the map's ``Catch`` recorded them."""
    switched: bool = False
    reason: str = ""


def plan_run(request: RunRequest, *, usecase: UseCase, store: RunStore, lake_bucket: str) -> PlannedRun:
    """Refuse a version the use-case file does not carry; write the run's items (objects not done yet)."""
    require_version(usecase, request.contract_version)
    plan = plan_backfill(
        usecase=usecase.name, contract_version=request.contract_version, store=store, lake_bucket=lake_bucket
    )
    items = [
        {
            "manifest_key": o.manifest_key,
            "contract_version": request.contract_version,
            "object_id": o.object_id,
            "source_key": o.source_key,
        }
        for o in plan.to_run
    ]
    key = lake.backfill_items_key(usecase.name, request.contract_version, request.run)
    store.put_bytes(lake_bucket, key, json.dumps(items).encode(), content_type="application/json")
    return PlannedRun(
        usecase=usecase.name,
        contract_version=request.contract_version,
        run=request.run,
        switch=request.switch,
        requested_by=request.requested_by,
        items_key=key,
        objects=len(plan.objects),
        to_run=len(items),
    )


def read_failures(store: RunStore, lake_bucket: str, usecase: str, contract_version: str, run: str) -> dict[str, str]:
    """The run's failed objects (source key → ``error: message``), from the documents its ``Catch`` wrote."""
    prefix = f"{lake.backfill_run_prefix(usecase, contract_version, run)}{lake.BACKFILL_FAILURES_DIR}"
    found: dict[str, str] = {}
    for key in store.list_keys(lake_bucket, prefix):
        document = json.loads(store.get_bytes(lake_bucket, key))
        item = document.get("item") or {}
        error, cause = document.get("error", "?"), cause_message(document.get("cause"))
        found[str(item.get("source_key") or key)] = f"{error}: {cause}"
    return found


def summarize(plan: BackfillPlan, run: str, failures: dict[str, str]) -> RunSummary:
    """Counts by state, rows under the version (reconciled and native objects), and the reason."""
    states = [o.state for o in plan.objects]
    done = [o for o in plan.objects if o.done]
    summary = RunSummary(
        usecase=plan.usecase,
        contract_version=plan.contract_version,
        run=run,
        objects=len(states),
        reconciled=states.count(ObjectState.RECONCILED),
        native=states.count(ObjectState.NATIVE),
        pending=states.count(ObjectState.PENDING),
        mismatched=states.count(ObjectState.MISMATCHED),
        rows_in=sum(o.rows_in for o in done),
        rows_curated=sum(o.rows_curated for o in done),
        rows_quarantined=sum(o.rows_quarantined for o in done),
        failures=failures,
    )
    if not plan.objects:
        reason = f"{plan.usecase!r} has no ingested object to backfill under contract {plan.contract_version}"
    elif plan.reconciled:
        reason = f"every object of {plan.usecase!r} is reconciled under contract {plan.contract_version}"
    else:
        left = [
            f"{o.source_key} ({o.state.value}{': ' + o.reason if o.reason else ''})"
            for o in plan.to_run
            if o.source_key not in failures
        ]
        named = [f"{source}: {error}" for source, error in sorted(failures.items())] + left
        reason = (
            f"{len(plan.to_run)} of {len(plan.objects)} objects are not reconciled under contract "
            f"{plan.contract_version}: " + "; ".join(named[:10]) + (" …" if len(named) > 10 else "")
        )
    return summary.model_copy(update={"reason": reason})


def finish_run(
    planned: PlannedRun,
    *,
    store: RunStore,
    lake_bucket: str,
    audit: AuditLog,
    now: datetime | None = None,
) -> RunSummary:
    """Re-plan; switch (``planned.switch``) when every object reconciles; else raise with the reason.

    Raises :class:`BackfillIncompleteError` (the pointer untouched) when an object is pending or mismatched.
    """
    plan = plan_backfill(
        usecase=planned.usecase, contract_version=planned.contract_version, store=store, lake_bucket=lake_bucket
    )
    failures = read_failures(store, lake_bucket, planned.usecase, planned.contract_version, planned.run)
    summary = summarize(plan, planned.run, failures)
    if not plan.reconciled:
        raise BackfillIncompleteError(summary.reason, tuple(o.source_key for o in plan.to_run))
    if not planned.switch:
        return summary
    switch_curated_set(
        usecase=planned.usecase,
        contract_version=planned.contract_version,
        store=store,
        lake_bucket=lake_bucket,
        audit=audit,
        actor=planned.requested_by,
        now=now,
    )
    return summary.model_copy(update={"switched": True})


def cause_message(cause: Any) -> str:
    """A Lambda task's cause is its error payload as JSON text; its ``errorMessage`` says why."""
    if isinstance(cause, str):
        try:
            payload = json.loads(cause)
        except json.JSONDecodeError:
            return cause
        if isinstance(payload, dict) and payload.get("errorMessage"):
            return str(payload["errorMessage"])
    return str(cause)
