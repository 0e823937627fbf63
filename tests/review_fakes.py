"""In-memory fakes for human review: the item store (same conditional-write rules as DynamoDB's) and a clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.review.adapters import rank
from shared.review.exceptions import ConcurrentReviewError
from shared.review.types import ItemState, ReviewItem

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class SteppingClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class InMemoryReviewStore:
    """:class:`~shared.review.adapters.ReviewStore` over a dict."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], ReviewItem] = {}

    def create(self, item: ReviewItem) -> bool:
        key = (item.usecase, item.item_id)
        if key in self.stored:
            return False
        self.stored[key] = item
        return True

    def get(self, usecase: str, item_id: str) -> ReviewItem | None:
        return self.stored.get((usecase, item_id))

    def replace(self, item: ReviewItem, *, expected_revision: int) -> None:
        current = self.stored.get((item.usecase, item.item_id))
        if current is None or current.revision != expected_revision:
            raise ConcurrentReviewError(f"{item.item_id} changed")
        self.stored[(item.usecase, item.item_id)] = item

    def queued(self, usecase: str, state: ItemState, *, limit: int) -> list[ReviewItem]:
        found = [i for (u, _), i in self.stored.items() if u == usecase and i.state is state]
        return sorted(found, key=rank)[:limit]

    def count(self, usecase: str, state: ItemState) -> int:
        return sum(1 for (u, _), i in self.stored.items() if u == usecase and i.state is state)

    def items(self, usecase: str) -> Iterator[ReviewItem]:
        return iter([i for (u, _), i in self.stored.items() if u == usecase])


class RecordingFeedback:
    def __init__(self) -> None:
        self.written: dict[tuple[str, str], dict[str, Any]] = {}

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        self.written[(bucket, key)] = document
