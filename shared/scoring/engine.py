"""Scoring a predict request: validate, route, score each variant in one batch, label, shadow, log.

:meth:`ScoringEngine.predict` takes the request's records and returns the response body of the
interfaces file — ``{"request_id", "predictions": [...], "errors": [...]}`` — with the metrics tallies of
the request. Records that fail the contract get field-level errors and the others are still scored; a
request with no good record raises :class:`InvalidRecordsError`.

Routing: the challenger serves the entities under its canary weight (:mod:`shared.scoring.routing`); if
the challenger fails, those records are served by the champion and the challenger's ``Errors`` counted.
A heavy use case's champion is scored by the SageMaker endpoint (:class:`EndpointScorer`); when that
fails or its breaker is open, the champion's ONNX file answers in-process with ``degraded: true``
(``fallback_to_light``), or :class:`EndpointUnavailableError` (503) is raised.

Shadow: when the state says so and the request is sampled, the challenger also scores the records the
champion served, on a background thread bounded by ``shadow_timeout_ms``; its scores are logged
(variant ``"shadow"``, ``served`` false), never returned, and nothing it does changes the response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shared import telemetry as names
from shared.deployment import DeploymentState, ModelRef
from shared.features import onnx_feed, onnx_feed_from_columns
from shared.scoring.checks import RecordChecker
from shared.scoring.endpoint import EndpointScorer
from shared.scoring.exceptions import (
    EndpointError,
    EndpointUnavailableError,
    InvalidRecordsError,
    NoChampionError,
    ScoringError,
    TooManyRecordsError,
)
from shared.scoring.models import ModelCache
from shared.scoring.prediction_log import LoggedScore, PredictionLog
from shared.scoring.routing import canary_variant, shadow_sampled
from shared.telemetry import CHALLENGER, CHAMPION, SHADOW, RequestTelemetry
from shared.usecase import ColumnType, Contract, UseCase

log = logging.getLogger(__name__)


def negative_class(contract: Contract) -> Any:
    """The label of a score under the threshold: the label column's other allowed value (or ``not`` a bool)."""
    positive = contract.positive_class
    if isinstance(positive, bool):
        return not positive
    column = contract.column(contract.label)
    others = [v for v in column.allowed or () if v != positive]
    if len(others) == 1:
        return others[0]
    if column.type is ColumnType.BOOL:
        return not positive
    return None


