"""Synthetic scoring traffic over HTTP, for `make demo` and the end-to-end tests.

:class:`Traffic` posts batches of records to the scoring API in a background thread, as a product
service would, and counts what came back: answers per variant and model version, and every request
that did not get HTTP 200 (a promotion must never fail a customer's request).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self


def post_json(url: str, body: Any, api_key: str, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as JSON with the API key; the status and the decoded answer (HTTP errors included)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310 - local URL
    request.add_header("content-type", "application/json")
    request.add_header("x-api-key", api_key)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        body_text = error.read() or b"{}"
        try:
            return error.code, json.loads(body_text)
        except json.JSONDecodeError:
            return error.code, {"message": body_text.decode(errors="replace")}


@dataclass
class Traffic:
    """Batches of ``batch_size`` records every ``pause_s`` seconds to ``url`` until stopped."""

    url: str
    api_key: str
    records: Sequence[dict[str, Any]]
    batch_size: int = 50
    pause_s: float = 0.1
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    served: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Answers per (variant, model version)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Self:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="synthetic-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def snapshot(self) -> tuple[int, list[str], Counter[tuple[str, int]]]:
        """Requests sent, failures, answers per (variant, version) so far."""
        with self._lock:
            return self.requests, list(self.failures), Counter(self.served)

    def _run(self) -> None:
        offset = 0
        while not self._stop.is_set():
            batch = [self.records[(offset + i) % len(self.records)] for i in range(self.batch_size)]
            offset = (offset + self.batch_size) % len(self.records)
            try:
                status, body = post_json(self.url, {"records": batch}, self.api_key)
            except OSError as exc:  # connection refused, timeout: a failed request all the same
                status, body = 0, {"message": str(exc)}
            with self._lock:
                self.requests += 1
                if status != 200:
                    self.failures.append(f"HTTP {status}: {str(body)[:200]}")
                else:
                    for prediction in body.get("predictions", []):
                        self.served[(str(prediction["variant"]), int(prediction["model_version"]))] += 1
            self._stop.wait(self.pause_s)
