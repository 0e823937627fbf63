"""The scoring engine with a real ONNX model: validation, labels, canary, shadow, heavy fallback, the log."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from shared.deployment.state import DeploymentState, ModelRef
from shared.scoring.breaker import CircuitBreaker
from shared.scoring.endpoint import EndpointScorer
from shared.scoring.engine import ScoringEngine
from shared.scoring.exceptions import (
    EndpointUnavailableError,
    InvalidRecordsError,
    ModelFileMismatchError,
    NoChampionError,
    TooManyRecordsError,
)
from shared.scoring.models import ModelCache, onnx_session
from shared.scoring.prediction_log import PredictionLog
from shared.scoring.prediction_log_lake import parse_message
from shared.scoring.wire import PredictBodyDecoder
from shared.usecase.features import onnx_feed, onnx_feed_from_columns
from shared.usecase.settings import UseCase
from tests.scoring_fakes import FakeClock, InMemoryDeployments, InMemoryModelFiles, RecordingSender
from tests.scoring_model import TrainedModel, trained_model

USECASE = "telco_churn"
LOG_QUEUE, REVIEW_QUEUE = "https://sqs/log", "https://sqs/review"


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return trained_model()


def _features(model: TrainedModel, count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "churn"} for r in model.records[start : start + count]]


class Setup:
    def __init__(
        self,
        model: TrainedModel,
        state: DeploymentState,
        *,
        usecase: UseCase | None = None,
        files: dict[str, bytes] | None = None,
        endpoint: EndpointScorer | None = None,
        sender: RecordingSender | None = None,
        session_factory: Any = onnx_session,
    ) -> None:
        self.usecase = usecase or model.usecase
        self.deployments = InMemoryDeployments(state)
        refs = [r for r in (state.champion, state.challenger) if r is not None]
        self.files = InMemoryModelFiles(files if files is not None else {r.onnx_key: model.onnx for r in refs})
        self.clock = FakeClock()
        self.sender = sender or RecordingSender()
        self.cache = ModelCache(
            usecase=USECASE,
            deployments=self.deployments,
            files=self.files,
            bucket="lake",
            refresh_seconds=self.usecase.serving.deployment_cache_seconds,
            feature_names=frozenset(c.name for c in self.usecase.contract.features),
            session_factory=session_factory,
            clock=self.clock,
        )
        self.alerted: frozenset[str] = frozenset()
        self.engine = ScoringEngine(
            usecase=self.usecase,
            models=self.cache,
            endpoint=endpoint,
            prediction_log=PredictionLog(
                self.sender,
                usecase=USECASE,
                log_queue_url=LOG_QUEUE,
                review_queue_url=REVIEW_QUEUE,
                review=self.usecase.review,
                segment_columns=self.usecase.contract.segments,
                alerted_segments=lambda: self.alerted,
            ),
        )

    def logged(self) -> list[dict[str, Any]]:
        # a prediction-log message is a block of a request's scores, read back one line a prediction
        return [
            json.loads(line.model_dump_json()) for b in self.sender.sent.get(LOG_QUEUE, []) for line in parse_message(b)
        ]

    def reviewed(self) -> list[dict[str, Any]]:
        # a review message is a block of the request's routed predictions, with each one's routing
        return [
            {**json.loads(line.model_dump_json()), "routing": routing}
            for body in self.sender.sent.get(REVIEW_QUEUE, [])
            for line, routing in zip(parse_message(body), json.loads(body)["routing"], strict=True)
        ]


def _state(champion: ModelRef | None, **changes: Any) -> DeploymentState:
    return DeploymentState(usecase=USECASE, champion=champion, **{"revision": 1, **changes})


def test_a_batch_is_scored_in_order_with_labels_at_the_models_threshold(model: TrainedModel) -> None:
    # Given a champion with threshold 0.3
    setup = Setup(model, _state(model.ref(threshold=0.3)))
    records = _features(model, 50)
    # When the batch is scored
    outcome = setup.engine.predict(records, request_id="req-1")
    # Then every record has a prediction, in order, from the champion
    predictions = outcome.body["predictions"]
    assert [p["index"] for p in predictions] == list(range(50))
    assert [p["entity_id"] for p in predictions] == [r["rownames"] for r in records]
    assert {p["variant"] for p in predictions} == {"champion"}
    assert {p["model_version"] for p in predictions} == {1}
    # And the scores are the ONNX model's, labelled Yes at or above the threshold
    expected = setup.cache.champion().positive_scores(onnx_feed(records, model.usecase.contract))
    np.testing.assert_allclose([p["score"] for p in predictions], expected, rtol=1e-6)
    assert all(p["label"] == ("Yes" if p["score"] >= 0.3 else "No") for p in predictions)
    assert not any(p["degraded"] for p in predictions)
    assert outcome.body["errors"] == []


def test_a_bad_record_gets_field_errors_and_the_others_are_still_scored(model: TrainedModel) -> None:
    # Given a batch whose second record has a negative tenure and an unknown contract type
    setup = Setup(model, _state(model.ref()))
    records = _features(model, 3)
    records[1] = {**records[1], "tenure": -4, "contract": "Forever"}
    # When scored
    body = setup.engine.predict(records, request_id="req-2").body
    # Then records 0 and 2 are scored and record 1 has field-level reasons
    assert [p["index"] for p in body["predictions"]] == [0, 2]
    assert body["errors"][0]["index"] == 1
    assert {e["field"] for e in body["errors"][0]["errors"]} == {"tenure", "contract"}


def test_a_request_with_no_good_record_is_refused(model: TrainedModel) -> None:
    setup = Setup(model, _state(model.ref()))
    with pytest.raises(InvalidRecordsError) as raised:
        setup.engine.predict([{"rownames": 1}], request_id="req-3")
    assert any(e["field"] == "tenure" for e in raised.value.errors[0]["errors"])


def test_too_many_records_and_no_champion_are_refused(model: TrainedModel) -> None:
    setup = Setup(model, _state(model.ref()))
    with pytest.raises(TooManyRecordsError):
        setup.engine.predict(_features(model, 1) * 1001, request_id="req-4")
    with pytest.raises(NoChampionError):
        Setup(model, _state(None)).engine.predict(_features(model, 1), request_id="req-5")


def test_the_canary_serves_its_share_of_customers(model: TrainedModel) -> None:
    # Given a challenger (version 2) at weight 0.25
    state = _state(model.ref(), challenger=model.ref(version=2, run_id="run-2"), challenger_weight=0.25)
    setup = Setup(model, state)
    # When 1,000 customers are scored
    predictions = setup.engine.predict(_features(model, 1000), request_id="req-6").body["predictions"]
    # Then about a quarter got the challenger, each with its version
    challenger = [p for p in predictions if p["variant"] == "challenger"]
    assert 0.2 <= len(challenger) / 1000 <= 0.3
    assert {p["model_version"] for p in challenger} == {2}


def test_a_failing_challenger_leaves_its_customers_to_the_champion(model: TrainedModel) -> None:
    # Given a challenger whose file does not match the registry
    state = _state(model.ref(), challenger=model.ref(version=2, run_id="run-2"), challenger_weight=0.5)
    files = {model.ref().onnx_key: model.onnx, model.ref(version=2, run_id="run-2").onnx_key: b"tampered"}
    setup = Setup(model, state, files=files)
    # When a batch is scored
    outcome = setup.engine.predict(_features(model, 40), request_id="req-7")
    # Then the champion served everyone and the challenger's error was counted
    assert {p["variant"] for p in outcome.body["predictions"]} == {"champion"}
    assert len(outcome.body["predictions"]) == 40
    assert outcome.telemetry.tallies[("2", "challenger")].counts["Errors"] == 1


def test_a_file_that_is_not_the_registrys_is_never_served(model: TrainedModel) -> None:
    # Given a champion whose registry sha256 is not the file's
    ref = model.ref().model_copy(update={"onnx_sha256": "0" * 64})
    setup = Setup(model, _state(ref), files={ref.onnx_key: model.onnx})
    # When scored, the mismatch is refused
    with pytest.raises(ModelFileMismatchError):
        setup.cache.champion()


def test_shadow_scores_are_logged_and_never_returned(model: TrainedModel) -> None:
    # Given a challenger in shadow at a 100% sample rate
    state = _state(model.ref(), challenger=model.ref(version=2, run_id="run-2"), shadow=True)
    setup = Setup(model, state)
    # When a batch is scored
    outcome = setup.engine.predict(_features(model, 5), request_id="req-8")
    # Then only the champion's predictions are returned
    assert {p["variant"] for p in outcome.body["predictions"]} == {"champion"}
    assert outcome.shadow_scored == 5
    # And the log holds five served and five shadow records
    logged = setup.logged()
    assert sorted((r["variant"], r["served"]) for r in logged) == [("champion", True)] * 5 + [("shadow", False)] * 5
    assert outcome.telemetry.tallies[("2", "shadow")].counts["ShadowScores"] == 5


class _Broken:
    """A session that fails (or sleeps) on run, and has the real model's inputs."""

    def __init__(self, real: Any, *, sleep: float = 0.0) -> None:
        self.real, self.sleep = real, sleep

    def get_inputs(self) -> Any:
        return self.real.get_inputs()

    def get_outputs(self) -> Any:
        return self.real.get_outputs()

    def run(self, *_: Any) -> Any:
        if self.sleep:
            time.sleep(self.sleep)
            return self.real.run(*_)
        raise RuntimeError("onnxruntime exploded")


