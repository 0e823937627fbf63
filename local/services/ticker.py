"""A daemon thread that calls one function every few seconds: how the embedded cloud's clocks tick.

The alarm evaluator (:mod:`local.services.alarms`) and the scheduler (:mod:`local.services.schedules`) each own one. A
tick that raises is logged and the next one runs anyway: a bad tick (the server stopping, say) must not
end the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Ticker:
    """Calls ``work`` every ``seconds`` in a daemon thread named ``name``, between :meth:`start` and :meth:`stop`."""

    def __init__(self, name: str, seconds: float, work: Callable[[], Any]) -> None:
        self.name = name
        self.seconds = seconds
        self._work = work
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self._work()
            except Exception:  # the loop must outlive a bad tick
                logger.exception("%s: tick failed", self.name)
