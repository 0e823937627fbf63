"""The models a score function serves: the deployment state, re-read at most every N seconds, and ONNX sessions.

:class:`ModelCache` reads the deployment state through a :class:`DeploymentReader` at most every
``refresh_seconds`` (so a promotion or rollback is served within that bound, without a restart), loads
each model's ONNX file from the lake through a :class:`ModelFileReader`, refuses a file whose sha256 is
not the registry's (:class:`ModelFileMismatchError`), and keeps one ``InferenceSession`` per model
version for as long as the state names that version.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from shared.deployment.exceptions import DeploymentError
from shared.deployment.state import DeploymentState, ModelRef
from shared.registry.exceptions import ModelIntegrityError
from shared.scoring.exceptions import ModelFileMismatchError, NoChampionError

PROBABILITIES_OUTPUT = "probabilities"


class DeploymentReader(Protocol):
    def get(self, usecase: str) -> DeploymentState: ...


class ModelFileReader(Protocol):
    def get_bytes(self, bucket: str, key: str) -> bytes: ...


SessionFactory = Callable[[bytes], Any]


def onnx_session(model: bytes) -> Any:
    """An onnxruntime session on one thread (Lambda's vCPUs are few; requests run one at a time)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class LoadedModel:
    """A verified model and its session; ``input_names`` are what it takes, computed once."""

    ref: ModelRef
    session: Any
    input_names: tuple[str, ...]

    def positive_scores(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Positive-class probabilities for a feed holding (at least) this model's inputs."""
        inputs = {name: feed[name] for name in self.input_names}
        (probabilities,) = self.session.run([PROBABILITIES_OUTPUT], inputs)
        return np.asarray(probabilities)[:, 1]


def load_model(
    ref: ModelRef, data: bytes, *, feature_names: frozenset[str], session_factory: SessionFactory
) -> LoadedModel:
    """Verify ``data`` against the registry's sha256, then build its session and check its inputs."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != ref.onnx_sha256:
        raise ModelFileMismatchError(
            f"model version {ref.version} ({ref.onnx_key}) has sha256 {actual}; the registry says {ref.onnx_sha256}"
        )
    session = session_factory(data)
    input_names = tuple(i.name for i in session.get_inputs())
    unknown = sorted(set(input_names) - feature_names)
    if unknown:
        raise ModelIntegrityError(f"model version {ref.version} takes inputs {unknown} the contract does not declare")
    if PROBABILITIES_OUTPUT not in {o.name for o in session.get_outputs()}:
        raise ModelIntegrityError(f"model version {ref.version} has no {PROBABILITIES_OUTPUT!r} output")
    return LoadedModel(ref=ref, session=session, input_names=input_names)


class ModelCache:
    """Deployment state and loaded models of one use case, kept across invocations of one process.

    Two kinds of lock, so that nothing waits on a model it does not need: ``_lock`` guards the state and the
    dict of loaded models and is held only to read or swap them (never across I/O or a session's creation);
    each model version has its own load lock, held while its file is downloaded and its session built, so a
    version is loaded once even when two threads first need it together. A deployment-state refresh or the
    champion's scoring therefore never waits behind a candidate's download (the shadow thread loading it).
    """

    def __init__(
        self,
        *,
        usecase: str,
        deployments: DeploymentReader,
        files: ModelFileReader,
        bucket: str,
        refresh_seconds: float,
        feature_names: frozenset[str],
        session_factory: SessionFactory = onnx_session,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._usecase = usecase
        self._deployments = deployments
        self._files = files
        self._bucket = bucket
        self._refresh_seconds = refresh_seconds
        self._feature_names = feature_names
        self._session_factory = session_factory
        self._clock = clock
        self._state: DeploymentState | None = None
        self._read_at = 0.0
        self._models: dict[int, LoadedModel] = {}
        self._loading: dict[int, threading.Lock] = {}
        """One load lock per model version ever needed (a few per process; never pruned, so never two)."""
        self._lock = threading.Lock()

    def state(self) -> DeploymentState:
        """The deployment state, read again when the cached one is ``refresh_seconds`` old."""
        now = self._clock()
        if self._state is None or now - self._read_at >= self._refresh_seconds:
            try:
                state = self._deployments.get(self._usecase)
            except DeploymentError:
                if self._state is None:
                    raise
                self._read_at = now  # serve the last known state; try again after the next interval
                return self._state
            with self._lock:
                self._state, self._read_at = state, now
                keep = {ref.version for ref in (state.champion, state.challenger) if ref is not None}
                for version in [v for v in self._models if v not in keep]:
                    del self._models[version]
        return self._state

    def champion(self) -> LoadedModel:
        state = self.state()
        if state.champion is None:
            raise NoChampionError(f"no model is deployed for {self._usecase!r} yet")
        return self.model(state.champion)

    def _loaded(self, ref: ModelRef) -> LoadedModel | None:
        loaded = self._models.get(ref.version)
        return loaded if loaded is not None and loaded.ref.onnx_sha256 == ref.onnx_sha256 else None

    def model(self, ref: ModelRef) -> LoadedModel:
        """The loaded model of ``ref`` (loaded and verified the first time it is needed, by one thread)."""
        loaded = self._loaded(ref)
        if loaded is not None:
            return loaded
        with self._lock:
            load_lock = self._loading.setdefault(ref.version, threading.Lock())
        with load_lock:  # only the threads that need this very version wait here
            loaded = self._loaded(ref)
            if loaded is None:
                data = self._files.get_bytes(self._bucket, ref.onnx_key)
                loaded = load_model(ref, data, feature_names=self._feature_names, session_factory=self._session_factory)
                with self._lock:
                    self._models[ref.version] = loaded
            return loaded

    def warm(self) -> None:
        """Load every model the current state names (after a cold start, before the first request)."""
        state = self.state()
        for ref in (state.champion, state.challenger):
            if ref is not None:
                self.model(ref)