@pytest.mark.parametrize("sleep", [0.0, 0.5])
def test_a_failing_or_slow_shadow_does_not_change_the_response(model: TrainedModel, sleep: float) -> None:
    # Given a shadow challenger (different threshold → distinct file key) whose session fails or is slow
    challenger = model.ref(version=2, run_id="run-2")
    state = _state(model.ref(), challenger=challenger, shadow=True)

    def sessions(data: bytes) -> Any:
        real = onnx_session(data)
        sessions.count += 1  # type: ignore[attr-defined]
        return real if sessions.count == 1 else _Broken(real, sleep=sleep)  # type: ignore[attr-defined]

    sessions.count = 0  # type: ignore[attr-defined]
    setup = Setup(model, state, session_factory=sessions)
    setup.cache.champion()  # the champion's session is built first
    baseline = Setup(model, _state(model.ref())).engine.predict(_features(model, 3), request_id="r").body
    # When scored
    started = time.perf_counter()
    outcome = setup.engine.predict(_features(model, 3), request_id="r")
    elapsed = time.perf_counter() - started
    # Then the response is the champion's alone, within the shadow's time bound, and the error is counted
    assert outcome.body == baseline
    assert elapsed < 0.3
    assert outcome.telemetry.tallies[("2", "shadow")].counts["ShadowErrors"] == 1
    assert all(r["variant"] == "champion" for r in setup.logged())


