"""What `promote` shows while a promotion runs, from the execution history and the deployment state.

Pure functions over what the CLI polls: ``GetExecutionHistory`` events (dicts as boto3 returns them),
the :class:`~shared.deployment.state.DeploymentState` and the :class:`~shared.promotion.transitions.Promotion`
record. :class:`ProgressReport` remembers what it has shown and returns only the new lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.deployment.state import DeploymentState
from shared.promotion.transitions import Promotion

STATE_ENTERED_SUFFIX = "StateEntered"
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class StageVerdict:
    """One analysis the state machine kept (``$.verdict``): its stage, pass | fail | inconclusive, and why."""

    event_id: int
    stage: str
    verdict: str
    reason: str


def state_transitions(events: Iterable[Mapping[str, Any]]) -> int:
    """States entered so far: what Step Functions Standard bills (one transition per state entered)."""
    return sum(1 for event in events if str(event.get("type", "")).endswith(STATE_ENTERED_SUFFIX))


def verdicts(events: Iterable[Mapping[str, Any]]) -> list[StageVerdict]:
    """The analyses in the order the state machine received them (each task's ``$.verdict`` once)."""
    found: list[StageVerdict] = []
    for event in events:
        details = event.get("stateExitedEventDetails")
        if event.get("type") != "TaskStateExited" or not isinstance(details, Mapping):
            continue
        try:
            output = json.loads(details.get("output") or "{}")
        except json.JSONDecodeError:
            continue
        verdict = output.get("verdict") if isinstance(output, dict) else None
        if not isinstance(verdict, dict) or "verdict" not in verdict:
            continue
        item = StageVerdict(
            event_id=int(event.get("id", 0)),
            stage=str(verdict.get("stage", details.get("name", "?"))),
            verdict=str(verdict["verdict"]),
            reason=str(verdict.get("reason", "")),
        )
        if not found or (found[-1].stage, found[-1].verdict, found[-1].reason) != (
            item.stage,
            item.verdict,
            item.reason,
        ):
            found.append(item)
    return found


def serving(state: DeploymentState) -> str:
    """``stage shadow: v1 serves, v2 in shadow`` / ``stage canary: v2 at 5%`` / ``stage idle: v1 serves``."""
    champion = f"v{state.champion.version}" if state.champion else "no model"
    if state.challenger is None:
        return f"stage {state.stage}: {champion} serves"
    challenger = f"v{state.challenger.version}"
    if state.challenger_weight > 0:
        shadow = " (+ shadow)" if state.shadow else ""
        return f"stage {state.stage}: {challenger} at {state.challenger_weight:.0%}{shadow}, {champion} the rest"
    return f"stage {state.stage}: {champion} serves, {challenger} in shadow"


@dataclass
class ProgressReport:
    """New lines since the last :meth:`update` (stage and weight changes, verdicts, a pending decision)."""

    approve_hint: str = ""
    """How to answer a promotion waiting for a human (shown once per wait)."""
    _serving: str = ""
    _verdict_ids: set[int] = field(default_factory=set)
    _waiting: bool = False

    def update(
        self, state: DeploymentState, promotion: Promotion | None, events: Iterable[Mapping[str, Any]]
    ) -> list[str]:
        lines: list[str] = []
        for verdict in verdicts(events):
            if verdict.event_id not in self._verdict_ids:
                self._verdict_ids.add(verdict.event_id)
                lines.append(f"  {verdict.stage}: {verdict.verdict} — {verdict.reason}")
        now_serving = serving(state)
        if now_serving != self._serving:
            self._serving = now_serving
            lines.append(f"  {now_serving}")
        waiting = promotion is not None and bool(promotion.task_token)
        if waiting and not self._waiting:
            lines.append(f"  waiting for a human decision: {self.approve_hint}".rstrip(": "))
        self._waiting = waiting
        return lines
