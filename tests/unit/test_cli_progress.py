"""What `promote` prints while it follows a promotion: verdicts, stage and weight changes, a pending decision."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cli.progress import ProgressReport, serving, state_transitions, verdicts
from shared.deployment.state import DeploymentState, ModelRef
from shared.promotion.transitions import Promotion


def _ref(version: int) -> ModelRef:
    return ModelRef(
        version=version,
        package_arn=f"arn:aws:sagemaker:us-east-1:1:model-package/g/{version}",
        run_id=f"run-{version}",
        onnx_key=f"models/u/run-{version}/model.onnx",
        onnx_sha256="0" * 64,
        threshold=0.3,
    )


def _exited(event_id: int, name: str, verdict: dict[str, Any] | None) -> dict[str, Any]:
    output = {"model_package_arn": "arn", **({"verdict": verdict} if verdict else {})}
    return {
        "id": event_id,
        "type": "TaskStateExited",
        "stateExitedEventDetails": {"name": name, "output": json.dumps(output)},
    }


def _entered(event_id: int, kind: str, name: str) -> dict[str, Any]:
    return {"id": event_id, "type": f"{kind}StateEntered", "stateEnteredEventDetails": {"name": name}}


HISTORY = [
    {"id": 1, "type": "ExecutionStarted"},
    _entered(2, "Task", "Prepare"),
    _exited(3, "Prepare", None),
    _entered(4, "Task", "OfflineGate"),
    _exited(5, "OfflineGate", {"stage": "offline_gate", "verdict": "pass", "reason": "AUC fine"}),
    _entered(6, "Choice", "OfflineVerdict"),
    _entered(7, "Task", "Replay"),
    _exited(8, "Replay", {"stage": "replay", "verdict": "pass", "reason": "PSI 0.01"}),
    _entered(9, "Task", "StartShadow"),
    _exited(10, "StartShadow", {"stage": "replay", "verdict": "pass", "reason": "PSI 0.01"}),  # $.verdict carried on
]


def test_state_transitions_count_every_state_entered() -> None:
    assert state_transitions(HISTORY) == 5


def test_verdicts_are_each_analysis_once_in_order() -> None:
    found = verdicts(HISTORY)
    assert [(v.stage, v.verdict, v.reason) for v in found] == [
        ("offline_gate", "pass", "AUC fine"),
        ("replay", "pass", "PSI 0.01"),
    ]


def test_a_task_output_that_is_not_json_is_skipped() -> None:
    broken = {"id": 3, "type": "TaskStateExited", "stateExitedEventDetails": {"name": "X", "output": "{"}}
    assert verdicts([broken]) == []


def test_serving_describes_shadow_canary_and_champion_alone() -> None:
    champion, candidate = _ref(1), _ref(2)
    alone = DeploymentState(usecase="u", champion=champion)
    shadow = alone.model_copy(update={"stage": "shadow", "challenger": candidate, "shadow": True})
    canary = alone.model_copy(update={"stage": "canary", "challenger": candidate, "challenger_weight": 0.05})
    assert serving(alone) == "stage idle: v1 serves"
    assert serving(shadow) == "stage shadow: v1 serves, v2 in shadow"
    assert serving(canary) == "stage canary: v2 at 5%, v1 the rest"


def test_the_report_shows_only_what_is_new() -> None:
    # Given a report that has seen the gates and the shadow stage
    report = ProgressReport(approve_hint="`approve` or `abort`")
    state = DeploymentState(usecase="u", champion=_ref(1), challenger=_ref(2), shadow=True, stage="shadow")
    first = report.update(state, None, HISTORY)
    assert first == [
        "  offline_gate: pass — AUC fine",
        "  replay: pass — PSI 0.01",
        "  stage shadow: v1 serves, v2 in shadow",
    ]
    # When nothing changed, Then nothing is printed
    assert report.update(state, None, HISTORY) == []

    # When the promotion starts waiting for a human, Then that is said once
    promotion = Promotion(
        usecase="u",
        candidate=_ref(2),
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        stage_started_at=datetime(2025, 1, 1, tzinfo=UTC),
        task_token="t",
    )
    assert report.update(state, promotion, HISTORY) == ["  waiting for a human decision: `approve` or `abort`"]
    assert report.update(state, promotion, HISTORY) == []