def test_scores_in_the_review_band_go_to_the_review_queue(model: TrainedModel) -> None:
    # Given the Telco review band [0.35, 0.55]
    setup = Setup(model, _state(model.ref()))
    # When 200 customers are scored
    predictions = setup.engine.predict(_features(model, 200), request_id="req-9").body["predictions"]
    # Then exactly those inside the band are queued for review with reason in_band and probability 1,
    # and the others the audit slice drew, with the audit rate as their probability
    in_band = {p["index"] for p in predictions if 0.35 <= p["score"] <= 0.55}
    assert in_band
    reviewed = setup.reviewed()
    by_index = {r["index"]: r["routing"] for r in reviewed}
    assert {i for i, routing in by_index.items() if "in_band" in routing["reasons"]} == in_band
    assert all(by_index[i]["inclusion_probability"] == 1.0 for i in in_band)
    audited = set(by_index) - in_band
    assert all(by_index[i]["reasons"] == ["audit"] for i in audited)
    assert all(by_index[i]["inclusion_probability"] == pytest.approx(setup.usecase.review.audit_rate) for i in audited)
    assert all(r["request_id"] == "req-9" for r in reviewed)
    assert len(setup.logged()) == 200


def test_a_segment_under_alert_routes_its_predictions_to_review(model: TrainedModel) -> None:
    # Given the monitor's latest report alerts on contract=Month-to-month
    setup = Setup(model, _state(model.ref()))
    setup.alerted = frozenset({"contract=Month-to-month"})
    records = _features(model, 100)
    # When the customers are scored
    setup.engine.predict(records, request_id="req-seg")
    # Then every month-to-month customer is queued with reason segment_alert, at the highest priority reason
    alerted = {i for i, r in enumerate(records) if r["contract"] == "Month-to-month"}
    assert alerted
    routed = {r["index"] for r in setup.reviewed() if "segment_alert" in r["routing"]["reasons"]}
    assert routed == alerted


