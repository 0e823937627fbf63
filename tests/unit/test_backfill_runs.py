"""A backfill run's pure parts: its execution names, and the finish step's summary and reason."""

from __future__ import annotations

import json

import pytest

from shared.backfill.exceptions import BackfillError
from shared.backfill.runs import EXECUTION_NAME_LIMIT, cause_message, execution_name, summarize
from shared.backfill.service import BackfillPlan, ObjectBackfill, ObjectState


def _object(name: str, state: ObjectState, rows: tuple[int, int, int] = (10, 8, 2), reason: str = "") -> ObjectBackfill:
    return ObjectBackfill(
        manifest_key=f"manifests/uc/{name}.json",
        object_id=name,
        source_key=f"raw/{name}.csv",
        state=state,
        rows_in=rows[0],
        rows_curated=rows[1],
        rows_quarantined=rows[2],
        reason=reason,
    )


def test_execution_names_are_deterministic_per_use_case_version_and_run() -> None:
    # Given a use case and version, When runs are named, Then the first is bare and later ones numbered; no dots
    assert execution_name("telco_churn", "1.1.0") == "backfill-telco_churn-1_1_0"
    assert execution_name("telco_churn", "1.1.0", 2) == "backfill-telco_churn-1_1_0-r2"
    assert execution_name("telco_churn", "1.1.0") != execution_name("telco_churn", "1.10.0")
    # And a long use-case name is cut so the run number still fits Step Functions' limit
    long = execution_name("u" * 90, "1.0.0", 12)
    assert len(long) == EXECUTION_NAME_LIMIT
    assert long.endswith("-r12")
    with pytest.raises(BackfillError):
        execution_name("telco_churn", "1.1.0", 0)


def test_a_reconciled_plan_sums_rows_of_backfilled_and_native_objects() -> None:
    # Given one backfilled and one native object
    plan = BackfillPlan(
        usecase="uc",
        contract_version="1.1.0",
        objects=(_object("a", ObjectState.RECONCILED), _object("b", ObjectState.NATIVE, (5, 5, 0))),
    )

    # When summarized, Then rows in = curated + quarantined over both, and the reason says reconciled
    summary = summarize(plan, "run-1", {})
    assert (summary.objects, summary.reconciled, summary.native) == (2, 1, 1)
    assert (summary.rows_in, summary.rows_curated, summary.rows_quarantined) == (15, 13, 2)
    assert summary.reason == "every object of 'uc' is reconciled under contract 1.1.0"


def test_an_incomplete_plan_names_the_failures_and_the_objects_left() -> None:
    # Given a failed object (recorded by the map) and a mismatched one
    plan = BackfillPlan(
        usecase="uc",
        contract_version="1.1.0",
        objects=(
            _object("a", ObjectState.PENDING),
            _object("b", ObjectState.MISMATCHED, reason="rows in 9 under contract 1.1.0, 10 at ingest"),
            _object("c", ObjectState.RECONCILED),
        ),
    )
    cause = json.dumps({"errorMessage": "the raw version expired"})

    # When summarized, Then the reason names each, and the failure's Lambda cause is read to its message
    summary = summarize(plan, "run-1", {"raw/a.csv": f"StorageError: {cause_message(cause)}"})
    assert (summary.pending, summary.mismatched, summary.reconciled) == (1, 1, 1)
    assert summary.reason == (
        "2 of 3 objects are not reconciled under contract 1.1.0: raw/a.csv: StorageError: the raw version expired; "
        "raw/b.csv (mismatched: rows in 9 under contract 1.1.0, 10 at ingest)"
    )
    # And only reconciled objects count as rows under the version
    assert summary.rows_in == 10
