"""The model cache under concurrency: a candidate's slow download never holds a refresh or the champion."""

from __future__ import annotations

import hashlib
import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from shared.deployment.state import DeploymentState, ModelRef
from shared.scoring.engine import ScoringEngine
from shared.scoring.models import PROBABILITIES_OUTPUT, ModelCache
from shared.usecase.settings import load_usecase
from tests.scoring_fakes import FakeClock, InMemoryDeployments, SlowModelFiles
from tests.scoring_model import TELCO_FILE

USECASE = "telco_churn"
DOWNLOAD_SECONDS = 3.0
QUICK = 0.5
"""A refresh or a champion's answer takes milliseconds here; anything near DOWNLOAD_SECONDS waited on it."""


class FakeSession:
    """An ``InferenceSession`` stand-in: the contract's inputs, a constant probability of 0.4."""

    def __init__(self, inputs: tuple[str, ...]) -> None:
        self._inputs = inputs

    def get_inputs(self) -> list[Any]:
        return [SimpleNamespace(name=name) for name in self._inputs]

    def get_outputs(self) -> list[Any]:
        return [SimpleNamespace(name=PROBABILITIES_OUTPUT)]

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(next(iter(feed.values())))
        return [np.tile([0.6, 0.4], (rows, 1))]


def _ref(version: int) -> ModelRef:
    data = _file(version)
    return ModelRef(
        version=version,
        package_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/sluice-telco-churn/{version}",
        run_id=f"run-{version}",
        onnx_key=f"models/{USECASE}/run-{version}/model.onnx",
        onnx_sha256=hashlib.sha256(data).hexdigest(),
        threshold=0.3,
    )


def _file(version: int) -> bytes:
    return f"model file of version {version}".encode()


class Shadowing:
    """A champion (v1) and a candidate (v2) in shadow; the candidate's file downloads slowly."""

    def __init__(self) -> None:
        self.usecase = load_usecase(TELCO_FILE)
        features = tuple(c.name for c in self.usecase.contract.features)
        self.champion, self.candidate = _ref(1), _ref(2)
        self.deployments = InMemoryDeployments(
            DeploymentState(usecase=USECASE, champion=self.champion, challenger=self.candidate, shadow=True, revision=1)
        )
        self.files = SlowModelFiles(
            {r.onnx_key: _file(r.version) for r in (self.champion, self.candidate)},
            slow_keys={self.candidate.onnx_key},
            seconds=DOWNLOAD_SECONDS,
        )
        self.clock = FakeClock()
        self.cache = ModelCache(
            usecase=USECASE,
            deployments=self.deployments,
            files=self.files,
            bucket="lake",
            refresh_seconds=self.usecase.serving.deployment_cache_seconds,
            feature_names=frozenset(features),
            session_factory=lambda _data: FakeSession(features),
            clock=self.clock,
        )

    def load_candidate_in_background(self) -> threading.Thread:
        """The shadow thread's first use of the candidate: its download is under way when this returns."""
        thread = threading.Thread(target=self.cache.model, args=(self.candidate,), daemon=True)
        thread.start()
        assert self.files.started.wait(2), "the candidate's download did not start"
        return thread


def _timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def test_a_refresh_does_not_wait_behind_a_candidates_download() -> None:
    # Given a state read once, and the candidate's 3-second download under way in another thread
    setup = Shadowing()
    setup.cache.state()
    loading = setup.load_candidate_in_background()
    # When the state is due again and a request refreshes it
    setup.clock.advance(setup.usecase.serving.deployment_cache_seconds)
    state, seconds = _timed(setup.cache.state)
    # Then the refresh read the store at once, while the download was still running
    assert setup.deployments.reads == 2
    assert state.challenger == setup.candidate
    assert seconds < QUICK, f"the refresh waited {seconds:.2f} s"
    assert not setup.files.finished.is_set()
    setup.files.release()
    loading.join(5)


def test_the_champion_loads_and_scores_while_a_candidate_downloads() -> None:
    # Given a cold process whose shadow thread is downloading the candidate
    setup = Shadowing()
    setup.cache.state()
    loading = setup.load_candidate_in_background()
    # When a request needs the champion (not loaded yet) after the state is due again
    setup.clock.advance(setup.usecase.serving.deployment_cache_seconds)
    champion, seconds = _timed(setup.cache.champion)
    # Then it is loaded and served without waiting for the candidate
    assert champion.ref == setup.champion
    assert seconds < QUICK, f"the champion waited {seconds:.2f} s"
    assert not setup.files.finished.is_set()
    setup.files.release()
    loading.join(5)
    # And the candidate, loaded once, is kept
    assert setup.cache.model(setup.candidate).ref == setup.candidate
    assert setup.files.reads_by_key[setup.candidate.onnx_key] == 1


def test_two_first_uses_of_one_model_download_it_once() -> None:
    # Given two threads that need the candidate at the same time, while its download is slow
    setup = Shadowing()
    setup.files.seconds = 0.3
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(setup.cache.model(setup.candidate))) for _ in range(2)]
    # When both ask for it
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    # Then its file was downloaded once and both got the same loaded model
    assert setup.files.reads_by_key == {setup.candidate.onnx_key: 1}
    assert len(results) == 2
    assert results[0] is results[1]


def test_champion_requests_are_answered_while_the_shadow_candidate_loads() -> None:
    # Given the engine serving a champion, with a candidate in shadow whose download takes 3 s
    setup = Shadowing()
    engine = ScoringEngine(usecase=setup.usecase, models=setup.cache)
    from shared.promotion.offline import contract_records

    records = contract_records(setup.usecase.contract, 5)
    records = [{**r, setup.usecase.contract.entity_id: index} for index, r in enumerate(records)]
    engine.predict(records, request_id="warm-0")  # the first request starts the shadow thread's download
    assert setup.files.started.wait(2)
    # When requests keep coming, the deployment state due again before each
    slowest = 0.0
    for index in range(5):
        setup.clock.advance(setup.usecase.serving.deployment_cache_seconds)
        outcome, seconds = _timed(lambda i=index: engine.predict(records, request_id=f"req-{i}"))
        slowest = max(slowest, seconds)
        # Then each is answered by the champion, while the candidate still downloads
        assert outcome.variants == ("champion",)
    assert slowest < QUICK, f"a champion request waited {slowest:.2f} s"
    assert not setup.files.finished.is_set()
    assert setup.deployments.reads == 6
    setup.files.release()