class ShadowRunner:
    """One background thread for shadow scores; a sample arriving while the last one still runs is skipped."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[Any] | None = None

    def submit(self, job: Callable[[], Any]) -> Future[Any] | None:
        if self._pending is not None and not self._pending.done():
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._pending = self._executor.submit(job)
        return self._pending


@dataclass
class ScoreOutcome:
    """A scored request: the response body, the variants that answered and the metric tallies."""

    body: dict[str, Any]
    variants: tuple[str, ...]
    telemetry: RequestTelemetry
    shadow_scored: int = 0
    log_failures: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Group:
    """The records one model variant serves in one request."""

    indices: list[int]
    records: list[Mapping[str, Any]]


class ScoringEngine:
    def __init__(
        self,
        *,
        usecase: UseCase,
        models: ModelCache,
        endpoint: EndpointScorer | None = None,
        prediction_log: PredictionLog | None = None,
        shadow: ShadowRunner | None = None,
        timer: Callable[[], float] = time.perf_counter,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        logger: Any = None,
    ) -> None:
        self._usecase = usecase
        self._contract = usecase.contract
        self._serving = usecase.serving
        self._models = models
        self._endpoint = endpoint
        self._prediction_log = prediction_log
        self._shadow = shadow or ShadowRunner()
        self._timer = timer
        self._now = now
        self._log = logger or log
        self._checker = RecordChecker(usecase.contract)
        self._positive = usecase.contract.positive_class
        self._negative = negative_class(usecase.contract)
        self._feature_names = tuple(c.name for c in usecase.contract.features)

    @property
    def models(self) -> ModelCache:
        return self._models

    # --- the request -------------------------------------------------------------------------------------------------

    def predict(self, records: Sequence[Any], *, request_id: str) -> ScoreOutcome:
        started = self._timer()
        if len(records) > self._serving.max_batch_records:
            raise TooManyRecordsError(len(records), self._serving.max_batch_records)
        telemetry = RequestTelemetry(usecase=self._usecase.name)
        state = self._models.state()
        if state.champion is None:
            telemetry.count(names.ERRORS, None, CHAMPION)
            raise NoChampionError(f"no model is deployed for {self._usecase.name!r} yet")
        groups, errors, columns = self._route(records, state)
        batch_feed: dict[str, np.ndarray] | None = None

        def feed_of(group: _Group) -> dict[str, np.ndarray]:
            """The group's ONNX inputs: from the batch's columns when every record passed the column checks."""
            nonlocal batch_feed
            if columns is None:
                return onnx_feed(group.records, self._contract)
            if batch_feed is None:
                batch_feed = onnx_feed_from_columns(columns, self._contract)
            if len(group.indices) == len(records):
                return batch_feed
            rows = np.asarray(group.indices, dtype=np.intp)
            return {name: values[rows] for name, values in batch_feed.items()}

        served: dict[int, dict[str, Any]] = {}
        logged: list[LoggedScore] = []
        challenger_group = groups[CHALLENGER]
        if (
            challenger_group.indices
            and state.challenger is not None
            and not self._serve_challenger(state.challenger, challenger_group, feed_of, served, logged, telemetry)
        ):
            groups[CHAMPION] = _merge(groups[CHAMPION], challenger_group)

        champion_group = groups[CHAMPION]
        shadow_job: Future[Any] | None = None
        shadow_deadline = 0.0
        if champion_group.indices:
            feed = feed_of(champion_group)
            shadow_job, shadow_deadline = self._start_shadow(state, request_id, feed, telemetry)
            self._serve_champion(state.champion, champion_group, feed, served, logged, telemetry)

        shadow_scored = 0
        if shadow_job is not None and state.challenger is not None:
            shadow_scored = self._collect_shadow(
                shadow_job, shadow_deadline, state.challenger, champion_group, logged, telemetry
            )

        predictions = [served[i] for i in sorted(served)]
        body = {"request_id": request_id, "predictions": predictions, "errors": errors}
        elapsed_ms = (self._timer() - started) * 1000
        variants = tuple(sorted({p["variant"] for p in predictions}))
        for prediction in predictions:
            tally = telemetry.tally(prediction["model_version"], prediction["variant"])
            tally.counts[names.PREDICTIONS] += 1
            tally.add_score(prediction["score"])
            tally.latency_ms = elapsed_ms
        failures = 0
        if self._prediction_log is not None:
            failures = self._prediction_log.publish(request_id, logged, at=self._now())
            if failures:
                telemetry.count(names.PREDICTION_LOG_ERRORS, state.champion.version, CHAMPION, failures)
        return ScoreOutcome(
            body=body, variants=variants, telemetry=telemetry, shadow_scored=shadow_scored, log_failures=failures
        )

    def _route(
        self, records: Sequence[Any], state: DeploymentState
    ) -> tuple[dict[str, _Group], list[dict[str, Any]], dict[str, list[Any]] | None]:
        """Valid records by the variant that serves them, the field-level errors of the others, and the batch's
        columns when every record passed the column-wise checks (``None``: checked record by record)."""
        errors: list[dict[str, Any]] = []
        groups = {CHAMPION: _Group([], []), CHALLENGER: _Group([], [])}
        entity_column = self._contract.entity_id
        canary = state.challenger is not None and state.challenger_weight > 0
        columns = self._checker.columns(records) if records else None
        if columns is not None and not canary:
            groups[CHAMPION] = _Group(list(range(len(records))), list(records))
            return groups, errors, columns
        for index, record in enumerate(records):
            problems = None if columns is not None else self._checker.errors(record)
            if problems:
                errors.append({"index": index, "errors": problems})
                continue
            variant = CHAMPION
            if canary:
                variant = canary_variant(self._usecase.name, record[entity_column], state.challenger_weight)
            group = groups[variant]
            group.indices.append(index)
            group.records.append(record)
        if not groups[CHAMPION].indices and not groups[CHALLENGER].indices:
            raise InvalidRecordsError(errors)
        return groups, errors, columns

    # --- the variants ------------------------------------------------------------------------------------------------

    def _label(self, score: float, threshold: float) -> Any:
        return self._positive if score >= threshold else self._negative

    def _predictions(
        self,
        group: _Group,
        scores: Sequence[float] | np.ndarray,
        ref: ModelRef,
        variant: str,
        *,
        degraded: bool,
        served: dict[int, dict[str, Any]],
        logged: list[LoggedScore],
    ) -> None:
        entity_column = self._contract.entity_id
        threshold = ref.threshold
        values = scores.tolist() if isinstance(scores, np.ndarray) else [float(s) for s in scores]
        for index, record, score in zip(group.indices, group.records, values, strict=True):
            label = self._label(score, threshold)
            entity_id = record[entity_column]
            served[index] = {
                "index": index,
                "entity_id": entity_id,
                "score": score,
                "label": label,
                "threshold": threshold,
                "model_version": ref.version,
                "variant": variant,
                "degraded": degraded,
            }
            logged.append(
                self._logged(
                    index=index, record=record, score=score, label=label, ref=ref, variant=variant, degraded=degraded
                )
            )

    def _logged(
        self,
        *,
        index: int,
        record: Mapping[str, Any],
        score: float,
        label: Any,
        ref: ModelRef,
        variant: str,
        served: bool = True,
        degraded: bool = False,
    ) -> LoggedScore:
        return LoggedScore(
            index=index,
            entity_id=record[self._contract.entity_id],
            features={name: record.get(name) for name in self._feature_names},
            score=score,
            label=label,
            threshold=ref.threshold,
            model_version=ref.version,
            variant=variant,
            served=served,
            degraded=degraded,
        )

    def _serve_challenger(  # noqa: PLR0917 - the request's accumulators, passed along
        self,
        ref: ModelRef,
        group: _Group,
        feed_of: Callable[[_Group], dict[str, np.ndarray]],
        served: dict[int, dict[str, Any]],
        logged: list[LoggedScore],
        telemetry: RequestTelemetry,
    ) -> bool:
        """Score the canary's records with the challenger; False (and Errors counted) when it cannot."""
        try:
            model = self._models.model(ref)
            scores = model.positive_scores(feed_of(group))
        except Exception as exc:  # noqa: BLE001 - a failing challenger must never fail the customer: the champion serves
            self._log.warning("challenger failed; the champion serves its records", extra={"error": str(exc)})
            telemetry.count(names.ERRORS, ref.version, CHALLENGER)
            return False
        self._predictions(group, scores, ref, CHALLENGER, degraded=False, served=served, logged=logged)
        return True

    def _serve_champion(  # noqa: PLR0917 - the request's accumulators, passed along
        self,
        ref: ModelRef,
        group: _Group,
        feed: dict[str, np.ndarray],
        served: dict[int, dict[str, Any]],
        logged: list[LoggedScore],
        telemetry: RequestTelemetry,
    ) -> None:
        degraded = False
        scores: Sequence[float] | np.ndarray | None = None
        if self._endpoint is not None:
            try:
                scores = self._endpoint.scores(group.records)
            except EndpointError as exc:
                telemetry.count(names.ERRORS, ref.version, CHAMPION)
                if not self._serving.fallback_to_light:
                    raise EndpointUnavailableError(f"the model endpoint is unavailable: {exc}") from exc
                self._log.warning("endpoint failed; the light model answers", extra={"error": str(exc)})
                telemetry.count(names.FALLBACKS, ref.version, CHAMPION)
                degraded = True
        if scores is None:
            try:
                scores = self._models.model(ref).positive_scores(feed)
            except Exception as exc:
                telemetry.count(names.ERRORS, ref.version, CHAMPION)
                raise ScoringError(f"the champion (version {ref.version}) could not score: {exc}") from exc
        self._predictions(group, scores, ref, CHAMPION, degraded=degraded, served=served, logged=logged)

    # --- shadow ------------------------------------------------------------------------------------------------------

    def _start_shadow(
        self, state: DeploymentState, request_id: str, feed: dict[str, np.ndarray], telemetry: RequestTelemetry
    ) -> tuple[Future[Any] | None, float]:
        challenger = state.challenger
        if not state.shadow or challenger is None:
            return None, 0.0
        if not shadow_sampled(request_id, self._serving.shadow_sample_rate):
            return None, 0.0
        deadline = self._timer() + self._serving.shadow_timeout_ms / 1000
        models = self._models

        timer = self._timer

        def shadow_scores() -> tuple[np.ndarray, float]:
            started = timer()
            scores = models.model(challenger).positive_scores(feed)
            return scores, (timer() - started) * 1000

        try:
            job = self._shadow.submit(shadow_scores)
        except Exception as exc:  # noqa: BLE001 - shadow never changes the response
            self._log.warning("shadow not started", extra={"error": str(exc)})
            job = None
        if job is None:
            telemetry.count(names.SHADOW_ERRORS, challenger.version, SHADOW)
        return job, deadline

    def _collect_shadow(  # noqa: PLR0917 - the request's accumulators, passed along
        self,
        job: Future[Any],
        deadline: float,
        ref: ModelRef,
        group: _Group,
        logged: list[LoggedScore],
        telemetry: RequestTelemetry,
    ) -> int:
        try:
            scores, latency_ms = job.result(timeout=max(0.0, deadline - self._timer()))
        except FutureTimeoutError:
            self._log.warning("shadow score abandoned: over its time bound", extra={"model_version": ref.version})
            telemetry.count(names.SHADOW_ERRORS, ref.version, SHADOW)
            return 0
        except Exception as exc:  # noqa: BLE001 - shadow never changes the response, whatever went wrong
            self._log.warning("shadow score failed", extra={"model_version": ref.version, "error": str(exc)})
            telemetry.count(names.SHADOW_ERRORS, ref.version, SHADOW)
            return 0
        if len(scores) != len(group.records):
            self._log.warning("shadow score failed: wrong number of scores", extra={"model_version": ref.version})
            telemetry.count(names.SHADOW_ERRORS, ref.version, SHADOW)
            return 0
        for index, record, raw in zip(group.indices, group.records, scores, strict=True):
            score = float(raw)
            logged.append(
                self._logged(
                    index=index,
                    record=record,
                    score=score,
                    label=self._label(score, ref.threshold),
                    ref=ref,
                    variant=SHADOW,
                    served=False,
                )
            )
        telemetry.count(names.SHADOW_SCORES, ref.version, SHADOW, len(group.records))
        telemetry.tally(ref.version, SHADOW).latency_ms = latency_ms
        served = {item.index: item.score for item in logged if item.variant == CHAMPION}
        telemetry.observe(
            names.SCORE_DELTA,
            ref.version,
            SHADOW,
            [abs(float(raw) - served[i]) for i, raw in zip(group.indices, scores, strict=True) if i in served],
        )
        self._log.info(
            "shadow scored",
            extra={"variant": SHADOW, "model_version": ref.version, "records": len(group.records), "served": False},
        )
        return len(group.records)


def _merge(first: _Group, second: _Group) -> _Group:
    pairs = sorted(zip(first.indices + second.indices, first.records + second.records, strict=True), key=lambda p: p[0])
    return _Group([i for i, _ in pairs], [r for _, r in pairs])
