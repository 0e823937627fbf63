"""Scoring recorded records offline with a model's ONNX file: replay scores and the latency figure.

Records come from the prediction log (``features`` of served predictions). The offline latency is the
p99 of :data:`LATENCY_RUNS` single-record ``session.run`` calls of the candidate on those records, so it
is measured on traffic-like inputs with the scoring layer's packages (onnxruntime + numpy; the promotion
function has no pyarrow to read the training holdout). With an empty log (a first deployment), the
records are synthesized from the contract (:func:`contract_records`): mid-range numbers, the first
allowed category — the cost of one ``run`` hardly depends on the values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from shared.deployment.state import ModelRef
from shared.promotion.statistics import p99
from shared.scoring.models import LoadedModel, load_model, onnx_session
from shared.usecase.features import onnx_feed
from shared.usecase.settings import ColumnType, Contract

LATENCY_RUNS = 200
SYNTHETIC_RECORDS = 20


def load(ref: ModelRef, data: bytes, contract: Contract) -> LoadedModel:
    """A verified ONNX model (sha256 against the registry's) with its session."""
    return load_model(ref, data, feature_names=frozenset(contract.names), session_factory=onnx_session)


def scores(model: LoadedModel, records: Sequence[Mapping[str, Any]], contract: Contract) -> np.ndarray:
    """Positive-class probabilities of ``records`` (one batch)."""
    if not records:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(model.positive_scores(onnx_feed(records, contract)), dtype=np.float64)


def latency_p99_ms(
    model: LoadedModel,
    records: Sequence[Mapping[str, Any]],
    contract: Contract,
    *,
    runs: int = LATENCY_RUNS,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """p99 (ms) of ``runs`` single-record calls, cycling through ``records``; one warm-up call first."""
    if not records:
        raise ValueError("latency needs at least one record")
    feeds = [onnx_feed([record], contract) for record in records[:runs]]
    model.positive_scores(feeds[0])
    timings = []
    for index in range(runs):
        started = clock()
        model.positive_scores(feeds[index % len(feeds)])
        timings.append((clock() - started) * 1000.0)
    return p99(timings)


def contract_records(contract: Contract, count: int = SYNTHETIC_RECORDS) -> list[dict[str, Any]]:
    """Plausible records built from the contract alone (for the latency figure when the log is empty)."""
    records = []
    for index in range(count):
        record: dict[str, Any] = {}
        for column in contract.features:
            if column.allowed:
                record[column.name] = column.allowed[index % len(column.allowed)]
            elif column.type in (ColumnType.INT, ColumnType.FLOAT):
                low = column.min if column.min is not None else 0.0
                high = column.max if column.max is not None else low + 100.0
                value = low + (high - low) * (index + 1) / (count + 1)
                record[column.name] = int(value) if column.type is ColumnType.INT else value
            elif column.type is ColumnType.BOOL:
                record[column.name] = index % 2 == 0
            else:
                record[column.name] = None
        records.append(record)
    return records
