"""Operating metrics of the review queue, computed from its items (pure).

- queue depth (undecided items, by state), the age of the oldest undecided item, items overdue (past the SLA);
- decisions per hour over a trailing window;
- agreement between reviewers on items decided by several: Cohen's kappa when items have two decisions (the
  first and second decision of each item are the two raters), Fleiss' kappa when they have more;
- model-vs-reviewer disagreement (the model's decision at its threshold against the reviewed label), by
  taxonomy value and by segment (``column=value``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.review.labels import item_taxonomy
from shared.review.queue import is_overdue, state_at
from shared.review.types import UNDECIDED, ItemState, ReviewItem

COHEN = "cohen"
FLEISS = "fleiss"


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters over the same items: ``(p_o - p_e) / (1 - p_e)``; NaN when ``p_e`` is 1."""
    if len(first) != len(second) or not first:
        raise ValueError("two ratings per item are needed, for at least one item")
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    a_counts, b_counts = Counter(first), Counter(second)
    expected = sum(a_counts[c] * b_counts[c] for c in a_counts) / (n * n)
    return math.nan if expected == 1.0 else (observed - expected) / (1.0 - expected)


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float:
    """Fleiss' kappa: each item rated by the same number ``n ≥ 2`` of raters (any raters); NaN when ``P_e`` is 1."""
    if not ratings:
        raise ValueError("no rated items")
    raters = len(ratings[0])
    if raters < 2 or any(len(r) != raters for r in ratings):
        raise ValueError("Fleiss' kappa needs the same number (at least two) of ratings on every item")
    items = len(ratings)
    categories: Counter[Hashable] = Counter()
    agreement = 0.0
    for item in ratings:
        counts = Counter(item)
        categories.update(counts)
        agreement += (sum(c * c for c in counts.values()) - raters) / (raters * (raters - 1))
    observed = agreement / items
    expected = sum((total / (items * raters)) ** 2 for total in categories.values())
    return math.nan if expected == 1.0 else (observed - expected) / (1.0 - expected)


@dataclass(frozen=True, kw_only=True)
class Agreement:
    statistic: str
    """``cohen`` (two decisions an item) or ``fleiss`` (more)."""
    kappa: float | None
    items: int


@dataclass(frozen=True, kw_only=True)
class DisagreementRate:
    """Reviewed items where the model's decision differed from the reviewed label, among ``items``."""

    items: int
    disagreements: int

    @property
    def rate(self) -> float:
        return self.disagreements / self.items if self.items else math.nan


@dataclass(frozen=True, kw_only=True)
class ReviewStats:
    usecase: str
    at: datetime
    depth: dict[str, int]
    """Undecided items by state (``open``, ``claimed``, ``expired``)."""
    oldest_age_seconds: float | None
    """Age of the oldest undecided item (None when none is)."""
    overdue: int
    """Undecided items older than the SLA."""
    decided: int
    decisions_per_hour: float
    """Decisions in the trailing ``window_hours``, per hour."""
    window_hours: float
    agreement: Agreement | None
    by_taxonomy: dict[str, DisagreementRate] = field(default_factory=dict)
    by_segment: dict[str, DisagreementRate] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)
    """Undecided items by routing reason (an item with two reasons counts in both)."""

    @property
    def queue_depth(self) -> int:
        return sum(self.depth.values())


def _agreement(decided: Sequence[ReviewItem]) -> Agreement | None:
    several = [item for item in decided if len(item.decisions) >= 2]
    if not several:
        return None
    raters = min(len(item.decisions) for item in several)
    ratings = [[d.label for d in sorted(item.decisions, key=lambda d: d.decided_at)][:raters] for item in several]
    if raters == 2:
        kappa = cohen_kappa([r[0] for r in ratings], [r[1] for r in ratings])
        statistic = COHEN
    else:
        kappa = fleiss_kappa(ratings)
        statistic = FLEISS
    return Agreement(statistic=statistic, kappa=None if math.isnan(kappa) else kappa, items=len(ratings))


def _disagreement(
    decided: Iterable[ReviewItem], positive_class: str | int | bool
) -> tuple[dict[str, DisagreementRate], dict[str, DisagreementRate]]:
    counts: dict[str, dict[str, list[int]]] = {
        "taxonomy": defaultdict(lambda: [0, 0]),
        "segment": defaultdict(lambda: [0, 0]),
    }
    for item in decided:
        differs = int((item.score >= item.threshold) != (item.label == positive_class))
        groups = [("taxonomy", item_taxonomy(item))] + [
            ("segment", f"{column}={value}") for column, value in sorted(item.segments.items())
        ]
        for kind, name in groups:
            counts[kind][name][0] += 1
            counts[kind][name][1] += differs
    by_taxonomy, by_segment = (
        {name: DisagreementRate(items=n, disagreements=d) for name, (n, d) in sorted(counts[kind].items())}
        for kind in ("taxonomy", "segment")
    )
    return by_taxonomy, by_segment


def review_stats(
    items: Iterable[ReviewItem],
    *,
    usecase: str,
    now: datetime,
    sla_seconds: int,
    positive_class: str | int | bool,
    window_hours: float = 1.0,
) -> ReviewStats:
    """The queue's operating metrics at ``now`` (see the module)."""
    depth: Counter[str] = Counter({state.value: 0 for state in UNDECIDED})
    by_reason: Counter[str] = Counter()
    oldest: float | None = None
    overdue = 0
    decided: list[ReviewItem] = []
    since = now - timedelta(hours=window_hours)
    recent = 0
    for item in items:
        recent += sum(since <= d.decided_at < now for d in item.decisions)
        state = state_at(item, now, sla_seconds)
        if state is ItemState.DECIDED:
            decided.append(item)
            continue
        depth[state.value] += 1
        by_reason.update(reason.value for reason in item.reasons)
        age = (now - item.created_at).total_seconds()
        oldest = age if oldest is None else max(oldest, age)
        overdue += is_overdue(item, now, sla_seconds)
    by_taxonomy, by_segment = _disagreement(decided, positive_class)
    return ReviewStats(
        usecase=usecase,
        at=now,
        depth=dict(depth),
        oldest_age_seconds=oldest,
        overdue=overdue,
        decided=len(decided),
        decisions_per_hour=recent / window_hours,
        window_hours=window_hours,
        agreement=_agreement(decided),
        by_taxonomy=by_taxonomy,
        by_segment=by_segment,
        by_reason=dict(by_reason),
    )