def test_a_failing_prediction_log_does_not_fail_the_response(model: TrainedModel) -> None:
    setup = Setup(model, _state(model.ref()), sender=RecordingSender(fail=True))
    outcome = setup.engine.predict(_features(model, 3), request_id="req-10")
    assert len(outcome.body["predictions"]) == 3
    assert outcome.log_failures > 0
    assert outcome.telemetry.tallies[("1", "champion")].counts["PredictionLogErrors"] == outcome.log_failures


class _DownEndpoint:
    def __init__(self) -> None:
        self.calls = 0

    def invoke_endpoint(self, **_: Any) -> Any:
        from botocore.exceptions import EndpointConnectionError

        self.calls += 1
        raise EndpointConnectionError(endpoint_url="https://runtime.sagemaker")


def _heavy(model: TrainedModel, *, fallback: bool) -> UseCase:
    serving = model.usecase.serving.model_copy(update={"fallback_to_light": fallback})
    return model.usecase.model_copy(update={"serving": serving})


def test_a_down_endpoint_falls_back_to_the_light_model_marked_degraded(model: TrainedModel) -> None:
    # Given a heavy champion whose endpoint does not answer, fallback on
    client = _DownEndpoint()
    endpoint = EndpointScorer(
        client, "e", max_attempts=2, breaker=CircuitBreaker(failure_threshold=1, reset_seconds=30), sleep=lambda _: None
    )
    setup = Setup(model, _state(model.ref()), usecase=_heavy(model, fallback=True), endpoint=endpoint)
    # When scored twice
    first = setup.engine.predict(_features(model, 2), request_id="a")
    second = setup.engine.predict(_features(model, 2), request_id="b")
    # Then both answers come from the ONNX model, degraded, and the open breaker spared the second call
    for outcome in (first, second):
        assert [p["degraded"] for p in outcome.body["predictions"]] == [True, True]
        assert outcome.telemetry.tallies[("1", "champion")].counts["Fallbacks"] == 1
    assert client.calls == 2  # two attempts on the first request, none on the second


def test_a_down_endpoint_without_fallback_is_unavailable(model: TrainedModel) -> None:
    endpoint = EndpointScorer(
        _DownEndpoint(), "e", max_attempts=1, breaker=CircuitBreaker(failure_threshold=5, reset_seconds=30)
    )
    setup = Setup(model, _state(model.ref()), usecase=_heavy(model, fallback=False), endpoint=endpoint)
    with pytest.raises(EndpointUnavailableError):
        setup.engine.predict(_features(model, 1), request_id="c")


class _ScoringEndpoint:
    def invoke_endpoint(self, **request: Any) -> Any:
        import io

        records = json.loads(request["Body"])["records"]
        return {"Body": io.BytesIO(json.dumps({"predictions": [{"score": 0.9}] * len(records)}).encode())}


def test_a_heavy_champion_is_scored_by_its_endpoint(model: TrainedModel) -> None:
    endpoint = EndpointScorer(
        _ScoringEndpoint(), "e", max_attempts=1, breaker=CircuitBreaker(failure_threshold=5, reset_seconds=30)
    )
    setup = Setup(model, _state(model.ref()), usecase=_heavy(model, fallback=True), endpoint=endpoint)
    predictions = setup.engine.predict(_features(model, 3), request_id="d").body["predictions"]
    assert [(p["score"], p["label"], p["degraded"]) for p in predictions] == [(0.9, "Yes", False)] * 3


