"""One window's tests as a single family: Benjamini-Hochberg across cells, and no verdict on too little data.

A *cell* is one test in one window: a feature's drift (``subject="tenure"``, ``statistic="ks"``) or a metric
(``subject="auc"``) on a segment (``segment="contract=Month-to-month"``, or ``"all"``). The monitor computes
every cell's :class:`CellEvidence` with :mod:`shared.monitoring.statistics` and hands them all to
:func:`judge_family`, which

1. sets aside every cell with fewer rows than its ``required_n`` (the n at which its test has the declared power
   to see the declared effect): its verdict is ``insufficient evidence``, with the n it would need, and it takes
   no share of the false discovery budget;
2. adjusts the other cells' p-values together (Benjamini-Hochberg) — so testing 10 features x 3 segments x
   3 metrics does not raise an alert every few windows by chance;
3. calls a cell ``alert`` iff its q-value is at most ``fdr`` (and, when the cell declares ``min_effect``, its
   effect is at least that large: a significant but immaterial shift on a big window is ``ok``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shared.monitoring.statistics import benjamini_hochberg

Verdict = Literal["alert", "ok", "insufficient evidence"]
ALERT: Verdict = "alert"
OK: Verdict = "ok"
INSUFFICIENT_EVIDENCE: Verdict = "insufficient evidence"
DEFAULT_FDR = 0.05


@dataclass(frozen=True, kw_only=True)
class CellKey:
    """Where a cell sits in the family: which window, which segment, what is measured and by which test."""

    window: str
    segment: str
    subject: str
    statistic: str


@dataclass(frozen=True, kw_only=True)
class CellEvidence:
    """One test's outcome before multiplicity: ``effect`` is window - baseline (or the drift's PSI)."""

    key: CellKey
    n: int
    effect: float
    p_value: float
    interval: tuple[float, float] | None = None
    baseline: float | None = None
    required_n: float = 0.0
    min_effect: float | None = None


@dataclass(frozen=True, kw_only=True)
class CellResult:
    """A cell's verdict: ``q_value`` is None for a cell set aside for insufficient evidence."""

    key: CellKey
    n: int
    effect: float
    interval: tuple[float, float] | None
    p_value: float
    q_value: float | None
    verdict: Verdict
    required_n: float
    baseline: float | None = None

    def describe(self) -> str:
        """One line for a notification, e.g. ``auc on contract=Month-to-month: 0.755 -> 0.61 (n=812), q=0.0004``."""
        where = f"{self.key.subject} on {self.key.segment} ({self.key.window})"
        if self.verdict == INSUFFICIENT_EVIDENCE:
            needed = "more rows than can be seen" if math.isinf(self.required_n) else f"n ≈ {int(self.required_n):,}"
            return f"{where}: insufficient evidence (n={self.n:,}, needs {needed})"
        change = f"{self.effect:+.3g}"
        if self.baseline is not None:
            change = f"{self.baseline:.3g} -> {self.baseline + self.effect:.3g}"
        return f"{where}: {self.verdict}, {change} (n={self.n:,}), q={self.q_value:.2g}"


SMALLEST_REPORTED_P = 1e-16
"""Below this a p- or q-value is floating-point noise (doubles carry about 16 digits): printed as ``< 1e-16``."""


def significance(name: str, value: float | None) -> str:
    """``q = 0.0004``; a value that underflows reads ``q < 1e-16``, never ``q = 0``."""
    if value is None or math.isnan(value):
        return f"{name} n/a"
    if value < SMALLEST_REPORTED_P:
        return f"{name} < {SMALLEST_REPORTED_P:g}"
    return f"{name} = {value:.2g}"


def judge_family(cells: Sequence[CellEvidence], *, fdr: float = DEFAULT_FDR) -> list[CellResult]:
    """Verdicts for one family of cells, in the input's order (see the module docstring for the rules)."""
    sufficient = [i for i, cell in enumerate(cells) if cell.n >= cell.required_n]
    q_values = benjamini_hochberg([cells[i].p_value for i in sufficient])
    q_of: dict[int, float] = {i: float(q) for i, q in zip(sufficient, np.asarray(q_values), strict=True)}
    results = []
    for i, cell in enumerate(cells):
        q = q_of.get(i)
        results.append(
            CellResult(
                key=cell.key,
                n=cell.n,
                effect=cell.effect,
                interval=cell.interval,
                p_value=cell.p_value,
                q_value=q,
                verdict=_verdict(cell, q, fdr),
                required_n=cell.required_n,
                baseline=cell.baseline,
            )
        )
    return results


def _verdict(cell: CellEvidence, q_value: float | None, fdr: float) -> Verdict:
    if q_value is None:
        return INSUFFICIENT_EVIDENCE
    material = cell.min_effect is None or abs(cell.effect) >= cell.min_effect
    return ALERT if q_value <= fdr and material else OK
