"""An item's life as pure transitions: claim with a lease, decide, lapse, overdue.

::

    open ──claim──► claimed ──decide (k-th decision)──► decided
      ▲                │
      └── lease lapses ┘      (an undecided item past the SLA is ``expired``: counted, still claimable)

- A claim is a lease of ``lease_seconds``: while it is live, the item is that reviewer's to decide. A lapsed
  lease returns the item: a claim on it succeeds, and the old holder's decision is refused (410). Claims are
  kept as the item's history (who held it when).
- An item needs ``k = reviewers_per_item`` decisions; it is ``claimed`` while its live claims and decisions
  number k. A reviewer cannot decide an item twice, nor hold two claims on it (409).
- The first decision of a claim wins: a decision on a decided item is refused (409); a decision without a claim
  — e.g. on another reviewer's claim — is refused (403).
- The item's label is its reviewers' majority; on a tie, the label of the earliest decision among those tied.

Each function returns the new item (``revision`` bumped); the store writes it only if nobody wrote in between.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from shared.review.exceptions import ClaimLapsedError, InvalidDecisionError, NotClaimedError, ReviewConflictError
from shared.review.types import Claim, Decision, ItemState, ReviewItem
from shared.usecase.settings import ReviewSettings

DECIDED_ITEM = "decided"
DECIDED_BY_REVIEWER = "decided_by_reviewer"
CLAIMED_BY_REVIEWER = "claimed_by_reviewer"
FULLY_CLAIMED = "fully_claimed"


def decided_by(item: ReviewItem) -> set[str]:
    return {decision.reviewer for decision in item.decisions}


def live_claims(item: ReviewItem, now: datetime) -> list[Claim]:
    """Claims whose lease has not lapsed, of reviewers who have not decided yet."""
    done = decided_by(item)
    return [claim for claim in item.claims if claim.lease_until > now and claim.reviewer not in done]


def is_overdue(item: ReviewItem, now: datetime, sla_seconds: int) -> bool:
    """Undecided and queued for longer than the SLA."""
    return len(item.decisions) < item.reviewers_needed and now - item.created_at >= timedelta(seconds=sla_seconds)


def state_at(item: ReviewItem, now: datetime, sla_seconds: int) -> ItemState:
    """The item's state at ``now`` (a stored ``claimed`` whose leases lapsed is open again)."""
    if len(item.decisions) >= item.reviewers_needed:
        return ItemState.DECIDED
    if len(item.decisions) + len(live_claims(item, now)) >= item.reviewers_needed:
        return ItemState.CLAIMED
    return ItemState.EXPIRED if is_overdue(item, now, sla_seconds) else ItemState.OPEN


def claimable(item: ReviewItem, now: datetime, sla_seconds: int) -> bool:
    return state_at(item, now, sla_seconds) in (ItemState.OPEN, ItemState.EXPIRED)


def _written(item: ReviewItem, now: datetime, settings: ReviewSettings, **changes: object) -> ReviewItem:
    changed = item.model_copy(update={**changes, "revision": item.revision + 1})
    return changed.model_copy(update={"state": state_at(changed, now, settings.sla_seconds)})


def claim(item: ReviewItem, *, reviewer: str, now: datetime, settings: ReviewSettings) -> ReviewItem:
    """``reviewer`` takes a lease on ``item`` (see the module's rules)."""
    if len(item.decisions) >= item.reviewers_needed:
        raise ReviewConflictError(f"item {item.item_id} is already decided", reason=DECIDED_ITEM)
    if reviewer in decided_by(item):
        raise ReviewConflictError(f"{reviewer} already decided item {item.item_id}", reason=DECIDED_BY_REVIEWER)
    live = live_claims(item, now)
    if any(c.reviewer == reviewer for c in live):
        raise ReviewConflictError(
            f"{reviewer} already holds a claim on item {item.item_id}", reason=CLAIMED_BY_REVIEWER
        )
    if len(item.decisions) + len(live) >= item.reviewers_needed:
        raise ReviewConflictError(f"item {item.item_id} is claimed by other reviewers", reason=FULLY_CLAIMED)
    lease = Claim(reviewer=reviewer, claimed_at=now, lease_until=now + timedelta(seconds=settings.lease_seconds))
    return _written(item, now, settings, claims=(*item.claims, lease))


def majority_label(decisions: tuple[Decision, ...]) -> str | int | bool:
    """The most frequent label; on a tie, the label of the earliest decision among those tied."""
    counts = Counter(decision.label for decision in decisions)
    top = max(counts.values())
    return next(d.label for d in sorted(decisions, key=lambda d: d.decided_at) if counts[d.label] == top)


def decide(
    item: ReviewItem,
    *,
    reviewer: str,
    label: str | int | bool,
    taxonomy: str,
    note: str,
    now: datetime,
    settings: ReviewSettings,
) -> ReviewItem:
    """``reviewer``'s decision on ``item``, under their live claim (see the module's rules)."""
    if taxonomy not in settings.taxonomy:
        raise InvalidDecisionError(f"taxonomy value {taxonomy!r} is not declared; declared: {list(settings.taxonomy)}")
    if reviewer in decided_by(item):
        raise ReviewConflictError(f"{reviewer} already decided item {item.item_id}", reason=DECIDED_BY_REVIEWER)
    if len(item.decisions) >= item.reviewers_needed:
        raise ReviewConflictError(f"item {item.item_id} is already decided", reason=DECIDED_ITEM)
    held = [c for c in item.claims if c.reviewer == reviewer]
    if not held:
        raise NotClaimedError(f"{reviewer} holds no claim on item {item.item_id}")
    if all(c.lease_until <= now for c in held):
        raise ClaimLapsedError(f"{reviewer}'s claim on item {item.item_id} lapsed at {held[-1].lease_until}")
    try:
        decision = Decision(reviewer=reviewer, label=label, taxonomy=taxonomy, note=note, decided_at=now)
    except ValueError as exc:
        raise InvalidDecisionError(f"invalid decision on item {item.item_id}: {exc}") from exc
    decisions = (*item.decisions, decision)
    if len(decisions) < item.reviewers_needed:
        return _written(item, now, settings, decisions=decisions)
    return _written(item, now, settings, decisions=decisions, decided_at=now, label=majority_label(decisions))


def mark_overdue(item: ReviewItem, *, now: datetime, settings: ReviewSettings) -> ReviewItem | None:
    """The item marked ``expired`` when it is overdue and not yet marked; None when nothing changes."""
    if item.state is ItemState.EXPIRED or state_at(item, now, settings.sla_seconds) is not ItemState.EXPIRED:
        return None
    return _written(item, now, settings)