def test_a_new_deployment_is_served_within_the_cache_interval(model: TrainedModel) -> None:
    # Given version 1 served, with the use case's deployment cache interval
    setup = Setup(model, _state(model.ref()))
    interval = setup.usecase.serving.deployment_cache_seconds
    setup.files.files[model.ref(version=2, run_id="run-2").onnx_key] = model.onnx
    assert setup.engine.predict(_features(model, 1), request_id="e").body["predictions"][0]["model_version"] == 1
    # When version 2 is promoted
    setup.deployments.states[USECASE] = _state(model.ref(version=2, run_id="run-2"), revision=2)
    # Then it is not read again within the interval, and is served right after
    setup.clock.advance(interval - 0.1)
    assert setup.engine.predict(_features(model, 1), request_id="f").body["predictions"][0]["model_version"] == 1
    setup.clock.advance(0.1)
    assert setup.engine.predict(_features(model, 1), request_id="g").body["predictions"][0]["model_version"] == 2
    assert setup.deployments.reads == 2
    # And the model file was fetched once per version
    assert setup.files.reads == 2


def test_typed_and_untyped_bodies_give_the_same_answer_and_log(model: TrainedModel) -> None:
    # Given a canary at 0.3 with shadow on, and one batch as the wire decoder types it and as JSON objects
    state = _state(model.ref(), challenger=model.ref(version=2, run_id="run-2"), challenger_weight=0.3, shadow=True)
    records = _features(model, 120)
    typed = PredictBodyDecoder(model.usecase.contract).decode(json.dumps({"records": records}))
    assert typed.validated
    # When each is scored by its own engine
    untyped_setup, typed_setup = Setup(model, state), Setup(model, state)
    untyped = untyped_setup.engine.predict(records, request_id="req-w")
    answered = typed_setup.engine.predict(typed, request_id="req-w")
    # Then the responses are equal, both variants serve, and the logs hold the same lines
    assert answered.body == untyped.body
    assert set(answered.variants) == {"champion", "challenger"}
    key = lambda r: (r["variant"], r["index"])  # noqa: E731 - a sort key
    strip = lambda rows: sorted(({k: v for k, v in r.items() if k != "time"} for r in rows), key=key)  # noqa: E731
    assert strip(typed_setup.logged()) == strip(untyped_setup.logged())
    assert len(typed_setup.logged()) == 120 + answered.shadow_scored
    # And the score buckets count every served score once, and every shadow score in the shadow's own
    tallies = answered.telemetry.tallies.values()
    assert sum(sum(t.buckets.values()) for t in tallies if t.variant != "shadow") == 120
    assert sum(sum(t.buckets.values()) for t in tallies if t.variant == "shadow") == answered.shadow_scored


