"""In-memory fakes of the scoring adapters (deployment state, model files, queues, clocks)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from shared.deployment.state import DeploymentState
from shared.lake.exceptions import StorageError
from shared.scoring.exceptions import PredictionLogError


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InMemoryDeployments:
    """A :class:`~shared.scoring.models.DeploymentReader` holding one state per use case; counts reads."""

    def __init__(self, *states: DeploymentState) -> None:
        self.states = {s.usecase: s for s in states}
        self.reads = 0

    def get(self, usecase: str) -> DeploymentState:
        self.reads += 1
        return self.states.get(usecase, DeploymentState(usecase=usecase))


class InMemoryModelFiles:
    """A :class:`~shared.scoring.models.ModelFileReader` over a dict; counts reads."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})
        self.reads = 0
        self.documents: dict[str, Any] = {}

    def get_bytes(self, bucket: str, key: str) -> bytes:
        self.reads += 1
        try:
            return self.files[key]
        except KeyError as exc:
            raise StorageError(f"no such object s3://{bucket}/{key}") from exc

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        self.documents[key] = document


class SlowModelFiles(InMemoryModelFiles):
    """Model files whose ``slow_keys`` take ``seconds`` to download (or until :meth:`release`); ``started``
    is set when such a download begins, ``reads_by_key`` counts the downloads of each key."""

    def __init__(self, files: dict[str, bytes], *, slow_keys: set[str], seconds: float = 3.0) -> None:
        super().__init__(files)
        self.slow_keys = slow_keys
        self.seconds = seconds
        self.started = threading.Event()
        self.finished = threading.Event()
        self._released = threading.Event()
        self._count_lock = threading.Lock()
        self.reads_by_key: dict[str, int] = {}

    def release(self) -> None:
        self._released.set()

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self._count_lock:
            self.reads_by_key[key] = self.reads_by_key.get(key, 0) + 1
        if key in self.slow_keys:
            self.started.set()
            self._released.wait(self.seconds)
            data = super().get_bytes(bucket, key)
            self.finished.set()
            return data
        return super().get_bytes(bucket, key)


class RecordingSender:
    """A :class:`~shared.scoring.prediction_log.MessageSender` that keeps what it was given (or fails)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: dict[str, list[str]] = {}
        self.fail = fail

    def send(self, queue_url: str, bodies: Sequence[str]) -> int:
        if self.fail:
            raise PredictionLogError("the queue is down")
        self.sent.setdefault(queue_url, []).extend(bodies)
        return 0
