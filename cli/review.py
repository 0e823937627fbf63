"""``python -m cli review next|decide|stats``: human review from a terminal.

The commands call :class:`shared.review.service.ReviewService` directly with the operator's AWS credentials
(the review table and the lake from the stack's outputs ``ReviewTableName`` and ``LakeBucketName``), as the
reviewer's API does behind its Cognito authorizer: the same leases, 403s, 409s and feedback labels. The reviewer
is ``--reviewer``, by default the operating-system user.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence

from cli.context import CliError, StackContext
from shared.lake.adapters import S3ObjectStore
from shared.review.adapters import DynamoReviewStore
from shared.review.page import age_text
from shared.review.runtime import utc_now
from shared.review.service import ReviewService
from shared.review.stats import DisagreementRate, ReviewStats
from shared.review.types import ReviewItem


def default_reviewer() -> str:
    return getpass.getuser()


def review_service(ctx: StackContext) -> ReviewService:
    return ReviewService(
        DynamoReviewStore(ctx.client("dynamodb"), ctx.output("ReviewTableName")),
        S3ObjectStore(ctx.client("s3")),
        ctx.usecase,
        bucket=ctx.output("LakeBucketName"),
        clock=utc_now,
    )


def item_lines(item: ReviewItem) -> list[str]:
    """An item as a reviewer reads it: why it is here, its score, its age, its features."""
    age = age_text((utc_now() - item.created_at).total_seconds())
    challenger = "" if item.challenger_score is None else f" · challenger {item.challenger_score:.3f}"
    lines = [
        f"item         {item.item_id}",
        f"why          {', '.join(reason.value for reason in item.reasons)} · inclusion probability "
        f"{item.inclusion_probability:.3f} (weight {item.weight:.1f})",
        f"score        {item.score:.3f} (threshold {item.threshold:.3f}, model v{item.model_version}, "
        f"{item.variant}){challenger}",
        f"age          {age} · state {item.state.value}",
        "features",
    ]
    width = max((len(str(name)) for name in item.features), default=0)
    lines += [f"  {name!s:<{width}}  {value}" for name, value in item.features.items()]
    lines += [
        f"decided      {d.reviewer}: {d.label} ({d.taxonomy}){f' — {d.note}' if d.note else ''}" for d in item.decisions
    ]
    return lines


def next_item(ctx: StackContext, *, reviewer: str) -> ReviewItem | None:
    """Claim the first item ``reviewer`` may take and print it; None (and a line saying so) when none waits."""
    service = review_service(ctx)
    following = service.next_item(reviewer)
    if following is None:
        print(f"nothing waits for {reviewer} in the {service.name} review queue")
        return None
    claimed = service.claim(following.item_id, reviewer)
    lease = max((c.lease_until for c in claimed.claims if c.reviewer == reviewer), default=None)
    print("\n".join(item_lines(claimed)))
    if lease is not None:
        print(f"claimed by   {reviewer} until {lease:%Y-%m-%d %H:%M:%S} UTC")
    print(f"decide with  python -m cli review decide {claimed.item_id} --label L --taxonomy T [--note TEXT]")
    return claimed


def label_value(ctx: StackContext, text: str) -> str | int | bool:
    """The contract's label value spelled ``text`` (labels may be numbers or booleans); else ``text``."""
    contract = ctx.usecase.contract
    allowed = contract.column(contract.label).allowed or [contract.positive_class]
    return next((value for value in allowed if str(value).lower() == text.lower()), text)


def decide(ctx: StackContext, item_id: str, *, reviewer: str, label: str, taxonomy: str, note: str) -> ReviewItem:
    """``reviewer``'s decision on an item they claimed; prints where the label went once the item is decided."""
    item = review_service(ctx).decide(item_id, reviewer, label=label_value(ctx, label), taxonomy=taxonomy, note=note)
    needed = item.reviewers_needed - len(item.decisions)
    if item.decided_at is None:
        print(f"recorded {reviewer}'s decision on {item_id}; {needed} more reviewer(s) needed")
    else:
        print(f"decided {item_id}: label {item.label} (weight {item.weight:.1f}), written to the lake as feedback")
    return item


def _rates(title: str, rates: dict[str, DisagreementRate]) -> list[str]:
    if not rates:
        return [f"{title:<13}—"]
    width = max(len(name) for name in rates)
    return [f"{title}"] + [
        f"  {name:<{width}}  {rate.disagreements}/{rate.items} ({rate.rate:.0%})" for name, rate in rates.items()
    ]


def stats_lines(stats: ReviewStats, *, sla_seconds: int) -> Sequence[str]:
    depth = ", ".join(f"{state} {count}" for state, count in stats.depth.items())
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(stats.by_reason.items())) or "—"
    if stats.oldest_age_seconds is None:
        oldest = f"—  (SLA {age_text(sla_seconds)})"
    else:
        verdict = "OVER the SLA" if stats.oldest_age_seconds > sla_seconds else "within the SLA"
        oldest = f"{age_text(stats.oldest_age_seconds)} (SLA {age_text(sla_seconds)}: {verdict})"
    agreement = stats.agreement
    if agreement is None:
        agreed = "— (no item has two decisions: [review] reviewers_per_item)"
    else:
        kappa = "undefined (one label throughout)" if agreement.kappa is None else f"{agreement.kappa:.2f}"
        agreed = f"{agreement.statistic} kappa {kappa} over {agreement.items} items"
    return [
        f"review       {stats.usecase} at {stats.at:%Y-%m-%d %H:%M:%S} UTC",
        f"queue        {stats.queue_depth} waiting ({depth}) · by reason: {reasons}",
        f"oldest       {oldest} · {stats.overdue} overdue",
        f"decisions    {stats.decisions_per_hour:.1f}/h over the last {stats.window_hours:g} h · "
        f"{stats.decided} decided in all",
        f"agreement    {agreed}",
        *_rates("model vs reviewer by taxonomy", stats.by_taxonomy),
        *_rates("model vs reviewer by segment", stats.by_segment),
    ]


def stats(ctx: StackContext, *, window_hours: float) -> ReviewStats:
    if window_hours <= 0:
        raise CliError("--window must be a positive number of hours")
    computed = review_service(ctx).stats(window_hours=window_hours)
    print("\n".join(stats_lines(computed, sla_seconds=ctx.usecase.review.sla_seconds)))
    return computed
