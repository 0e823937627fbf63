"""Production traffic in which one segment drifts and degrades, for `make demo` and the monitoring e2e test.

Derived from the contract, not from any one dataset (:func:`plan_shift`): the segment is the first declared
segment column's most common value in the sample; the planted features are the first two numeric features that
are not a segment and not a coded flag (no ``allowed`` list). :func:`shifted_traffic` draws ``n`` sample rows
(seeded); in the segment each planted feature moves up by one standard deviation of the sample (clipped to the
contract's range) and the label is drawn at random at the segment's own positive rate — so the model's ranking
there is no better than chance while the positive rate stays as in training. Every other row keeps its values and
its true label. :func:`score_and_label` posts the records to the scoring API and sends each label back through the
feedback API by ``request_id`` and ``entity_id``, as a product service would once outcomes are known.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from local.demo.traffic import post_json
from shared.usecase.settings import ColumnType, UseCase


@dataclass(frozen=True)
class PlannedShift:
    """Where the drift is planted: rows with ``segment_column == segment_value``, features ``features``."""

    segment_column: str
    segment_value: str
    features: tuple[str, ...]
    steps: dict[str, float] = field(default_factory=dict)
    """Feature → how far its values move up (one standard deviation of the sample)."""

    @property
    def segment(self) -> str:
        return f"{self.segment_column}={self.segment_value}"


@dataclass(frozen=True)
class LabeledRecord:
    record: dict[str, Any]
    label: str
    shifted: bool


@dataclass
class Sent:
    """What :func:`score_and_label` sent and what came back."""

    request_ids: list[str] = field(default_factory=list)
    predictions: int = 0
    labels: int = 0
    failures: list[str] = field(default_factory=list)
    by_segment: Counter[str] = field(default_factory=Counter)


def typed_record(usecase: UseCase, row: dict[str, str]) -> dict[str, Any]:
    """A sample row as a product service sends it: typed JSON values, no label."""
    record: dict[str, Any] = {}
    for column in usecase.contract.columns:
        if column.name == usecase.contract.label:
            continue
        value = row.get(column.name, "")
        if value == "":
            record[column.name] = None
        elif column.type is ColumnType.INT:
            record[column.name] = int(float(value))
        elif column.type is ColumnType.FLOAT:
            record[column.name] = float(value)
        else:
            record[column.name] = value
    return record


def plan_shift(usecase: UseCase, rows: Sequence[dict[str, str]]) -> PlannedShift:
    contract = usecase.contract
    if not contract.segments:
        raise ValueError(f"use case {usecase.name!r} declares no segments: nothing to localize a shift in")
    column = contract.segments[0]
    value = Counter(row[column] for row in rows if row.get(column, "") != "").most_common(1)[0][0]
    numeric = [
        c.name
        for c in contract.features
        if c.type in (ColumnType.INT, ColumnType.FLOAT) and c.allowed is None and c.name not in contract.segments
    ][:2]
    steps = {}
    for name in numeric:
        values = [float(row[name]) for row in rows if row.get(name, "") != ""]
        steps[name] = statistics.pstdev(values)
    return PlannedShift(segment_column=column, segment_value=value, features=tuple(numeric), steps=steps)


def shifted_traffic(
    usecase: UseCase, rows: Sequence[dict[str, str]], plan: PlannedShift, *, n: int, seed: int
) -> list[LabeledRecord]:
    """``n`` sample rows drawn with ``seed``; in the planned segment shifted and labeled at random."""
    contract = usecase.contract
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not a secret
    label_column, positive = contract.label, str(contract.positive_class)
    in_segment = [row for row in rows if row[plan.segment_column] == plan.segment_value]
    positive_rate = sum(row[label_column] == positive for row in in_segment) / max(len(in_segment), 1)
    negative = next((str(v) for v in contract.column(label_column).allowed or () if str(v) != positive), "")
    drawn = rng.sample(list(rows), k=min(n, len(rows)))
    traffic = []
    for row in drawn:
        record = typed_record(usecase, row)
        if row[plan.segment_column] != plan.segment_value:
            traffic.append(LabeledRecord(record=record, label=row[label_column], shifted=False))
            continue
        for name in plan.features:
            if record.get(name) is None:
                continue
            column = contract.column(name)
            moved = record[name] + plan.steps[name]
            if column.max is not None:
                moved = min(moved, column.max)
            record[name] = round(moved) if column.type is ColumnType.INT else round(moved, 2)
        label = positive if rng.random() < positive_rate else negative
        traffic.append(LabeledRecord(record=record, label=label, shifted=True))
    return traffic


def score_and_label(
    api_url: str, usecase: UseCase, api_key: str, traffic: Sequence[LabeledRecord], *, batch_size: int = 250
) -> Sent:
    """Score ``traffic`` in batches over HTTP, then send every served record's label to the feedback API."""
    base = api_url.rstrip("/")
    predict, feedback = f"{base}/v1/{usecase.name}/predict", f"{base}/v1/{usecase.name}/feedback"
    entity = usecase.contract.entity_id
    sent = Sent()
    labels: list[dict[str, Any]] = []
    for start in range(0, len(traffic), batch_size):
        batch = traffic[start : start + batch_size]
        status, body = post_json(predict, {"records": [item.record for item in batch]}, api_key)
        if status != 200:
            sent.failures.append(f"predict HTTP {status}: {str(body)[:200]}")
            continue
        request_id = str(body["request_id"])
        sent.request_ids.append(request_id)
        sent.predictions += len(body.get("predictions", []))
        for item in batch:
            labels.append({"request_id": request_id, "entity_id": item.record[entity], "label": item.label})
            sent.by_segment["shifted" if item.shifted else "unchanged"] += 1
    for start in range(0, len(labels), batch_size):  # as outcomes arrive: a request's worth at a time
        chunk = labels[start : start + batch_size]
        status, body = post_json(feedback, {"labels": chunk}, api_key)
        if status != 202:
            sent.failures.append(f"feedback HTTP {status}: {str(body)[:200]}")
            continue
        sent.labels += len(chunk)
    return sent


def served_lines(s3: Any, bucket: str, prefix: str, request_ids: Sequence[str]) -> int:
    """Served prediction-log lines under ``prefix`` that belong to ``request_ids`` (``s3``: a boto3 client)."""
    return sum(bool(line.get("served")) for line in logged_lines(s3, bucket, prefix, request_ids))


def logged_lines(s3: Any, bucket: str, prefix: str, request_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The prediction-log lines under ``prefix`` (served and shadow) that belong to ``request_ids``."""
    import json

    wanted, lines = set(request_ids), []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            for line in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().splitlines():
                record = json.loads(line)
                if record.get("request_id") in wanted:
                    lines.append(record)
    return lines
