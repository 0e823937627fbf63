"""The review queue's records: an item, its claims and its decisions (JSON-ready pydantic models)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.review.routing import Reason


class ItemState(StrEnum):
    """Where an item is in its life. ``open``: it needs a reviewer; ``claimed``: as many reviewers as it needs hold
    a live claim (or have decided); ``decided``: k decisions are in; ``expired``: still undecided past the SLA
    (counted and alarmed, never deleted: it stays claimable)."""

    OPEN = "open"
    CLAIMED = "claimed"
    DECIDED = "decided"
    EXPIRED = "expired"


UNDECIDED = (ItemState.OPEN, ItemState.CLAIMED, ItemState.EXPIRED)
NOTE_MAX_CHARS = 2000


class Claim(BaseModel):
    """A reviewer's lease on an item: the item is theirs to decide until ``lease_until``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reviewer: str = Field(min_length=1, max_length=128)
    claimed_at: datetime
    lease_until: datetime


class Decision(BaseModel):
    """A reviewer's answer: the label, an error category of the use case's taxonomy and a note.

    The note is plain text, stored as given: never interpreted (a page escapes it when it shows it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reviewer: str = Field(min_length=1, max_length=128)
    label: str | int | bool
    taxonomy: str = Field(min_length=1, max_length=48)
    note: str = Field(default="", max_length=NOTE_MAX_CHARS)
    decided_at: datetime


def review_item_id(usecase: str, request_id: str, index: int) -> str:
    """An item's id: fixed by the prediction it reviews, so the same message taken in twice makes one item."""
    return hashlib.sha256(f"{usecase}\x1f{request_id}\x1f{index}".encode()).hexdigest()[:32]


class ReviewItem(BaseModel):
    """One served prediction routed for review, with why, how likely it was to be routed, and who did what."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usecase: str
    item_id: str
    request_id: str
    index: int
    entity_id: str | int | None = None
    variant: str
    model_version: int
    score: float
    threshold: float
    challenger_score: float | None = None
    features: dict[str, Any] = Field(default_factory=dict)
    segments: dict[str, str] = Field(default_factory=dict)
    """The contract's segment columns and this prediction's value of each (as text)."""
    predicted_at: datetime
    created_at: datetime
    reasons: tuple[Reason, ...] = Field(min_length=1)
    inclusion_probability: float = Field(gt=0, le=1)
    priority: int = Field(ge=0)
    reviewers_needed: int = Field(default=1, ge=1)
    state: ItemState = ItemState.OPEN
    claims: tuple[Claim, ...] = ()
    decisions: tuple[Decision, ...] = ()
    decided_at: datetime | None = None
    label: str | int | bool | None = None
    """The item's label once decided: the reviewers' majority (ties: the earliest decision's label)."""
    feedback_written_at: datetime | None = None
    revision: int = 0
    """Bumped by every write: a write is conditional on the revision it read (first writer wins)."""

    @property
    def weight(self) -> float:
        """The item's label weight in population estimates: 1 / inclusion probability."""
        return 1.0 / self.inclusion_probability
