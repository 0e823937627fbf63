"""CloudWatch Embedded Metric Format (EMF) → ``PutMetricData``, for handlers run in-process.

On AWS, CloudWatch Logs extracts metrics from EMF log lines. Locally there are no log groups
receiving handler output, so :class:`StdoutTee` copies what a handler prints to ``sys.stdout`` while
it runs (the output still reaches the console), :func:`parse_emf` turns each EMF line into metric
data and :class:`EmfPublisher` sends them to the embedded cloud's CloudWatch with ``PutMetricData``.

Emulated: every ``_aws.CloudWatchMetrics`` directive (``Namespace``, each ``Dimensions`` set -- the
values are read from the document's root, ``Metrics`` ``Name`` / ``Unit`` / ``StorageResolution``),
single values and value arrays, the document's ``_aws.Timestamp`` (epoch milliseconds).

Not emulated: nothing reaches CloudWatch Logs; lines written to ``sys.stderr``, by subprocesses or
through a stream object captured before the handler ran are not seen (powertools' ``Metrics`` prints
to ``sys.stdout`` at flush time, so it is seen); a document invalid by the EMF specification is
skipped with a warning rather than landing in the log group only; the 100-metrics / 30-dimensions
limits are not enforced. Handlers run concurrently: the runtime captures what each handler's thread
prints (:func:`local.services.lambda_code.captured_output`), so one handler's lines never land in another's.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TextIO

logger = logging.getLogger(__name__)

MAX_DATUMS_PER_CALL: Final = 150
MAX_VALUES_PER_DATUM: Final = 150


@dataclass(frozen=True, kw_only=True)
class MetricDatum:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    values: tuple[float, ...]
    unit: str
    timestamp: datetime
    storage_resolution: int = 60

    def to_api(self) -> dict[str, Any]:
        """The ``MetricData`` entry of ``PutMetricData``."""
        datum: dict[str, Any] = {
            "MetricName": self.name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
            "Timestamp": self.timestamp,
            "Unit": self.unit,
            "StorageResolution": self.storage_resolution,
        }
        if len(self.values) == 1:
            datum["Value"] = self.values[0]
        else:
            datum["Values"] = list(self.values)
        return datum


class EmfFormatError(ValueError):
    """A line that claims to be EMF (``_aws.CloudWatchMetrics``) is not valid EMF."""


def is_emf(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and isinstance(document.get("_aws"), dict)
        and "CloudWatchMetrics" in document["_aws"]
    )


def metrics_from_document(document: dict[str, Any]) -> list[MetricDatum]:
    """One EMF document → its metric data (one datum per metric per dimension set)."""
    meta = document["_aws"]
    try:
        timestamp = datetime.fromtimestamp(int(meta["Timestamp"]) / 1000, UTC)
        data: list[MetricDatum] = []
        for directive in meta["CloudWatchMetrics"]:
            namespace = str(directive["Namespace"])
            dimension_sets = directive.get("Dimensions") or [[]]
            for metric in directive["Metrics"]:
                name = str(metric["Name"])
                raw = document[name]
                values = tuple(float(v) for v in (raw if isinstance(raw, list) else [raw]))
                for dimension_set in dimension_sets:
                    dimensions = tuple((str(d), str(document[d])) for d in dimension_set)
                    data.append(
                        MetricDatum(
                            namespace=namespace,
                            name=name,
                            dimensions=dimensions,
                            values=values,
                            unit=str(metric.get("Unit", "None")),
                            timestamp=timestamp,
                            storage_resolution=int(metric.get("StorageResolution", 60)),
                        )
                    )
    except (KeyError, TypeError, ValueError) as exc:
        raise EmfFormatError(f"invalid EMF document: {exc!r}") from exc
    return data


def parse_emf(lines: Iterable[str]) -> list[MetricDatum]:
    """Every EMF line among ``lines`` → metric data; other lines are ignored, invalid EMF is logged."""
    data: list[MetricDatum] = []
    for line in lines:
        text = line.strip()
        if not text.startswith("{") or '"_aws"' not in text:
            continue
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if not is_emf(document):
            continue
        try:
            data.extend(metrics_from_document(document))
        except EmfFormatError as exc:
            logger.warning("skipped an EMF line: %s", exc)
    return data


class StdoutTee(io.TextIOBase):
    """A text stream writing through to ``target`` and keeping a copy."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._copy = io.StringIO()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._copy.write(text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    def captured(self) -> str:
        with self._lock:
            return self._copy.getvalue()


@contextmanager
def tee_stdout() -> Iterator[StdoutTee]:
    """Replace ``sys.stdout`` by a :class:`StdoutTee` for the duration of the block."""
    original = sys.stdout
    tee = StdoutTee(original)
    sys.stdout = tee
    try:
        yield tee
    finally:
        sys.stdout = original


class EmfPublisher:
    """Sends EMF metric data to CloudWatch (``client_factory("cloudwatch")``)."""

    def __init__(self, client_factory: Callable[[str], Any]) -> None:
        self._client_factory = client_factory
        self.published = 0

    def publish_output(self, output: str) -> None:
        """Publish every EMF line of a handler's captured output."""
        self.publish(parse_emf(output.splitlines()))

    def publish(self, data: list[MetricDatum]) -> int:
        if not data:
            return 0
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for datum in data:
            for start in range(0, len(datum.values), MAX_VALUES_PER_DATUM):
                chunk = MetricDatum(**{**datum.__dict__, "values": datum.values[start : start + MAX_VALUES_PER_DATUM]})
                by_namespace.setdefault(datum.namespace, []).append(chunk.to_api())
        cloudwatch = self._client_factory("cloudwatch")
        for namespace, entries in by_namespace.items():
            for start in range(0, len(entries), MAX_DATUMS_PER_CALL):
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=entries[start : start + MAX_DATUMS_PER_CALL])
        self.published += len(data)
        return len(data)
