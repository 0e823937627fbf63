"""The promotion's orchestration: what each step of the state machine and the rollback function does.

Each step reads the deployment state and the promotion record, runs one transition or analysis, makes
it take effect through the :class:`~shared.promotion.targets.TrafficTarget`, records the promotion and
appends the audit event. Steps return :class:`StepResult` — the small JSON the state machine's Choice
states read (``verdict``: pass | fail | inconclusive, ``reason``, ``figures`` and per-step fields).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.deployment.adapters import DeploymentStore
from shared.deployment.exceptions import ConcurrentUpdateError
from shared.deployment.state import DeploymentState, ModelRef, model_ref_from_package
from shared.lake import layout as lake
from shared.promotion import analysis, offline
from shared.promotion.adapters import (
    Executions,
    LiveMetrics,
    Notifier,
    PackageRegistry,
    PromotionLake,
    PromotionStore,
    metrics_uri,
)
from shared.promotion.alarms import AlarmStateChange, is_candidate_alarm, is_watch_alarm
from shared.promotion.exceptions import (
    ForeignPackageError,
    InvalidTransitionError,
    MetricsError,
    NoPendingDecisionError,
    NoPromotionError,
    NotificationError,
    NotInWatchWindowError,
)
from shared.promotion.steps import DECISION_APPROVE
from shared.promotion.targets import TrafficTarget
from shared.promotion.timeline import DEFAULT_PERIOD_SECONDS as TIMELINE_PERIOD_SECONDS
from shared.promotion.timeline import render
from shared.promotion.transitions import (
    LIVE_STAGES,
    PRE_PROMOTION_STAGES,
    ROLLED_BACK,
    Action,
    AuditEvent,
    Promotion,
    PromotionOutcome,
    Stage,
    Transition,
    Verdict,
    await_human,
    end_watch,
    enter_stage,
    in_watch_window,
    promote,
    record_inconclusive,
    rollback,
    rollback_to_previous,
    set_canary_weight,
    start,
    start_shadow,
)
from shared.usecase.settings import UseCase

PROMOTION_ACTOR = "promotion"
ABORT_ERROR = "PromotionAborted"
ALARM_STOP_ERROR = "CandidateAlarm"
HUMAN_STOP_ERROR = "RolledBackByHand"
MAX_CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class StepResult:
    verdict: Verdict
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document = {"verdict": self.verdict.value, "reason": self.reason, "figures": self.figures, **self.extra}
        return json.loads(json.dumps(document, default=str))


@dataclass(frozen=True)
class AlarmResponse:
    """What the rollback function did about one alarm: ``rolled_back``, ``rolled_back_to_previous`` or ``ignored``."""

    action: str
    reason: str
    usecase: str

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "reason": self.reason, "usecase": self.usecase}


def _now() -> datetime:
    return datetime.now(UTC)


def cli_command(usecase: str, command: str) -> str:
    """How an operator runs a platform CLI command for ``usecase`` (its use-case file is ``usecases/<name>.toml``)."""
    return f"python -m cli --usecase usecases/{usecase}.toml {command}"


@dataclass(kw_only=True)
class PromotionService:
    usecase: UseCase
    model_package_group: str
    deployments: DeploymentStore
    promotions: PromotionStore
    target: TrafficTarget
    registry: PackageRegistry
    lake: PromotionLake
    metrics: LiveMetrics
    notifier: Notifier
    executions: Executions
    clock: Callable[[], datetime] = _now

    @property
    def name(self) -> str:
        return self.usecase.name

    @property
    def settings(self) -> Any:
        return self.usecase.promotion

    # --- plumbing -----------------------------------------------------------------------------
    def _read(self) -> tuple[DeploymentState, Promotion | None]:
        return self.deployments.get(self.name), self.promotions.get(self.name)

    def _running(self) -> tuple[DeploymentState, Promotion]:
        state, promotion = self._read()
        if promotion is None or promotion.outcome is not PromotionOutcome.RUNNING:
            raise NoPromotionError(f"no promotion of {self.name!r} is running")
        return state, promotion

    def _commit(self, before: DeploymentState, transition: Transition, *, write_state: bool = True) -> DeploymentState:
        """Traffic first (conditional on the state's revision), then the record, then the audit event."""
        written = before
        if write_state:
            written = self.target.apply(
                before, transition.state, updated_by=transition.event.actor, reason=transition.event.reason
            )
        self.promotions.put(transition.promotion)
        self._audit(transition.event)
        return written

    def _audit(self, event: AuditEvent) -> None:
        self.deployments.append_event(self.name, event.model_dump(mode="json"), at=event.time)

    def _package_metrics(self, ref_or_arn: ModelRef | str) -> tuple[dict[str, Any], dict[str, Any]]:
        arn = ref_or_arn if isinstance(ref_or_arn, str) else ref_or_arn.package_arn
        package = self.registry.describe(arn)
        return package, self.lake.metrics(metrics_uri(package))

    def _notify(self, subject: str, lines: list[str]) -> None:
        self.notifier.publish(f"[sluice] {self.name}: {subject}", "\n".join(lines))

    # --- the steps ----------------------------------------------------------------------------
    def prepare(self, *, model_package_arn: str, requested_by: str, execution_arn: str = "") -> StepResult:
        """The candidate's ModelRef from the registry; stage offline_gate. Refused while a promotion runs."""
        now = self.clock()
        state, promotion = self._read()
        if state.stage == Stage.WATCH and not in_watch_window(state, promotion, now) and promotion is not None:
            ended = end_watch(state, promotion, now=now, actor=PROMOTION_ACTOR)
            state = self._commit(state, ended)
            self._write_timeline(ended.promotion)  # the last promotion's page: promoted, its watch over
        package, metrics = self._package_metrics(model_package_arn)
        group = package.get("ModelPackageGroupName")
        if group and group != self.model_package_group:
            raise ForeignPackageError(f"{model_package_arn} is in group {group!r}, not {self.model_package_group!r}")
        candidate = model_ref_from_package(package, metrics)
        actor = requested_by if ":" in requested_by else f"cli:{requested_by}"
        transition = start(state, promotion, candidate, now=now, actor=actor, execution_arn=execution_arn)
        self._commit(state, transition)
        champion = state.champion.version if state.champion else None
        return StepResult(
            Verdict.PASS,
            f"promoting version {candidate.version} over {champion or 'no champion'}",
            extra={"candidate_version": candidate.version, "champion_version": champion, "usecase": self.name},
        )

    def _replay_records(self, limit: int) -> list[dict[str, Any]]:
        return [record.features for record in self.lake.recent_predictions(self.name, limit=limit)]

    def offline_gate(self) -> StepResult:
        """metrics.json against the champion's, and the candidate's offline p99 latency."""
        state, promotion = self._running()
        if state.stage != Stage.OFFLINE_GATE:
            raise InvalidTransitionError(f"the offline gate runs in stage offline_gate, not {state.stage!r}")
        contract = self.usecase.contract
        _, candidate_metrics = self._package_metrics(promotion.candidate)
        champion_metrics = self._package_metrics(state.champion)[1] if state.champion is not None else None
        records = self._replay_records(offline.LATENCY_RUNS) or offline.contract_records(contract)
        model = offline.load(promotion.candidate, self.lake.get_bytes(promotion.candidate.onnx_key), contract)
        latency = offline.latency_p99_ms(model, records, contract)
        verdict = analysis.offline_gate(candidate_metrics, champion_metrics, latency, self.settings)
        return StepResult(verdict.outcome, verdict.reason, verdict.figures, {"latency_records": len(records)})

    def replay(self) -> StepResult:
        """Recorded traffic (the prediction log) scored by both models: PSI and decision agreement."""
        state, promotion = self._running()
        state = self._commit(
            state, enter_stage(state, promotion, Stage.REPLAY, now=self.clock(), actor=PROMOTION_ACTOR)
        )
        if state.champion is None:
            return StepResult(Verdict.PASS, "no champion to compare with: replay skipped", extra={"samples": 0})
        contract = self.usecase.contract
        records = self._replay_records(self.settings.replay_max_records)
        candidate = offline.load(promotion.candidate, self.lake.get_bytes(promotion.candidate.onnx_key), contract)
        champion = offline.load(state.champion, self.lake.get_bytes(state.champion.onnx_key), contract)
        verdict = analysis.replay(
            offline.scores(candidate, records, contract),
            offline.scores(champion, records, contract),
            (promotion.candidate.threshold, state.champion.threshold),
            self.settings,
        )
        return StepResult(verdict.outcome, verdict.reason, verdict.figures, {"samples": len(records)})

    def start_shadow(self) -> StepResult:
        state, promotion = self._running()
        now = self.clock()
        self._commit(state, start_shadow(state, promotion, now=now, actor=PROMOTION_ACTOR))
        return StepResult(
            Verdict.PASS,
            f"version {promotion.candidate.version} scores in shadow",
            extra={"bake_seconds": self.settings.shadow_bake_seconds, "window_start": now.isoformat()},
        )

    def set_weight(self, step: int) -> StepResult:
        state, promotion = self._running()
        steps = tuple(self.settings.canary_steps)
        now = self.clock()
        self._commit(state, set_canary_weight(state, promotion, step, steps, now=now, actor=PROMOTION_ACTOR))
        last = step == len(steps) - 1
        return StepResult(
            Verdict.PASS,
            f"canary at {steps[step]:.0%} (step {step + 1} of {len(steps)})",
            extra={
                "step": step,
                "weight": steps[step],
                "last_step": last,
                "next_step": None if last else step + 1,
                "bake_seconds": self.settings.canary_bake_seconds,
                "window_start": now.isoformat(),
            },
        )

    def analyze(self, stage: Stage, window_start: datetime | None = None) -> StepResult:
        """A live stage's window from CloudWatch → verdict; an inconclusive one counts one more bake."""
        state, promotion = self._running()
        if stage not in LIVE_STAGES:
            raise InvalidTransitionError(f"only shadow and canary are analyzed live, not {stage!r}")
        if state.stage != stage:
            return StepResult(
                Verdict.FAIL,
                f"the deployment left stage {stage} (now {state.stage!r}); "
                f"{promotion.reason or 'rolled back meanwhile'}",
                extra={"next": "rollback", "extensions": promotion.extensions},
            )
        now = self.clock()
        window = self.metrics.window(self.name, stage, window_start or promotion.stage_started_at, now)
        if state.challenger_weight >= 1.0:
            window = window.model_copy(update={"champion_serves": False})
        if stage is Stage.SHADOW:
            window = window.model_copy(update={"candidate_beside_champion": True})
        verdict = analysis.live(window, self.settings)
        extensions = promotion.extensions
        next_step = {Verdict.PASS: "continue", Verdict.FAIL: "rollback"}.get(verdict.outcome, "bake_again")
        if verdict.outcome is Verdict.INCONCLUSIVE:
            transition = record_inconclusive(promotion, state, now=now, actor=PROMOTION_ACTOR, reason=verdict.reason)
            self._commit(state, transition, write_state=False)
            extensions += 1
            if extensions > self.settings.max_bake_extensions:
                next_step = "ask_human"
        return StepResult(
            verdict.outcome,
            verdict.reason,
            verdict.figures,
            {
                "next": next_step,
                "extensions": extensions,
                "max_extensions": self.settings.max_bake_extensions,
                "bake_seconds": self.settings.shadow_bake_seconds
                if stage is Stage.SHADOW
                else self.settings.canary_bake_seconds,
            },
        )

    def promote(self) -> StepResult:
        state, promotion = self._running()
        now = self.clock()
        transition = promote(
            state, promotion, now=now, actor=PROMOTION_ACTOR, watch_window_seconds=self.settings.watch_window_seconds
        )
        self._commit(state, transition)
        candidate = promotion.candidate
        self.registry.set_approval(
            candidate.package_arn, approved=True, reason=f"promoted ({promotion.execution_name})"
        )
        previous = state.champion.version if state.champion else None
        self._notify(
            f"version {candidate.version} promoted",
            [
                f"Version {candidate.version} now serves {self.name} (previously {previous or 'none'}).",
                f"Its alarms stay armed for {self.settings.watch_window_seconds} s; an alarm rolls back to "
                f"version {previous} in one step."
                if previous
                else "There is no previous champion to go back to.",
            ],
        )
        return StepResult(
            Verdict.PASS,
            f"version {candidate.version} promoted",
            extra={
                "champion_version": candidate.version,
                "previous_version": previous,
                "watch_seconds": self.settings.watch_window_seconds,
                "watch_until": transition.promotion.watch_until,
            },
        )

    def _reject(self, promotion: Promotion, reason: str) -> None:
        self.registry.set_approval(promotion.candidate.package_arn, approved=False, reason=reason)

    def rollback(self, reason: str, *, actor: str = PROMOTION_ACTOR, execution_arn: str = "") -> StepResult:
        """Traffic back to the champion (before promotion) or to the previous champion (watch window).

        Undoes only what ``execution_arn``'s promotion did (when given): a ``prepare`` refused because
        another promotion runs must not roll that one back. Idempotent: a promotion already rolled back
        (by an alarm, say) is left as it is.
        """
        now = self.clock()
        state, promotion = self._read()
        if promotion is None or promotion.outcome is not PromotionOutcome.RUNNING:
            already = promotion.reason if promotion is not None else "no promotion"
            return StepResult(Verdict.FAIL, f"already rolled back: {already}", extra={"already": True})
        if execution_arn and promotion.execution_arn and execution_arn != promotion.execution_arn:
            return StepResult(
                Verdict.FAIL,
                f"{reason} (the running promotion is {promotion.execution_name}'s; left alone)",
                extra={"already": True},
            )
        if state.stage == Stage.WATCH:
            transition = rollback_to_previous(state, promotion, now=now, actor=actor, reason=reason)
        else:
            transition = rollback(state, promotion, now=now, actor=actor, reason=reason)
        self._commit(state, transition)
        self._reject(promotion, reason)
        serving = transition.state.champion.version if transition.state.champion else None
        self._notify(
            f"version {promotion.candidate.version} rolled back",
            [f"Version {promotion.candidate.version} was rolled back: {reason}", f"Serving now: version {serving}."],
        )
        self._write_timeline(transition.promotion)
        return StepResult(Verdict.FAIL, reason, extra={"champion_version": serving, "already": False})

    def rollback_by_hand(self, *, actor: str, reason: str) -> StepResult:
        """An operator's one-step rollback (the CLI's ``rollback``), audited as ``actor``.

        During shadow or canary (or a gate): traffic back to the champion, the candidate rejected, and the
        promotion's execution stopped so that it bakes no further. During the watch window: the previous
        champion serves again. Refused when no promotion runs, or when its watch window is over.
        """
        state, promotion = self._running()
        if promotion.execution_arn and state.stage != Stage.WATCH:  # first: no further step starts
            self.executions.stop(promotion.execution_arn, error=HUMAN_STOP_ERROR, cause=f"{actor}: {reason}")
        return self.rollback(reason, actor=actor)

    def wait_for_human(self, task_token: str, reason: str = "") -> StepResult:
        """Keep the task token, tell the humans how to decide. The execution waits for SendTask{Success,Failure}."""
        state, promotion = self._running()
        why = reason or f"analysis of stage {state.stage} stayed inconclusive after {promotion.extensions} bakes"
        transition = await_human(promotion, state, task_token, now=self.clock(), actor=PROMOTION_ACTOR, reason=why)
        self._commit(state, transition, write_state=False)
        self._notify(
            f"version {promotion.candidate.version} needs a decision",
            [
                f"The promotion of version {promotion.candidate.version} ({promotion.execution_name}) waits in "
                f"stage {state.stage} at weight {state.challenger_weight:.0%}: {why}",
                "",
                f"Approve (go on):   {cli_command(self.name, 'approve')}",
                f"Abort (roll back): {cli_command(self.name, 'abort')}",
                "",
                "or with the AWS CLI:",
                f"  aws stepfunctions send-task-success --task-token '{task_token}' "
                '--task-output \'{"decision":"approve"}\'',
                f"  aws stepfunctions send-task-failure --task-token '{task_token}' --error {ABORT_ERROR}",
            ],
        )
        return StepResult(Verdict.INCONCLUSIVE, why, extra={"waiting": True})

    def decide(self, *, approve: bool, actor: str, reason: str = "") -> StepResult:
        """approve / abort a promotion waiting for a human (the CLI calls this)."""
        state, promotion = self._running()
        if not promotion.task_token:
            raise NoPendingDecisionError(f"the promotion of {self.name!r} is not waiting for a decision")
        why = reason or ("approved" if approve else "aborted") + f" by {actor}"
        # The token is cleared first: once answered, the execution's next steps (a rollback, say) write the
        # promotion record at once, and a write of this (older) copy afterwards would undo theirs.
        self.promotions.put(promotion.model_copy(update={"task_token": None}))
        try:
            if approve:
                self.executions.send_task_success(promotion.task_token, {"decision": DECISION_APPROVE, "actor": actor})
            else:
                self.executions.send_task_failure(promotion.task_token, error=ABORT_ERROR, cause=why)
        except NotificationError:
            self.promotions.put(promotion)  # not answered: it still waits
            raise
        self._audit(
            AuditEvent(
                time=self.clock(),
                actor=actor,
                action=Action.APPROVE if approve else Action.ABORT,
                from_version=state.champion.version if state.champion else None,
                to_version=promotion.candidate.version,
                stage=state.stage,
                weight=state.challenger_weight,
                reason=why,
                execution_arn=promotion.execution_arn,
            )
        )
        return StepResult(Verdict.PASS if approve else Verdict.FAIL, why)

    def finish(self) -> StepResult:
        """Write the timeline (right after promotion; the watch window goes on) and end a watch that is over."""
        state, promotion = self._read()
        if promotion is None:
            raise NoPromotionError(f"no promotion of {self.name!r} to finish")
        promotion = self._end_watch_if_over(state, promotion)
        keys = self._write_timeline(promotion)
        verdict = Verdict.FAIL if promotion.outcome is PromotionOutcome.ROLLED_BACK else Verdict.PASS
        return StepResult(
            verdict, promotion.reason or promotion.outcome.value, extra={"outcome": promotion.outcome.value, **keys}
        )

    def end_watch(self) -> StepResult:
        """The scheduled check: a watch window that is over returns the deployment to idle (else nothing)."""
        state, promotion = self._read()
        if promotion is None or state.stage != Stage.WATCH:
            return StepResult(Verdict.PASS, f"nothing to end (stage {state.stage!r})", extra={"ended": False})
        ended = self._end_watch_if_over(state, promotion)
        if ended.outcome is PromotionOutcome.PROMOTED:
            self._write_timeline(ended)
        done = ended.outcome is PromotionOutcome.PROMOTED
        why = "watch window over; promotion final" if done else f"watching until {ended.watch_until}"
        return StepResult(Verdict.PASS, why, extra={"ended": done})

    def _end_watch_if_over(self, state: DeploymentState, promotion: Promotion) -> Promotion:
        now = self.clock()
        if (
            promotion.outcome is PromotionOutcome.RUNNING
            and state.stage == Stage.WATCH
            and not in_watch_window(state, promotion, now)
        ):
            transition = end_watch(state, promotion, now=now, actor=PROMOTION_ACTOR)
            self._commit(state, transition)
            return transition.promotion
        return promotion

    def _write_timeline(self, promotion: Promotion) -> dict[str, str]:
        end = promotion.finished_at or self.clock()
        events = self.promotions.events(self.name, since=promotion.started_at)
        try:
            series = self.metrics.series(self.name, promotion.started_at, end, period=TIMELINE_PERIOD_SECONDS)
        except MetricsError:
            series = {}
        timeline = render(promotion, events, series, end=end, period_seconds=TIMELINE_PERIOD_SECONDS)
        html_key = lake.timeline_html_key(self.name, promotion.execution_name)
        json_key = lake.timeline_json_key(self.name, promotion.execution_name)
        self.lake.put_text(html_key, timeline.html, content_type="text/html; charset=utf-8")
        self.lake.put_text(json_key, json.dumps(timeline.document, indent=2), content_type="application/json")
        return {"timeline_key": html_key, "timeline_json_key": json_key}

    # --- the rollback function ------------------------------------------------------------------
    def handle_alarm(self, alarm: AlarmStateChange) -> AlarmResponse:
        """A candidate alarm went to ALARM: roll back now (shadow/canary) or to the previous champion (watch).

        Idempotent: every write is conditional on the state's revision, and a state that no longer
        needs a rollback is left alone, so a redelivered or concurrent event changes nothing twice.
        """
        if not alarm.is_alarm or not is_candidate_alarm(self.name, alarm.alarm_name):
            return AlarmResponse(
                "ignored", f"{alarm.alarm_name} in state {alarm.state} is not a candidate alarm", self.name
            )
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return self._roll_back_for(alarm)
            except ConcurrentUpdateError:
                continue
        return AlarmResponse("ignored", "the deployment kept changing; the promotion's own steps decide", self.name)

    def _roll_back_for(self, alarm: AlarmStateChange) -> AlarmResponse:
        now = self.clock()
        state, promotion = self._read()
        actor = f"rollback-alarm:{alarm.alarm_name}"
        reason = f"alarm {alarm.alarm_name}: {alarm.reason}".strip()
        running = promotion is not None and promotion.outcome is PromotionOutcome.RUNNING
        watch_alarm = is_watch_alarm(self.name, alarm.alarm_name)
        if running and state.stage in LIVE_STAGES and not watch_alarm:
            transition = rollback(state, promotion, now=now, actor=actor, reason=reason)
            action = ROLLED_BACK
        elif running and in_watch_window(state, promotion, now):
            try:
                transition = rollback_to_previous(state, promotion, now=now, actor=actor, reason=reason)
            except NotInWatchWindowError as exc:
                return AlarmResponse("ignored", str(exc), self.name)
            action = "rolled_back_to_previous"
        else:
            why = (
                f"stage {state.stage!r}: not a promotion stage this alarm can roll back"
                if not (state.stage in PRE_PROMOTION_STAGES and watch_alarm)
                else f"{alarm.alarm_name} watches the champion, which is not the candidate in stage {state.stage!r}"
            )
            return AlarmResponse("ignored", why, self.name)
        assert promotion is not None  # narrowed by `running`
        if promotion.execution_arn:  # first, so that no further step starts; one in flight cannot undo the record
            self.executions.stop(promotion.execution_arn, error=ALARM_STOP_ERROR, cause=reason)
        self._commit(state, transition)
        self._reject(promotion, reason)
        serving = transition.state.champion.version if transition.state.champion else None
        self._notify(
            f"version {promotion.candidate.version} rolled back by an alarm",
            [
                f"{alarm.alarm_name} went to ALARM at {alarm.state_timestamp.isoformat()}: {alarm.reason}",
                f"Version {promotion.candidate.version} was rolled back ({action}); version {serving} serves now.",
                f"The promotion {promotion.execution_name} was stopped.",
            ],
        )
        self._write_timeline(transition.promotion)
        return AlarmResponse(action, reason, self.name)


def build_service(
    usecase: UseCase,
    *,
    deployment_table: str,
    lake_bucket: str,
    model_package_group: str,
    alarm_topic_arn: str,
    clients: Callable[[str], Any],
    endpoint_name: str | None = None,
    endpoint_role_arn: str | None = None,
) -> PromotionService:
    """The service on AWS: ``clients(name)`` gives a boto3 client (``"dynamodb"``, ``"s3"``, ...)."""
    from shared.lake.adapters import S3ObjectStore
    from shared.promotion.targets import EndpointTarget, LightTarget
    from shared.registry.adapters import SageMakerRegistry
    from shared.usecase.settings import ModelKind

    deployments = DeploymentStore(clients("dynamodb"), deployment_table)
    target: TrafficTarget = LightTarget(deployments)
    if usecase.model.kind is ModelKind.HEAVY and endpoint_name and endpoint_role_arn:
        target = EndpointTarget(
            clients("sagemaker"),
            endpoint_name=endpoint_name,
            instance_type=usecase.model.endpoint_instance_type or "ml.g5.xlarge",
            execution_role_arn=endpoint_role_arn,
            state=target,
        )
    return PromotionService(
        usecase=usecase,
        model_package_group=model_package_group,
        deployments=deployments,
        promotions=PromotionStore(clients("dynamodb"), deployment_table),
        target=target,
        registry=PackageRegistry(SageMakerRegistry(clients("sagemaker"))),
        lake=PromotionLake(S3ObjectStore(clients("s3")), lake_bucket),
        metrics=LiveMetrics(clients("cloudwatch")),
        notifier=Notifier(clients("sns"), alarm_topic_arn),
        executions=Executions(clients("stepfunctions")),
    )
