"""Backfill under a new contract version: re-ingest the retained raw objects into a versioned curated set.

The live manifests (``manifests/{usecase}/{object_id}.json``) are the ledger of every object version ingest
read; the raw bucket is versioned, so each one can be read again. For a new contract version ``V``:

* :func:`plan_backfill` lists the live manifests and says, per object, where it stands under ``V``:
  *pending* (not backfilled), *reconciled*, *mismatched* (backfilled, but its rows in differ from what
  ingest counted) or *native* (ingested live under ``V``: nothing to backfill).
* :func:`backfill_object` re-ingests one object version with :func:`shared.ingest.service.ingest_object`
  into ``contract=V/`` folders, with its **original** ingest time, so every row keeps its ``_ingested_at``
  (the training set's point in time holds) and its ingest date. The per-object record is that ingest's
  manifest under ``manifests/{usecase}/contract=V/``, written last: when it exists the object is done and a
  re-run skips it; a run stopped half-way left no manifest for the object it was on, whose outputs (at the
  same deterministic keys) the next run overwrites, so resuming writes no duplicate row.
* :func:`switch_curated_set` moves the use case's pointer (:mod:`shared.lake.pointer`) to ``V`` in one PUT,
  only when every object is reconciled or native, and records the switch in the audit history. It is
  idempotent: switching again to the version already named records nothing new.

The live curated set is never written: every key of a backfill carries ``contract=V/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.backfill.exceptions import BackfillError, BackfillIncompleteError, ContractVersionMismatchError
from shared.ingest.service import SourceObject, ingest_object
from shared.lake import layout as lake
from shared.lake.manifest import Manifest
from shared.lake.pointer import CuratedPointer, read_pointer, write_pointer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shared.lake.adapters import ObjectStore
    from shared.usecase.settings import UseCase

SWITCH_ACTION = "curated_switch"
"""The audit event's ``action`` when training's curated set moves to another contract version."""


class AuditLog(Protocol):
    """Where the switch is recorded (:class:`~shared.deployment.adapters.DeploymentStore`)."""

    def append_event(self, usecase: str, event: Mapping[str, Any], *, at: datetime | None = None) -> str: ...

    def latest_event(self, usecase: str, *, action: str, scanned: int = 1000) -> dict[str, Any] | None: ...


class ObjectState(StrEnum):
    PENDING = "pending"
    """Not backfilled under the version yet."""
    RECONCILED = "reconciled"
    """Backfilled: rows in = ingest's rows in = curated + quarantined under the version."""
    MISMATCHED = "mismatched"
    """Backfilled, but its rows in differ from ingest's: rows lost or invented; blocks the switch."""
    NATIVE = "native"
    """Ingested live under the version already: nothing to backfill."""


class ObjectBackfill(BaseModel):
    """Where one ingested object version stands under a contract version."""

    model_config = ConfigDict(frozen=True)

    manifest_key: str
    """Its live ingest manifest."""
    object_id: str
    source_key: str
    state: ObjectState
    rows_in: int = Field(ge=0)
    """Rows in, as ingest counted them."""
    rows_curated: int = Field(default=0, ge=0)
    """Under the version (0 until backfilled)."""
    rows_quarantined: int = Field(default=0, ge=0)
    backfill_manifest_key: str | None = None
    skipped: bool = False
    """The object was already backfilled: this run wrote nothing for it."""
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.state in (ObjectState.RECONCILED, ObjectState.NATIVE)


class BackfillPlan(BaseModel):
    """Every ingested object of a use case and where it stands under ``contract_version``."""

    model_config = ConfigDict(frozen=True)

    usecase: str
    contract_version: str
    objects: tuple[ObjectBackfill, ...]

    @property
    def to_run(self) -> tuple[ObjectBackfill, ...]:
        """What a run still has to do (pending, and mismatched ones to look at again)."""
        return tuple(o for o in self.objects if not o.done)

    @property
    def reconciled(self) -> bool:
        """Every object reconciles (or needs no backfill): the switch may happen."""
        return bool(self.objects) and not self.to_run


def require_version(usecase: UseCase, contract_version: str) -> None:
    """The use-case file must carry the version asked for (the new contract)."""
    if usecase.contract.version != contract_version:
        raise ContractVersionMismatchError(
            f"the use-case file of {usecase.name!r} carries contract {usecase.contract.version}, not "
            f"{contract_version}: deploy (or pass) the use-case file with the new contract"
        )


def reconcile(original: Manifest, backfilled: Manifest) -> ObjectBackfill:
    """One backfilled object against ingest's manifest: rows in must be the same (each row curated or
    quarantined under the version, which the manifest's own check guarantees)."""
    key = lake.manifest_key(original.usecase, original.object_id)
    mismatch = backfilled.rows_in != original.rows_in
    return ObjectBackfill(
        manifest_key=key,
        object_id=original.object_id,
        source_key=original.source_key,
        state=ObjectState.MISMATCHED if mismatch else ObjectState.RECONCILED,
        rows_in=original.rows_in,
        rows_curated=backfilled.rows_curated,
        rows_quarantined=backfilled.rows_quarantined,
        backfill_manifest_key=lake.manifest_key(original.usecase, original.object_id, backfilled.contract_version),
        reason=(
            f"rows in {backfilled.rows_in} under contract {backfilled.contract_version}, {original.rows_in} at ingest"
            if mismatch
            else backfilled.reason
        ),
    )


