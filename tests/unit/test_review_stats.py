"""Operating metrics of the review queue: depth, age, decisions per hour, reviewer agreement, model disagreement."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from sklearn.metrics import cohen_kappa_score

from shared.review.routing import Reason
from shared.review.stats import COHEN, FLEISS, cohen_kappa, fleiss_kappa, review_stats
from shared.review.telemetry import MODEL_DISAGREEMENT, QUEUE_DEPTH, REVIEWER_AGREEMENT, documents
from shared.review.types import Decision, ReviewItem
from tests.review_fakes import START


def test_cohen_kappa_matches_scikit_learn() -> None:
    first = ["Yes", "No", "Yes", "Yes", "No", "No", "Yes", "No", "No", "Yes"]
    second = ["Yes", "No", "No", "Yes", "No", "Yes", "Yes", "No", "No", "No"]
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second))
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))


def test_fleiss_kappa_on_the_published_example() -> None:
    # Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa = 0.210
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    ratings = [[category for category, count in enumerate(row) for _ in range(count)] for row in table]
    assert fleiss_kappa(ratings) == pytest.approx(0.20993, abs=1e-4)


def _item(
    n: int, *, labels: list[str], score: float = 0.7, taxonomy: str = "correct", age_hours: float = 0
) -> ReviewItem:
    created = START - timedelta(hours=age_hours)
    decisions = tuple(
        Decision(reviewer=f"r{i}", label=label, taxonomy=taxonomy, decided_at=START - timedelta(minutes=30 - i))
        for i, label in enumerate(labels)
    )
    decided = len(decisions) >= 2
    return ReviewItem(
        usecase="telco_churn", item_id=f"i{n}", request_id=f"r{n}", index=0, variant="champion", model_version=1,
        score=score, threshold=0.5, segments={"contract": "Two year" if n % 2 else "One year"},
        predicted_at=created, created_at=created, reasons=(Reason.IN_BAND,), inclusion_probability=1.0, priority=2,
        reviewers_needed=2, decisions=decisions, decided_at=START if decided else None,
        label=labels[0] if decided else None,
    )  # fmt: skip


def test_review_stats_from_the_items() -> None:
    # Given two undecided items (3 h and 30 h old) and four decided by two reviewers each
    items = [
        _item(0, labels=[], age_hours=3),
        _item(1, labels=[], age_hours=30),
        _item(2, labels=["Yes", "Yes"]),
        _item(3, labels=["No", "No"], taxonomy="wrong_label"),
        _item(4, labels=["Yes", "No"]),
        _item(5, labels=["No", "No"], score=0.2),
    ]
    stats = review_stats(items, usecase="telco_churn", now=START, sla_seconds=24 * 3600, positive_class="Yes")
    # Then depth, age and the overdue count are those of the undecided items
    assert stats.queue_depth == 2
    assert stats.depth["expired"] == 1
    assert stats.overdue == 1
    assert stats.oldest_age_seconds == pytest.approx(30 * 3600)
    # And 8 decisions in the last hour
    assert stats.decisions_per_hour == pytest.approx(8.0)
    # And agreement is Cohen's kappa of the first and second decisions
    assert stats.agreement is not None
    assert stats.agreement.statistic == COHEN
    assert stats.agreement.kappa == pytest.approx(
        cohen_kappa_score(["Yes", "No", "Yes", "No"], ["Yes", "No", "No", "No"])
    )
    # And the model (score >= 0.5 says Yes) disagrees with the reviewed label on item 3 only
    assert stats.by_taxonomy["wrong_label"].rate == 1.0
    assert stats.by_taxonomy["correct"].rate == 0.0
    assert stats.by_segment["contract=Two year"].disagreements == 1
    # And the EMF documents carry them under their names
    lines = [json.loads(line) for line in documents(stats)]
    assert lines[0][QUEUE_DEPTH] == 2
    assert REVIEWER_AGREEMENT in lines[0]
    assert any(line.get("taxonomy") == "wrong_label" and line[MODEL_DISAGREEMENT] == 1.0 for line in lines)


def test_three_reviewers_are_measured_with_fleiss_kappa() -> None:
    items = [_item(n, labels=labels) for n, labels in enumerate([["Yes"] * 3, ["No", "No", "Yes"], ["No"] * 3])]
    stats = review_stats(items, usecase="telco_churn", now=START, sla_seconds=3600, positive_class="Yes")
    assert stats.agreement is not None
    assert stats.agreement.statistic == FLEISS
    assert stats.agreement.kappa == pytest.approx(fleiss_kappa([["Yes"] * 3, ["No", "No", "Yes"], ["No"] * 3]))
