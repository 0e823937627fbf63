"""Scoring a predict request: validate, route, score each variant in one batch, label, shadow, log.

:meth:`ScoringEngine.predict` takes the request's records — JSON objects, or the typed records the
wire decoder already validated (:class:`~shared.scoring.wire.DecodedBody`) — and returns the
response (``{"request_id", "predictions": [...], "errors": [...]}``, :meth:`ScoreOutcome.encoded`)
with the metrics tallies of the request. Records that fail the contract get field-level errors and the
others are still scored; a request with no good record raises :class:`InvalidRecordsError`.

The valid records are handled as columns (:class:`_Batch`): one model call per variant, labels,
predictions, score buckets and the prediction-log block built with numpy and C-level maps, not a
Python loop per record.

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
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from shared.deployment.state import DeploymentState, ModelRef, variant_name
from shared.scoring import telemetry as names
from shared.scoring.checks import RecordChecker
from shared.scoring.exceptions import (
    EndpointError,
    EndpointUnavailableError,
    InvalidRecordsError,
    NoChampionError,
    ScoringError,
    TooManyRecordsError,
    UnknownVariantError,
)
from shared.scoring.models import ModelCache
from shared.scoring.prediction_log import PredictionLog, ScoredBlock
from shared.scoring.routing import canary_position, shadow_sampled
from shared.scoring.telemetry import CHALLENGER, CHAMPION, SHADOW, RequestTelemetry
from shared.scoring.wire import DecodedBody, encode
from shared.usecase.features import onnx_feed, onnx_feed_from_columns
from shared.usecase.settings import ColumnType, Contract, UseCase

if TYPE_CHECKING:
    from shared.scoring.endpoint import EndpointScorer

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
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=SHADOW)
        self._pending = self._executor.submit(job)
        return self._pending


class Prediction(msgspec.Struct, gc=False):
    """One served prediction as the response carries it (the OpenAPI document's ``Prediction``)."""

    index: int
    entity_id: Any
    score: float
    label: Any
    threshold: float
    model_version: int
    variant: str
    degraded: bool


@dataclass
class ScoreOutcome:
    """A scored request: the predictions in request order, the refused records' errors, and the metric tallies."""

    request_id: str
    errors: list[dict[str, Any]]
    variants: tuple[str, ...]
    model_versions: tuple[int, ...]
    degraded: bool
    telemetry: RequestTelemetry
    shadow_scored: int = 0
    log_failures: int = 0
    notes: list[str] = field(default_factory=list)
    served: list[ScoredBlock] = field(default_factory=list)
    """The served blocks (one a variant), whose columns the predictions and the v2 response are made of."""

    @cached_property
    def predictions(self) -> list[Prediction]:
        """The served predictions in request order (built when asked: a v2 response is made of the blocks)."""
        predictions: list[Prediction] = []
        for block in self.served:
            predictions += map(
                Prediction,
                block.indices,
                block.entity_ids,
                block.scores,
                block.labels,
                repeat(block.threshold),
                repeat(block.model_version),
                repeat(block.variant),
                repeat(block.degraded),
            )
        if len(self.served) > 1:
            predictions.sort(key=attrgetter("index"))
        return predictions

    @property
    def predicted(self) -> int:
        """How many predictions were served."""
        return sum(len(block) for block in self.served)

    def encoded(self) -> bytes:
        """The response body, as JSON."""
        return encode({"request_id": self.request_id, "predictions": self.predictions, "errors": self.errors})

    @property
    def body(self) -> dict[str, Any]:
        """The response body as Python objects (what :meth:`encoded` holds)."""
        body: dict[str, Any] = msgspec.json.decode(self.encoded())
        return body


@dataclass
class _Batch:
    """Valid records of a request: their positions in it, entity ids, the records (for the endpoint), their
    feature values by column (for the log), and the model's inputs."""

    positions: np.ndarray
    entity_ids: list[Any]
    records: list[Any] | None
    """None for a columnar body: :meth:`rows` builds them when the endpoint needs them."""
    columns: dict[str, list[Any]]
    feed: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.entity_ids)

    def rows(self) -> list[Any]:
        """The records (the features of each, as JSON objects for the endpoint)."""
        if self.records is not None:
            return self.records
        names = list(self.columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*self.columns.values(), strict=True)]

    def take(self, mask: np.ndarray) -> _Batch:
        """The records where ``mask`` is true."""
        rows = np.flatnonzero(mask)
        picked = rows.tolist()
        return _Batch(
            positions=self.positions[rows],
            entity_ids=[self.entity_ids[i] for i in picked],
            records=None if self.records is None else [self.records[i] for i in picked],
            columns={name: [values[i] for i in picked] for name, values in self.columns.items()},
            feed={name: values[rows] for name, values in self.feed.items()},
        )


