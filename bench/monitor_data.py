"""The monitor benchmark's synthetic traffic: numpy only, so Evidently's virtualenv regenerates the same rows.

A seeded population of 20 features — 12 numeric (floats and ints, ~1% null) and 8 categorical (3 of them the
declared segments ``region``, ``plan``, ``channel``; ~1% null in the others) — a calibrated score (a logistic of
a linear predictor) and a label drawn from it. The served window is the same population with two shifts a
monitor should see: ``usage_07`` drifts up by half a standard deviation, and on ``region=south`` the labels
stop following the score. Rows are spread uniformly over 24 hours; labels land on 30% of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUMERIC = (*(f"usage_{i:02d}" for i in range(8)), "tenure", "age", "devices", "tickets")
INTEGER = frozenset({"tenure", "age", "devices", "tickets"})
SEGMENTS = {
    "region": ("north", "south", "east", "west", "central"),
    "plan": ("basic", "plus", "premium"),
    "channel": ("web", "app", "store", "partner"),
}
OTHER_CATEGORIES = {
    "payment": ("card", "transfer", "cash"),
    "device_os": ("android", "ios", "other"),
    "language": ("en", "fr", "de", "es", "it", "nl"),
    "promo": ("none", "spring", "summer", "loyalty"),
    "support_tier": ("standard", "gold"),
}
CATEGORICAL = tuple(SEGMENTS) + tuple(OTHER_CATEGORIES)
CATEGORIES = SEGMENTS | OTHER_CATEGORIES
NULL_SHARE = 0.01
LABELED_SHARE = 0.3
HOURS = 24
START = np.datetime64("2026-03-01T00:00:00", "us")
SEED = 20260301
DRIFTED = "usage_07"
"""The feature whose served values drift (a light weight in the score: the drift barely moves the score)."""


@dataclass(frozen=True)
class Traffic:
    """Rows as columns: numeric features float64 (NaN null), categoricals object arrays of str (None null)."""

    features: dict[str, np.ndarray]
    score: np.ndarray
    positive: np.ndarray
    labeled: np.ndarray
    """bool: the rows whose label has landed"""
    time: np.ndarray
    """datetime64[us]"""

    @property
    def rows(self) -> int:
        return int(self.score.size)


def generate(rows: int, *, seed: int = SEED, shifted: bool = False) -> Traffic:
    """``rows`` rows of the population (``shifted``: the served window's drift and degraded segment)."""
    rng = np.random.default_rng(seed)
    features: dict[str, np.ndarray] = {}
    linear = np.full(rows, -1.2)
    for i, name in enumerate(NUMERIC):
        values = rng.normal(0.0, 1.0, rows)
        if shifted and name == DRIFTED:
            values = values + 0.5
        linear += (0.6 / (1 + i)) * np.nan_to_num(values)
        if name in INTEGER:
            values = np.round(np.abs(values) * 12)
        values[rng.random(rows) < NULL_SHARE] = np.nan
        features[name] = values
    for j, (name, categories) in enumerate(CATEGORIES.items()):
        codes = rng.integers(0, len(categories), rows)
        linear += 0.25 * (codes - (len(categories) - 1) / 2) / (1 + j)
        column = np.asarray(categories, dtype=object)[codes]
        if name not in SEGMENTS:
            column[rng.random(rows) < NULL_SHARE] = None
        features[name] = column
    score = 1.0 / (1.0 + np.exp(-linear))
    truth = score.copy()
    if shifted:  # on region=south the score no longer predicts the label
        south = features["region"] == "south"
        truth[south] = rng.permutation(score[south])
    positive = rng.random(rows) < truth
    labeled = rng.random(rows) < LABELED_SHARE
    offsets = np.sort(rng.integers(0, HOURS * 3600 * 1_000_000, rows))
    time = START + offsets.astype("timedelta64[us]")
    return Traffic(features=features, score=score, positive=positive, labeled=labeled, time=time)
