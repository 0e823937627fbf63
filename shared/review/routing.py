"""Which served predictions a person reviews, why, and with what probability: pure rules.

Four rules are evaluated for each served prediction; each has a probability of including it:

==================  ===========================================================  =============================
rule (reason)       applies when                                                  p_rule
==================  ===========================================================  =============================
``segment_alert``   one of its segments (``column=value``) is under a monitoring  1 when it applies, else 0
                    alert
``disagreement``    a challenger scored it (shadow) and ``|champion - challenger|  1 when it applies, else 0
                    >= disagreement_threshold``
``in_band``         its score lies in ``band`` = [low, high]                      1 when it applies, else 0
``audit``           its audit draw ``u < audit_rate``                             ``audit_rate``
==================  ===========================================================  =============================

The inclusion probability of the prediction is ``P = 1 - Π (1 - p_rule)`` over the rules evaluated: 1 when any
deterministic rule applies, else ``audit_rate`` (the chance the audit picked it). A reviewed label weighs ``1/P``
in monitoring (Horvitz-Thompson): the uncertain band is over-represented among reviewed items, and the weights
give each audited item the share of the population it stands for.

The audit draw ``u`` is a hash of (request id, record index) mapped to [0, 1): a retried request routes the same
way, and the producer (the score function) and the queue's intake agree without talking to each other.

Priority (lower is served first): segment_alert 0, disagreement 1, in_band 2, audit 3; then the oldest first.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from shared.usecase.settings import ReviewSettings


class Reason(StrEnum):
    """Why a prediction is in the review queue."""

    SEGMENT_ALERT = "segment_alert"
    DISAGREEMENT = "disagreement"
    IN_BAND = "in_band"
    AUDIT = "audit"


ROUTING = "routing"
"""Optional key of a review message: per record, ``{"reasons": [...], "inclusion_probability": p,
"challenger_score": s}`` as the producer (the score function) routed it; without it, intake routes the record."""

PRIORITY: dict[Reason, int] = {Reason.SEGMENT_ALERT: 0, Reason.DISAGREEMENT: 1, Reason.IN_BAND: 2, Reason.AUDIT: 3}
LOWEST_PRIORITY = max(PRIORITY.values()) + 1


@dataclass(frozen=True, kw_only=True)
class Routing:
    """The rules that sent a prediction to review (empty: not routed), its inclusion probability and priority."""

    reasons: tuple[Reason, ...]
    inclusion_probability: float
    """P(the prediction is routed), given what the rules saw: 1 - Π(1 - p_rule)."""

    @property
    def routed(self) -> bool:
        return bool(self.reasons)

    @property
    def priority(self) -> int:
        return min((PRIORITY[reason] for reason in self.reasons), default=LOWEST_PRIORITY)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def audit_draws(request_id: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Uniform numbers in [0, 1) fixed by (request id, record index): the audit slice's coins, for many records.

    The request id is hashed once (sha256); each record's number is SplitMix64 of that seed plus its index
    times the golden-ratio increment (Steele, Lea & Flood 2014): statistically uniform, and vectorized, so a
    1,000-record request pays microseconds, not a hash per record.
    """
    seed = np.uint64(int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big"))
    with np.errstate(over="ignore"):
        z = seed + (np.asarray(indices, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def audit_draw(request_id: str, index: int) -> float:
    """:func:`audit_draws` of one record."""
    return float(audit_draws(request_id, [index])[0])


def segment_names(segments: Mapping[str, object]) -> set[str]:
    """``column=value`` of each segment column's value (the monitoring report's segment names)."""
    return {f"{column}={value}" for column, value in segments.items() if value is not None}


def alerted_segments(violation_segments: Iterable[str]) -> frozenset[str]:
    """The segments (``column=value``) among a monitoring report's violations' segments (``all`` is not one)."""
    return frozenset(segment for segment in violation_segments if "=" in segment)


def inclusion_probability(rule_probabilities: Collection[float]) -> float:
    """``1 - Π (1 - p)`` over the rules evaluated (each p in [0, 1])."""
    return 1.0 - math.prod(1.0 - p for p in rule_probabilities)


def route(
    *,
    settings: ReviewSettings,
    request_id: str,
    index: int,
    score: float,
    challenger_score: float | None = None,
    segments: Mapping[str, object] | None = None,
    alerted_segments: Collection[str] = (),
) -> Routing:
    """The reasons that apply to one served prediction and its inclusion probability (see the module)."""
    reasons: list[Reason] = []
    probabilities: list[float] = []

    def deterministic(reason: Reason, applies: bool) -> None:
        probabilities.append(1.0 if applies else 0.0)
        if applies:
            reasons.append(reason)

    if settings.segment_alerts:
        deterministic(Reason.SEGMENT_ALERT, bool(segment_names(segments or {}) & set(alerted_segments)))
    if settings.disagreement_threshold is not None and challenger_score is not None:
        gap = abs(score - challenger_score)
        deterministic(Reason.DISAGREEMENT, math.isfinite(gap) and gap >= settings.disagreement_threshold)
    if settings.band is not None:
        deterministic(Reason.IN_BAND, settings.band[0] <= score <= settings.band[1])
    probabilities.append(settings.audit_rate)
    if audit_draw(request_id, index) < settings.audit_rate:
        reasons.append(Reason.AUDIT)
    return Routing(reasons=tuple(reasons), inclusion_probability=inclusion_probability(probabilities))


@dataclass(frozen=True, kw_only=True)
class BlockRouting:
    """The routed records of a block: their positions in it, reasons and inclusion probabilities."""

    positions: list[int]
    reasons: list[tuple[Reason, ...]]
    inclusion_probabilities: list[float]


def route_block(
    *,
    settings: ReviewSettings,
    request_id: str,
    indices: Sequence[int],
    scores: Sequence[float] | np.ndarray,
    challenger_scores: Sequence[float | None] | None = None,
    segments: Mapping[str, Sequence[object]] | None = None,
    alerted_segments: Collection[str] = (),
) -> BlockRouting:
    """:func:`route` of every record of a block at once (the same reasons and probabilities, vectorized)."""
    score = np.asarray(scores, dtype=np.float64)
    size = len(score)
    rules: list[tuple[Reason, np.ndarray]] = []
    alerted = set(alerted_segments)
    if settings.segment_alerts:
        hit = np.zeros(size, dtype=bool)
        if alerted:
            for column, values in (segments or {}).items():
                hit |= np.fromiter(
                    (value is not None and f"{column}={value}" in alerted for value in values), dtype=bool, count=size
                )
        rules.append((Reason.SEGMENT_ALERT, hit))
    if settings.disagreement_threshold is not None and challenger_scores is not None:
        challenger = np.array([np.nan if c is None else c for c in challenger_scores], dtype=np.float64)
        gap = np.abs(score - challenger)
        with np.errstate(invalid="ignore"):
            rules.append((Reason.DISAGREEMENT, np.isfinite(gap) & (gap >= settings.disagreement_threshold)))
    if settings.band is not None:
        rules.append((Reason.IN_BAND, (score >= settings.band[0]) & (score <= settings.band[1])))
    rules.append((Reason.AUDIT, audit_draws(request_id, indices) < settings.audit_rate))
    code = np.zeros(size, dtype=np.int64)  # bit k: rule k applies (the audit is the last rule)
    for bit, (_, applies) in enumerate(rules):
        code |= applies.astype(np.int64) << bit
    routed = np.flatnonzero(code)
    codes = code[routed].tolist()
    audit_bit = 1 << (len(rules) - 1)
    reasons_of = {c: tuple(reason for bit, (reason, _) in enumerate(rules) if c >> bit & 1) for c in set(codes)}
    audit_only = 1.0 - (1.0 - settings.audit_rate)
    return BlockRouting(
        positions=routed.tolist(),
        reasons=[reasons_of[c] for c in codes],
        inclusion_probabilities=[audit_only if c == audit_bit else 1.0 for c in codes],
    )