@dataclass
class _Served:
    """One variant's answer for a batch."""

    batch: _Batch
    scores: np.ndarray
    ref: ModelRef
    variant: str
    degraded: bool = False
    latency_ms: float = 0.0
    """How long this variant took to score the batch (the model, or the endpoint with its retries and fallback)."""


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
        self._labels = np.array([negative_class(usecase.contract), usecase.contract.positive_class], dtype=object)
        self._feature_names = tuple(c.name for c in usecase.contract.features)

    @property
    def models(self) -> ModelCache:
        return self._models

    # --- the request -------------------------------------------------------------------------------------------------

    def predict(self, records: Sequence[Any] | DecodedBody, *, request_id: str) -> ScoreOutcome:
        count = len(records)
        if count > self._serving.max_batch_records:
            raise TooManyRecordsError(count, self._serving.max_batch_records)
        telemetry = RequestTelemetry(usecase=self._usecase.name)
        state = self._models.state()
        if state.champion is None:
            telemetry.count(names.ERRORS, None, CHAMPION)
            raise NoChampionError(f"no model is deployed for {self._usecase.name!r} yet")
        batch, errors, refused = self._valid(records)
        if batch is None:
            self._log_refusals(request_id, refused)
            raise InvalidRecordsError(errors)

        answers: list[_Served] = []
        champion_batch = batch
        if state.challenger is not None and state.challenger_weight > 0:
            on_challenger = self._canary_rows(batch, state.challenger_weight)
            if on_challenger.any():
                challenger_answer = self._serve_challenger(state.challenger, batch.take(on_challenger), telemetry)
                if challenger_answer is not None:
                    answers.append(challenger_answer)
                    champion_batch = batch.take(~on_challenger)

        shadow_scored = 0
        champion_answer: _Served | None = None
        if len(champion_batch):
            shadow_job, shadow_deadline = self._start_shadow(state, request_id, champion_batch.feed, telemetry)
            targeted = state.challenger is not None and state.challenger_weight > 0
            champion_answer = self._serve_champion(state.champion, champion_batch, telemetry, targeted=targeted)
            answers.append(champion_answer)
            if shadow_job is not None and state.challenger is not None:
                shadow = self._collect_shadow(shadow_job, shadow_deadline, state.challenger, champion_answer, telemetry)
                if shadow is not None:
                    answers.append(shadow)
                    shadow_scored = len(shadow.batch)

        blocks = [self._block(answer) for answer in answers]
        served = [(answer, block) for answer, block in zip(answers, blocks, strict=True) if block.served]
        for answer, _ in served:
            tally = telemetry.tally(answer.ref.version, answer.variant)
            tally.counts[names.PREDICTIONS] += len(answer.batch)
            tally.add_scores(answer.scores)
            tally.latency_ms = answer.latency_ms
        failures = 0
        if self._prediction_log is not None:
            failures = self._prediction_log.publish(request_id, blocks, at=self._now(), refused=refused)
            if failures:
                telemetry.count(names.PREDICTION_LOG_ERRORS, state.champion.version, CHAMPION, failures)
        return ScoreOutcome(
            request_id=request_id,
            errors=errors,
            variants=tuple(sorted({answer.variant for answer, _ in served})),
            model_versions=tuple(sorted({answer.ref.version for answer, _ in served})),
            degraded=any(answer.degraded for answer, _ in served),
            telemetry=telemetry,
            shadow_scored=shadow_scored,
            log_failures=failures,
            served=[block for _, block in served],
        )

    # --- validation --------------------------------------------------------------------------------------------------

    def _log_refusals(self, request_id: str, refused: Counter[tuple[str, str]]) -> None:
        """Send a request's refusals (none valid: the 422 path) to the prediction log; never fails the answer."""
        if self._prediction_log is not None and refused:
            self._prediction_log.publish(request_id, [], at=self._now(), refused=refused)

    def _valid(
        self, records: Sequence[Any] | DecodedBody
    ) -> tuple[_Batch | None, list[dict[str, Any]], Counter[tuple[str, str]]]:
        """The valid records as a batch (None when there are none: 422), the field-level errors of the others,
        and their refusals counted by (field, reason kind) (empty, and not built, when every record is valid)."""
        refused: Counter[tuple[str, str]] = Counter()
        if isinstance(records, DecodedBody):
            if records.validated and records.columns is not None:
                return self._columnar_batch(records.columns), [], refused
            if records.validated and records.record_type is not None:
                return self._typed_batch(records), [], refused
            records = records.records
        errors: list[dict[str, Any]] = []
        columns = self._checker.columns(records) if records else None
        if columns is not None:
            valid_positions = list(range(len(records)))
            valid = list(records)
            feed = onnx_feed_from_columns(columns, self._contract)
            entity_ids = columns[self._contract.entity_id]
            features = {name: columns[name] for name in self._feature_names}
        else:
            valid_positions, valid = [], []
            for index, record in enumerate(records):
                problems, reasons = self._checker.refused(record)
                if problems:
                    errors.append({"index": index, "errors": problems})
                    refused.update(reasons)
                else:
                    valid_positions.append(index)
                    valid.append(record)
            if not valid:
                return None, errors, refused
            feed = onnx_feed(valid, self._contract)
            entity_ids = [record[self._contract.entity_id] for record in valid]
            features = {name: [record.get(name) for record in valid] for name in self._feature_names}
        positions = np.asarray(valid_positions, dtype=np.intp)
        batch = _Batch(positions=positions, entity_ids=entity_ids, records=valid, columns=features, feed=feed)
        return batch, errors, refused

    def _typed_batch(self, body: DecodedBody) -> _Batch:
        """A batch of records the wire decoder validated: one ``attrgetter`` pass per column."""
        assert body.record_type is not None
        records = body.records
        features = list(self._feature_names)
        columns = {name: list(map(attrgetter(body.record_type.attribute[name]), records)) for name in features}
        entity = attrgetter(body.record_type.attribute[self._contract.entity_id])
        return _Batch(
            positions=np.arange(len(records), dtype=np.intp),
            entity_ids=list(map(entity, records)),
            records=records,
            columns=columns,
            feed=onnx_feed_from_columns(columns, self._contract),
        )

    def _columnar_batch(self, columns: dict[str, list[Any]]) -> _Batch:
        """A batch of columns the wire decoder validated: the model's inputs built column by column."""
        entity_ids = columns[self._contract.entity_id]
        return _Batch(
            positions=np.arange(len(entity_ids), dtype=np.intp),
            entity_ids=entity_ids,
            records=None,
            columns={name: columns[name] for name in self._feature_names},
            feed=onnx_feed_from_columns(columns, self._contract),
        )

    # --- the variants ------------------------------------------------------------------------------------------------

    def _canary_rows(self, batch: _Batch, weight: float) -> np.ndarray:
        name = self._usecase.name
        return np.fromiter(
            (canary_position(name, entity) < weight for entity in batch.entity_ids), dtype=bool, count=len(batch)
        )

    def _labels_of(self, scores: np.ndarray, threshold: float) -> list[Any]:
        labels: list[Any] = self._labels[(scores >= threshold).astype(np.intp)].tolist()
        return labels

    def _block(self, answer: _Served) -> ScoredBlock:
        return ScoredBlock(
            variant=answer.variant,
            model_version=answer.ref.version,
            threshold=answer.ref.threshold,
            served=answer.variant != SHADOW,
            degraded=answer.degraded,
            indices=answer.batch.positions.tolist(),
            entity_ids=answer.batch.entity_ids,
            scores=answer.scores.tolist(),
            labels=self._labels_of(answer.scores, answer.ref.threshold),
            features=answer.batch.columns,
        )

    def _serve_challenger(self, ref: ModelRef, batch: _Batch, telemetry: RequestTelemetry) -> _Served | None:
        """Score the canary's records with the challenger; None (its Errors counted) when it cannot: then the
        champion serves them, since a failing challenger must never fail the customer."""
        try:
            return self._score(ref, batch, CHALLENGER, telemetry, target_variant=variant_name(ref))
        except ScoringError as exc:
            self._log.warning("challenger failed; the champion serves its records", extra={"error": str(exc)})
            return None

    def _serve_champion(
        self, ref: ModelRef, batch: _Batch, telemetry: RequestTelemetry, *, targeted: bool = False
    ) -> _Served:
        """The champion's records (its own endpoint variant when a canary shares the endpoint)."""
        return self._score(ref, batch, CHAMPION, telemetry, target_variant=variant_name(ref) if targeted else None)

    @staticmethod
    def _endpoint_scores(
        endpoint: EndpointScorer, batch: _Batch, variant: str, target_variant: str | None
    ) -> Sequence[float] | None:
        """The endpoint's scores from ``target_variant``; None when the candidate has no variant there.

        The endpoint may not host the variant: the promotion shapes only an endpoint the stack manages, and
        an update still in progress keeps the previous config serving. The champion's records then go where
        the endpoint's weights send them; the candidate's are scored by its light model (the same version,
        not counted as a fallback: nothing failed).
        """
        try:
            return endpoint.scores(batch.rows(), target_variant=target_variant)
        except UnknownVariantError:
            if variant == CHALLENGER:
                return None
            return endpoint.scores(batch.rows(), target_variant=None)

    def _score(
        self, ref: ModelRef, batch: _Batch, variant: str, telemetry: RequestTelemetry, *, target_variant: str | None
    ) -> _Served:
        """One variant's scores: a heavy use case's endpoint (``target_variant``, else the variant its weights
        pick) and, when that fails, the light model (degraded, a fallback counted), or the light model alone.

        Raises :class:`EndpointUnavailableError` when the endpoint fails and the use case allows no fallback,
        :class:`ScoringError` when the light model cannot score; either way with the variant's Errors counted.
        """
        scores: np.ndarray | None = None
        spent_ms, degraded = 0.0, False
        if self._endpoint is not None:
            started = self._timer()
            try:
                answered = self._endpoint_scores(self._endpoint, batch, variant, target_variant)
                scores = None if answered is None else np.asarray(answered)
            except EndpointError as exc:
                telemetry.count(names.ERRORS, ref.version, variant)
                if not self._serving.fallback_to_light:
                    raise EndpointUnavailableError(f"the model endpoint is unavailable: {exc}") from exc
                self._log.warning("endpoint failed; the light model answers", extra={"error": str(exc)})
                telemetry.count(names.FALLBACKS, ref.version, variant)
                degraded = True
            finally:
                spent_ms += (self._timer() - started) * 1000
        if scores is None:
            try:
                model = self._models.model(ref)  # a first use's load is no scoring time
                started = self._timer()
                scores = np.asarray(model.positive_scores(batch.feed), dtype=np.float64)
            except Exception as exc:
                telemetry.count(names.ERRORS, ref.version, variant)
                raise ScoringError(f"the {variant} (version {ref.version}) could not score: {exc}") from exc
            spent_ms += (self._timer() - started) * 1000
        return _Served(batch, np.asarray(scores, dtype=np.float64), ref, variant, degraded, spent_ms)

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
            model = models.model(challenger)  # a first use's load is no scoring time
            started = timer()
            scores = model.positive_scores(feed)
            return scores, (timer() - started) * 1000

        try:
            job = self._shadow.submit(shadow_scores)
        except Exception as exc:  # noqa: BLE001 - shadow never changes the response
            self._log.warning("shadow not started", extra={"error": str(exc)})
            job = None
        if job is None:
            telemetry.count(names.SHADOW_ERRORS, challenger.version, SHADOW)
        return job, deadline

    def _collect_shadow(
        self, job: Future[Any], deadline: float, ref: ModelRef, champion: _Served, telemetry: RequestTelemetry
    ) -> _Served | None:
        try:
            raw, latency_ms = job.result(timeout=max(0.0, deadline - self._timer()))
            scores = np.asarray(raw, dtype=np.float64).reshape(-1)
        except FutureTimeoutError:
            self._log.warning("shadow score abandoned: over its time bound", extra={"model_version": ref.version})
            telemetry.count(names.SHADOW_ERRORS, ref.version, SHADOW)
            return None
        except Exception as exc:  # noqa: BLE001 - shadow never changes the response, whatever went wrong
            self._log.warning("shadow score failed", extra={"model_version": ref.version, "error": str(exc)})
            telemetry.count(names.SHADOW_ERRORS, ref.version, SHADOW)
            return None
        if len(scores) != len(champion.batch):
            self._log.warning("shadow score failed: wrong number of scores", extra={"model_version": ref.version})
            telemetry.count(names.SHADOW_ERRORS, ref.version, SHADOW)
            return None
        telemetry.count(names.SHADOW_SCORES, ref.version, SHADOW, len(scores))
        shadow_tally = telemetry.tally(ref.version, SHADOW)
        shadow_tally.latency_ms = latency_ms
        shadow_tally.add_scores(scores)
        telemetry.observe(names.SCORE_DELTA, ref.version, SHADOW, np.abs(scores - champion.scores).tolist())
        self._log.info(
            "shadow scored",
            extra={"variant": SHADOW, "model_version": ref.version, "records": len(scores), "served": False},
        )
        return _Served(champion.batch, scores, ref, SHADOW, latency_ms=latency_ms)
