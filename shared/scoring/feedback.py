"""Feedback: observed labels sent back by clients, checked against the contract and written to the lake once.

Each item names the prediction it answers by ``request_id`` or the customer by ``entity_id`` and carries
a label the contract's label column allows. It is written to ``feedback/{usecase}/date=YYYY-MM-DD/
<sha256(usecase|subject|label)>.json`` (:func:`shared.lake.layout.feedback_key`; the date is ``observed_at``'s,
else the day it was received), so the same feedback sent twice lands on the same object.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from shared.lake import layout as lake
from shared.scoring.exceptions import InvalidFeedbackError
from shared.usecase.settings import Contract

PROVENANCE = "provenance"
"""A feedback document written by human review carries where it came from under this key (reviewers, routing
reasons, taxonomy value, decision time and the item's ``inclusion_probability``); the API never writes it."""
INCLUSION_PROBABILITY = "inclusion_probability"
"""Provenance field: the probability that review picked the labelled prediction (monitoring weighs it 1/P)."""
MAX_FEEDBACK_ITEMS = 1000
FEEDBACK_WRITE_CONCURRENCY = 10
"""Labels of one request written to the lake at a time (botocore's default connection pool holds 10)."""


class FeedbackItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    entity_id: str | int | None = None
    label: str | int | bool
    observed_at: datetime | None = None

    @model_validator(mode="after")
    def _names_a_subject(self) -> FeedbackItem:
        if self.request_id is None and self.entity_id is None:
            raise ValueError("each label needs a request_id or an entity_id")
        return self

    @property
    def subject(self) -> str:
        """What the label answers: a request, an entity in a request (a batch holds many), or an entity."""
        if self.request_id is None:
            return f"entity:{self.entity_id}"
        if self.entity_id is None:
            return f"request:{self.request_id}"
        return f"request:{self.request_id}/entity:{self.entity_id}"


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK_ITEMS)


class DocumentWriter(Protocol):
    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None: ...


@lru_cache(maxsize=8)
def _label_adapter(contract: Contract) -> TypeAdapter[Any]:
    return TypeAdapter(contract.column(contract.label).python_type(strict=True))


def label_errors(items: Sequence[FeedbackItem], contract: Contract) -> list[dict[str, Any]]:
    """Per item, why its label is not one the contract's label column allows (empty when all are)."""
    adapter = _label_adapter(contract)
    errors = []
    for index, item in enumerate(items):
        try:
            adapter.validate_python(item.label)
        except ValidationError as exc:
            reasons = [{"field": "label", "reason": err["msg"]} for err in exc.errors(include_url=False)]
            errors.append({"index": index, "errors": reasons})
    return errors


def feedback_documents(
    request: FeedbackRequest, *, usecase: str, contract: Contract, received_at: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """(lake key, document) of each item; raises :class:`InvalidFeedbackError` when any label is not allowed."""
    problems = label_errors(request.labels, contract)
    if problems:
        raise InvalidFeedbackError(problems)
    documents = []
    for item in request.labels:
        day = (item.observed_at or received_at).astimezone(UTC).date()
        key = lake.feedback_key(usecase, day=day, subject=item.subject, label=item.label)
        document = {
            "usecase": usecase,
            "request_id": item.request_id,
            "entity_id": item.entity_id,
            "label": item.label,
            "observed_at": item.observed_at.isoformat() if item.observed_at else None,
            "received_at": received_at.isoformat(),
        }
        documents.append((key, document))
    return documents


def record_feedback(
    request: FeedbackRequest,
    *,
    usecase: str,
    contract: Contract,
    writer: DocumentWriter,
    bucket: str,
    received_at: datetime | None = None,
) -> int:
    """Write every item to the lake (idempotent keys); returns how many were accepted."""
    documents = feedback_documents(
        request, usecase=usecase, contract=contract, received_at=received_at or datetime.now(UTC)
    )
    unique = dict(documents)
    if len(unique) <= 1:
        for key, document in unique.items():
            writer.put_json(bucket, key, document)
        return len(documents)
    # One object a label (its key is its identity): written side by side, so a request of hundreds of labels
    # costs a few round trips of S3 latency, not hundreds, and stays well inside the function's timeout.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(FEEDBACK_WRITE_CONCURRENCY, len(unique))) as pool:
        for written in [pool.submit(writer.put_json, bucket, key, document) for key, document in unique.items()]:
            written.result()  # the first failure is raised, as a sequential loop would
    return len(documents)
