"""Recorded promotions and what a person must see on a page, measured in the browser (Playwright's boxes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.promotion.timeline import Timeline, render
from shared.promotion.transitions import (
    AuditEvent,
    Stage,
    Transition,
    end_watch,
    enter_stage,
    promote,
    rollback,
    set_canary_weight,
    start,
    start_shadow,
)
from tests.unit.promotion_fixtures import EXECUTION, ref, serving

T0 = datetime(2026, 11, 30, 12, 0, 7, tzinfo=UTC)
"""Not on a minute: CloudWatch's 60 s datapoints start before the promotion does."""
STEPS = (0.01, 0.05, 0.25, 1.0)
WATCH_SECONDS = 120


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def intersects(self, other: Box) -> bool:
        return self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom


def boxes(page: Any, selector: str) -> list[tuple[str, Box]]:
    """The text and box of each visible element matching ``selector``."""
    found = []
    for element in page.locator(selector).all():
        box = element.bounding_box()
        if box is not None:
            found.append((element.text_content() or "", Box(**box)))
    return found


def overlapping(labelled: list[tuple[str, Box]]) -> list[tuple[str, str]]:
    return [
        (a, b) for i, (a, box_a) in enumerate(labelled) for b, box_b in labelled[i + 1 :] if box_a.intersects(box_b)
    ]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _walk_to_full_canary() -> tuple[list[AuditEvent], Transition]:
    """offline gate and replay within a second of the start (their labels would collide), shadow, four canary
    steps: the shape of an embedded-cloud promotion."""
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    replay = enter_stage(begun.state, begun.promotion, Stage.REPLAY, now=at(0.6), actor="promotion")
    shadow = start_shadow(replay.state, replay.promotion, now=at(1.5), actor="promotion")
    events = [begun.event, replay.event, shadow.event]
    last = shadow
    for step, second in enumerate((30, 50, 70, 90)):
        last = set_canary_weight(last.state, last.promotion, step, STEPS, now=at(second), actor="promotion")
        events.append(last.event)
    return events, last


def _latency(until: float) -> dict[str, list[tuple[datetime, float]]]:
    """p99 per minute (datapoints on the minute, from before the start to the last minute begun)."""
    minutes = [T0.replace(second=0) + timedelta(minutes=m) for m in range(int((until + 7) // 60) + 1)]
    return {
        "p99 latency champion (ms)": [(m, 38.0 + 4 * i) for i, m in enumerate(minutes)],
        "p99 latency challenger (ms)": [(m, 41.0 + 9 * i) for i, m in enumerate(minutes)],
        "errors champion": [(m, 0.0) for m in minutes],
        "errors challenger": [(m, 0.0) for m in minutes],
        "shadow errors": [],
    }


def promoted_in_watch() -> Timeline:
    """Promoted at +110 s; the timeline written right after (the watch window open until +230 s)."""
    events, canary = _walk_to_full_canary()
    promoted = promote(
        canary.state, canary.promotion, now=at(110), actor="promotion", watch_window_seconds=WATCH_SECONDS
    )
    events.append(promoted.event)
    return render(promoted.promotion, events, _latency(111), end=at(111))


def promoted_and_final() -> Timeline:
    """The same promotion rewritten when its watch window ended."""
    events, canary = _walk_to_full_canary()
    promoted = promote(
        canary.state, canary.promotion, now=at(110), actor="promotion", watch_window_seconds=WATCH_SECONDS
    )
    ended = end_watch(promoted.state, promoted.promotion, now=at(231), actor="promotion")
    events += [promoted.event, ended.event]
    return render(ended.promotion, events, _latency(231), end=at(231))


def rolled_back_in_canary() -> Timeline:
    """Rolled back by the error alarm at the 25 % step, with errors recorded on the challenger."""
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    replay = enter_stage(begun.state, begun.promotion, Stage.REPLAY, now=at(0.6), actor="promotion")
    shadow = start_shadow(replay.state, replay.promotion, now=at(1.5), actor="promotion")
    events = [begun.event, replay.event, shadow.event]
    last = shadow
    for step, second in enumerate((30, 50, 70)):
        last = set_canary_weight(last.state, last.promotion, step, STEPS, now=at(second), actor="promotion")
        events.append(last.event)
    reason = "alarm sluice-telco-churn-challenger-errors: 7 errors in 1 datapoint"
    rolled = rollback(last.state, last.promotion, now=at(84), actor="rollback-alarm", reason=reason)
    events.append(rolled.event)
    series = _latency(84)
    series["errors challenger"] = [(m, float(3 * i + 1)) for i, (m, _) in enumerate(series["errors challenger"])]
    return render(rolled.promotion, events, series, end=at(84))


def write(page_html: str, folder: Path, name: str) -> str:
    path = folder / name
    path.write_text(page_html, encoding="utf-8")
    return path.as_uri()