def plan_backfill(*, usecase: str, contract_version: str, store: ObjectStore, lake_bucket: str) -> BackfillPlan:
    """Every live manifest of ``usecase`` and its state under ``contract_version``, in key order."""
    done = set(store.list_keys(lake_bucket, lake.manifest_prefix(usecase, contract_version)))
    objects = []
    for key in store.list_keys(lake_bucket, lake.manifest_prefix(usecase)):
        if not lake.is_live_manifest_key(usecase, key):
            continue
        original = _manifest(store, lake_bucket, key)
        backfill_key = lake.manifest_key(usecase, original.object_id, contract_version)
        if original.contract_version == contract_version:
            objects.append(_native(key, original))
        elif backfill_key in done:
            objects.append(reconcile(original, _manifest(store, lake_bucket, backfill_key)))
        else:
            objects.append(
                ObjectBackfill(
                    manifest_key=key,
                    object_id=original.object_id,
                    source_key=original.source_key,
                    state=ObjectState.PENDING,
                    rows_in=original.rows_in,
                )
            )
    return BackfillPlan(usecase=usecase, contract_version=contract_version, objects=tuple(objects))


def backfill_object(
    manifest_key: str, *, usecase: UseCase, store: ObjectStore, lake_bucket: str, workdir: Path
) -> ObjectBackfill:
    """Re-ingest the object version a live manifest names under the use case's contract version.

    Idempotent: an object already backfilled is read back, not written again (``skipped``). Raises
    :class:`BackfillError` for a key that is not a live manifest of the use case, and
    :class:`~shared.lake.exceptions.StorageError` when the store fails (the raw version is gone, an outage).
    """
    if not lake.is_live_manifest_key(usecase.name, manifest_key):
        raise BackfillError(f"{manifest_key!r} is not an ingest manifest of {usecase.name!r}")
    version = usecase.contract.version
    original = _manifest(store, lake_bucket, manifest_key)
    if original.contract_version == version:
        return _native(manifest_key, original)
    source = SourceObject(
        bucket=original.source_bucket,
        key=original.source_key,
        version_id=original.source_version_id,
        etag=original.source_etag,
        size=original.source_size,
    )
    if source.object_id != original.object_id:
        raise BackfillError(f"{manifest_key!r} names object {original.object_id}, its source is {source.object_id}")
    skipped = store.exists(lake_bucket, lake.manifest_key(usecase.name, original.object_id, version))
    backfilled = ingest_object(
        source,
        usecase=usecase,
        store=store,
        lake_bucket=lake_bucket,
        now=original.ingested_at,
        workdir=workdir,
        versioned=version,
    )
    return reconcile(original, backfilled).model_copy(update={"skipped": skipped})


def switch_curated_set(
    *,
    usecase: str,
    contract_version: str,
    store: ObjectStore,
    lake_bucket: str,
    audit: AuditLog,
    actor: str,
    now: datetime | None = None,
) -> CuratedPointer:
    """Point training at the curated set of ``contract_version``, when every object reconciles; record it.

    Raises :class:`BackfillIncompleteError` (the pointer untouched) when an object is pending or mismatched.
    """
    plan = plan_backfill(usecase=usecase, contract_version=contract_version, store=store, lake_bucket=lake_bucket)
    if not plan.reconciled:
        pending = tuple(f"{o.source_key} ({o.state.value}{': ' + o.reason if o.reason else ''})" for o in plan.to_run)
        raise BackfillIncompleteError(
            f"{len(pending)} of {len(plan.objects)} objects of {usecase!r} are not reconciled under contract "
            f"{contract_version}; the curated set stays where it is"
            if plan.objects
            else f"{usecase!r} has no ingested object to switch to contract {contract_version}",
            pending,
        )
    current = read_pointer(store, lake_bucket, usecase)
    when = (now or datetime.now(UTC)).astimezone(UTC)
    if current is not None and current.contract_version == contract_version:
        pointer = current
    else:
        pointer = CuratedPointer(
            usecase=usecase,
            contract_version=contract_version,
            previous_version=current.contract_version if current is not None else None,
            objects=len(plan.objects),
            switched_at=when,
            switched_by=actor,
        )
        write_pointer(store, lake_bucket, pointer)
    recorded = audit.latest_event(usecase, action=SWITCH_ACTION)
    if recorded is None or recorded.get("to_contract") != contract_version:
        backfilled = sum(1 for o in plan.objects if o.state is ObjectState.RECONCILED)
        audit.append_event(
            usecase,
            {
                "action": SWITCH_ACTION,
                "actor": actor,
                "from_contract": pointer.previous_version or "live",
                "to_contract": contract_version,
                "objects": len(plan.objects),
                "backfilled": backfilled,
                "pointer_key": lake.curated_pointer_key(usecase),
                "reason": f"training reads the curated set of contract {contract_version} "
                f"({backfilled} objects backfilled, {len(plan.objects) - backfilled} ingested under it)",
            },
            at=pointer.switched_at,
        )
    return pointer


def _manifest(store: ObjectStore, bucket: str, key: str) -> Manifest:
    return Manifest.model_validate_json(store.get_bytes(bucket, key))


def _native(key: str, original: Manifest) -> ObjectBackfill:
    return ObjectBackfill(
        manifest_key=key,
        object_id=original.object_id,
        source_key=original.source_key,
        state=ObjectState.NATIVE,
        rows_in=original.rows_in,
        rows_curated=original.rows_curated,
        rows_quarantined=original.rows_quarantined,
        skipped=True,
    )
