"""The reviewer's API behind API Gateway's Cognito authorizer: what each route answers (pure over the service).

Routes (under ``/v1/{usecase}/review``): ``GET`` the queue page (``?item=<id>``: one item's page), ``GET /login``
the sign-in form (no authorizer, no data), ``GET /items`` the queue as JSON, ``GET /items/{id}``,
``POST /items/{id}/claim``, ``POST /items/{id}/decision`` (``{"label", "taxonomy", "note"}``), ``GET /stats``.
The reviewer is the ID token's ``cognito:username`` claim that API Gateway's authorizer put in
``requestContext.authorizer.claims``: without it every route but the sign-in form answers 401. Errors answer
``{"message", "reason"}`` with their :mod:`shared.review.exceptions` status.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.review import page
from shared.review.exceptions import InvalidDecisionError, ReviewError
from shared.review.service import ReviewService
from shared.review.types import NOTE_MAX_CHARS, ReviewItem
from shared.usecase.settings import UseCase

USERNAME_CLAIM = "cognito:username"
HTML = "text/html; charset=utf-8"
JSON = "application/json"


class UnauthenticatedError(ReviewError):
    """No reviewer identity in the request (401): the authorizer let nothing through, or it is not configured."""

    status = 401


class DecisionBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str | int | bool
    taxonomy: str = Field(min_length=1, max_length=48)
    note: str = Field(default="", max_length=NOTE_MAX_CHARS)


@dataclass(frozen=True, kw_only=True)
class Answer:
    status: int
    body: str
    content_type: str = JSON


def reviewer_of(claims: Mapping[str, Any] | None) -> str:
    """The reviewer: the token's username claim (never a body field); :class:`UnauthenticatedError` without."""
    username = (claims or {}).get(USERNAME_CLAIM)
    if not isinstance(username, str) or not username:
        raise UnauthenticatedError("sign in: no reviewer identity in the request")
    return username


def error_answer(exc: ReviewError) -> Answer:
    reason = getattr(exc, "reason", None) or type(exc).__name__.removesuffix("Error").lower()
    return Answer(status=exc.status, body=json.dumps({"message": str(exc), "reason": reason}))


Contributions = Callable[[ReviewItem], Mapping[str, float] | None]
"""What drove an item's score (per-feature contributions), or None where the model has none to give."""


class ReviewApi:
    """Answers of the reviewer's routes for one use case."""

    def __init__(
        self,
        service: ReviewService,
        usecase: UseCase,
        *,
        clock: Callable[[], datetime],
        contributions: Contributions | None = None,
    ) -> None:
        self._service = service
        self._usecase = usecase
        self._clock = clock
        self._contributions = contributions or (lambda _item: None)

    def _json(self, document: Any, status: int = 200) -> Answer:
        return Answer(status=status, body=json.dumps(document, default=str))

    def _labels(self) -> list[str]:
        contract = self._usecase.contract
        allowed = contract.column(contract.label).allowed
        return [str(value) for value in allowed] if allowed else [str(contract.positive_class)]

    def login(self, *, base: str, cognito_url: str, client_id: str) -> Answer:
        html = page.login_page(usecase=self._usecase.name, base=base, cognito_url=cognito_url, client_id=client_id)
        return Answer(status=200, body=html, content_type=HTML)

    def page(self, *, base: str, reviewer: str, item_id: str | None) -> Answer:
        now = self._clock()
        if item_id:
            item = self._service.get(item_id)
            html = page.item_page(
                usecase=self._usecase.name,
                base=base,
                reviewer=reviewer,
                item=item,
                now=now,
                labels=self._labels(),
                taxonomy=self._usecase.review.taxonomy,
                contributions=self._contributions(item),
                estimator=self._usecase.model.estimator,
            )
        else:
            html = page.queue_page(
                usecase=self._usecase.name,
                base=base,
                reviewer=reviewer,
                items=self._service.queue(),
                now=now,
                stats=self._service.stats(),
            )
        return Answer(status=200, body=html, content_type=HTML)

    def items(self, *, reviewer: str) -> Answer:
        now = self._clock()
        following = self._service.next_item(reviewer)
        return self._json(
            {
                "items": [page.item_json(item, now=now) for item in self._service.queue()],
                "next": following.item_id if following else None,
            }
        )

    def item(self, item_id: str) -> Answer:
        return self._json(page.item_json(self._service.get(item_id), now=self._clock()))

    def claim(self, item_id: str, *, reviewer: str) -> Answer:
        return self._json(page.item_json(self._service.claim(item_id, reviewer), now=self._clock()))

    def decide(self, item_id: str, *, reviewer: str, body: str | None) -> Answer:
        try:
            decision = DecisionBody.model_validate_json(body or "{}")
        except ValidationError as exc:
            raise InvalidDecisionError(f"a decision is {{label, taxonomy, note}}: {exc.errors()[0]['msg']}") from exc
        item = self._service.decide(
            item_id, reviewer, label=decision.label, taxonomy=decision.taxonomy, note=decision.note
        )
        return self._json(page.item_json(item, now=self._clock()))

    def stats(self) -> Answer:
        return self._json(page.stats_json(self._service.stats()))