def test_a_large_request_is_logged_in_messages_under_the_sqs_limit(
    model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a message limit of 8 KiB
    monkeypatch.setattr("shared.scoring.prediction_log.MESSAGE_BYTES_LIMIT", 8 * 1024)
    setup = Setup(model, _state(model.ref()))
    # When 300 records are scored
    setup.engine.predict(_features(model, 300), request_id="req-big")
    # Then the log came in several messages, each under the limit, holding every prediction once
    bodies = setup.sender.sent[LOG_QUEUE]
    assert len(bodies) > 1
    assert all(len(b.encode()) <= 8 * 1024 for b in bodies)
    assert sorted(r["index"] for r in setup.logged()) == list(range(300))


class _VariantEndpoint:
    """An endpoint with production variants v1 (scores 0.9) and v2 (down), recording the variant each call named."""

    def __init__(self) -> None:
        self.targets: list[str | None] = []

    def invoke_endpoint(self, **request: Any) -> Any:
        import io

        from botocore.exceptions import ClientError

        target = request.get("TargetVariant")
        self.targets.append(target)
        if target == "v2":
            error = {
                "Error": {"Code": "ModelError", "Message": "v2 is down"},
                "ResponseMetadata": {"HTTPStatusCode": 424},
            }
            raise ClientError(error, "InvokeEndpoint")  # type: ignore[arg-type]
        records = json.loads(request["Body"])["records"]
        return {"Body": io.BytesIO(json.dumps({"predictions": [{"score": 0.9}] * len(records)}).encode())}


def test_a_heavy_canary_names_each_models_variant_and_a_failing_candidate_falls_back_alone(
    model: TrainedModel,
) -> None:
    # Given a heavy use case in canary (v2 at 50%) whose candidate variant is down, breakers opening at one failure
    client = _VariantEndpoint()
    endpoint = EndpointScorer(
        client, "e", max_attempts=1, breaker=CircuitBreaker(failure_threshold=1, reset_seconds=30)
    )
    state = _state(model.ref(), challenger=model.ref(version=2, run_id="run-2"), challenger_weight=0.5)
    setup = Setup(model, state, usecase=_heavy(model, fallback=True), endpoint=endpoint)
    # When a batch is scored twice
    first = setup.engine.predict(_features(model, 60), request_id="h1")
    second = setup.engine.predict(_features(model, 60), request_id="h2")
    # Then the champion's records went to variant v1 and the canary's to v2: the split stays by entity
    assert set(client.targets) == {"v1", "v2"}
    for outcome in (first, second):
        by_variant = {p["variant"]: p for p in outcome.body["predictions"]}
        assert by_variant["champion"]["score"] == 0.9
        assert not by_variant["champion"]["degraded"]
        # And the candidate's records were answered by its light model, degraded, counted as its fallbacks
        assert by_variant["challenger"]["degraded"]
        assert by_variant["challenger"]["model_version"] == 2
        assert outcome.telemetry.tallies[("2", "challenger")].counts["Fallbacks"] == 1
    # And the candidate's open breaker spared v2 the second call, while v1's stayed closed
    assert client.targets.count("v2") == 1
    assert client.targets.count("v1") == 2
    assert endpoint.breaker_for("v1").state == "closed"


def test_each_variant_reports_its_own_latency(model: TrainedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a canary whose challenger takes 50 ms more than the champion to score
    state = _state(model.ref(), challenger=model.ref(version=2, run_id="run-2"), challenger_weight=0.5)
    setup = Setup(model, state)
    real = setup.cache.model

    class _Slow:
        def __init__(self, loaded: Any) -> None:
            self.loaded = loaded

        def positive_scores(self, feed: Any) -> Any:
            time.sleep(0.05)
            return self.loaded.positive_scores(feed)

    monkeypatch.setattr(setup.cache, "model", lambda ref: _Slow(real(ref)) if ref.version == 2 else real(ref))
    # When a batch is scored
    outcome = setup.engine.predict(_features(model, 40), request_id="lat")
    # Then the challenger's latency is its own, not the request's shared by both
    challenger = outcome.telemetry.tallies[("2", "challenger")].latency_ms
    champion = outcome.telemetry.tallies[("1", "champion")].latency_ms
    assert challenger is not None
    assert champion is not None
    assert challenger >= 50
    assert champion < 50


class _UpdatingEndpoint:
    """An endpoint still on its previous config: one production variant, named by the stack, not v1 or v2."""

    def __init__(self) -> None:
        self.targets: list[str | None] = []

    def invoke_endpoint(self, **request: Any) -> Any:
        import io

        from botocore.exceptions import ClientError

        target = request.get("TargetVariant")
        self.targets.append(target)
        if target is not None:
            error = {
                "Error": {"Code": "ValidationError", "Message": f"variant {target} not found"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            raise ClientError(error, "InvokeEndpoint")  # type: ignore[arg-type]
        records = json.loads(request["Body"])["records"]
        return {"Body": io.BytesIO(json.dumps({"predictions": [{"score": 0.9}] * len(records)}).encode())}


def test_a_candidate_without_an_endpoint_variant_is_served_by_its_light_model_and_nothing_counts_as_failed(
    model: TrainedModel,
) -> None:
    # Given a heavy canary whose endpoint is still updating (neither v1 nor v2 exists yet), breakers at one failure
    client = _UpdatingEndpoint()
    endpoint = EndpointScorer(
        client, "e", max_attempts=1, breaker=CircuitBreaker(failure_threshold=1, reset_seconds=30)
    )
    state = _state(model.ref(), challenger=model.ref(version=2, run_id="run-2"), challenger_weight=0.5)
    setup = Setup(model, state, usecase=_heavy(model, fallback=True), endpoint=endpoint)
    # When a batch is scored
    outcome = setup.engine.predict(_features(model, 60), request_id="upd")
    # Then the endpoint's current variant answered the champion's customers, and the candidate's own light model
    # the canary's (the endpoint does not host it: still updating, or not managed by the stack), neither degraded
    by_variant = {p["variant"]: p for p in outcome.body["predictions"]}
    assert (by_variant["champion"]["score"], by_variant["champion"]["degraded"]) == (0.9, False)
    assert (by_variant["challenger"]["model_version"], by_variant["challenger"]["degraded"]) == (2, False)
    assert by_variant["challenger"]["score"] != 0.9
    # And no error or fallback was counted for either model, and no breaker opened
    assert all(not t.counts.get("Errors") and not t.counts.get("Fallbacks") for t in outcome.telemetry.tallies.values())
    assert endpoint.breaker.state == endpoint.breaker_for("v1").state == endpoint.breaker_for("v2").state == "closed"


def _refusals(setup: Setup) -> list[dict[str, Any]]:
    from shared.scoring.prediction_log_lake import RefusalLogRecord, parse_log_message

    return [
        {"request_id": line.request_id, "field": line.field, "reason": line.reason, "count": line.count}
        for body in setup.sender.sent.get(LOG_QUEUE, [])
        for line in parse_log_message(body)
        if isinstance(line, RefusalLogRecord)
    ]


def test_refused_records_reach_the_log_by_field_and_reason_kind_never_as_predictions(model: TrainedModel) -> None:
    # Given a batch where two records fail the contract: one out of range and one of the wrong type on tenure,
    # one with a contract value not allowed
    setup = Setup(model, _state(model.ref()))
    records = _features(model, 4)
    records[1]["tenure"] = 500
    records[2]["tenure"] = "ten"
    records[2]["contract"] = "Monthly"
    # When it is scored
    outcome = setup.engine.predict(records, request_id="req-r")
    # Then the good records are logged as predictions, and the refused ones as counts by field and reason kind
    assert len(outcome.errors) == 2
    assert len(setup.logged()) == 2
    assert sorted(_refusals(setup), key=lambda r: (r["field"], r["reason"])) == [
        {"request_id": "req-r", "field": "contract", "reason": "not allowed", "count": 1},
        {"request_id": "req-r", "field": "tenure", "reason": "out of range", "count": 1},
        {"request_id": "req-r", "field": "tenure", "reason": "wrong type", "count": 1},
    ]


def test_a_request_with_no_good_record_logs_its_refusals_and_a_clean_one_sends_none(model: TrainedModel) -> None:
    # Given a request whose only record lacks every feature
    setup = Setup(model, _state(model.ref()))
    # When it is refused (422)
    with pytest.raises(InvalidRecordsError):
        setup.engine.predict([{"rownames": 1}], request_id="req-422")
    # Then its refusals still reach the log, as missing fields, and no prediction does
    refused = _refusals(setup)
    assert {"request_id": "req-422", "field": "tenure", "reason": "missing", "count": 1} in refused
    assert setup.logged() == []
    # And a request with no refused record sends no refusal message
    clean = Setup(model, _state(model.ref()))
    clean.engine.predict(_features(model, 3), request_id="req-ok")
    assert _refusals(clean) == []
    assert all('"refusal"' not in body for body in clean.sender.sent.get(LOG_QUEUE, []))


@pytest.mark.parametrize(
    "values",
    [[0, 1, 72, -5], [1, None, 3, None], [2**53 + 1, 2**60 + 3, -(2**63), 16_777_217], [2**70, 1, 2, 3]],
    ids=["small", "nulls", "past-float32-and-float64", "past-int64"],
)
def test_the_feed_from_columns_reads_int_columns_as_the_feed_from_records_does(
    model: TrainedModel, values: list[Any]
) -> None:
    # Given: a validated batch whose int feature holds small ints, nulls, ints float32/float64 round, or past int64
    contract = model.usecase.contract
    whole = next(c.name for c in contract.features if c.type.value == "int")
    records = [{**model.records[i], whole: value} for i, value in enumerate(values)]
    columns = {name: [record.get(name) for record in records] for name in (c.name for c in contract.columns)}
    # When: the model's inputs are built from the columns and from the records
    from_columns = onnx_feed_from_columns(columns, contract)
    from_records = onnx_feed(records, contract)
    # Then: every input is the same, bit for bit (NaN for a null)
    assert from_columns.keys() == from_records.keys()
    for name, expected in from_records.items():
        assert from_columns[name].dtype == expected.dtype
        assert from_columns[name].shape == expected.shape
        np.testing.assert_array_equal(from_columns[name], expected)
