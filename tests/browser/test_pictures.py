"""The promotion timeline and the monitoring report, opened in chromium: what someone on call must see.

Rendered from recorded data (no embedded cloud); each test's screenshot lands in test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.monitoring.html import render_report
from shared.monitoring.types import MonitoringReport
from shared.promotion.timeline import Timeline
from tests.browser.pictures import (
    Box,
    boxes,
    overlapping,
    promoted_and_final,
    promoted_in_watch,
    rolled_back_in_canary,
    write,
)

PINNED_REPORT = Path(__file__).resolve().parents[1] / "unit" / "monitoring_report_pinned.json"


def _assert_reads_at_a_glance(page: Any) -> None:
    """Stage labels apart, a labelled time axis per chart, one legend per chart above its lines, series to the end."""
    labels = boxes(page, "svg.stage-strip text.stage-label")
    assert len(labels) >= 5
    assert overlapping(labels) == [], "stage labels print over each other"
    charts = page.locator("svg.chart").all()
    assert len(charts) >= 2
    for chart in charts:
        name = chart.get_attribute("aria-label")
        ticks = boxes(chart, "text.tick-label")
        assert len([t for t, _ in ticks if t.strip()]) >= 6, f"{name}: no readable time axis"
        assert overlapping(ticks) == [], f"{name}: tick labels collide"
        legends = chart.locator("g.legend").all()
        assert len(legends) == 1, f"{name}: one legend"
        legend = Box(**(legends[0].bounding_box() or {}))
        entries = boxes(chart, "g.legend text")
        assert overlapping(entries) == [], f"{name}: legend entries collide"
        series = boxes(chart, "polyline.series")
        assert series, f"{name}: no series drawn"
        assert all(legend.bottom <= box.y for _, box in series), f"{name}: the legend covers a line"
        assert chart.locator("polyline.series[data-series='shadow errors']").count() == len(
            [t for t, _ in entries if t == "shadow errors"]
        ), f"{name}: a legend entry names a line that is not drawn"
        axis = Box(**(chart.locator("line.time-axis").bounding_box() or {}))
        for line in chart.locator("polyline.series").all():
            ends = Box(**(line.bounding_box() or {}))
            assert ends.right >= axis.right - 1, f"{name}: {line.get_attribute('data-series')} stops before the end"


def _assert_one_colour_per_role(page: Any) -> None:
    """The champion is drawn in one colour on every chart, the candidate (challenger) in another, dashed."""
    strokes: dict[str, set[tuple[str, str]]] = {"champion": set(), "candidate": set()}
    for line in page.locator("polyline.series").all():
        series = line.get_attribute("data-series") or ""
        role = (
            "champion"
            if "champion" in series
            else "candidate"
            if "challenger" in series or "candidate" in series
            else ""
        )
        if role:
            strokes[role].add((line.get_attribute("stroke") or "", line.get_attribute("stroke-dasharray") or ""))
    assert len(strokes["champion"]) == len(strokes["candidate"]) == 1, strokes
    assert strokes["champion"].isdisjoint(strokes["candidate"])
    assert next(iter(strokes["candidate"]))[1], "the candidate's line is dashed (apart without colour)"


def _open(page: Any, timeline: Timeline, folder: Path, name: str) -> None:
    page.goto(write(timeline.html, folder, name))


def test_a_timeline_written_in_the_watch_window_says_promoted_and_until_when(page: Any, tmp_path: Path) -> None:
    # Given the timeline written right after promotion, while the watch window is open
    _open(page, promoted_in_watch(), tmp_path, "watch.html")
    # Then the first thing on the page is the outcome: promoted, the window's end, the version an alarm goes back to
    outcome = page.locator("p.outcome").inner_text()
    assert outcome.startswith("Outcome: promoted"), outcome
    assert "Watch window open until 2026-11-30 12:03:57 UTC" in outcome
    assert "rolls back to version 1" in outcome
    # And the stages, axis, legends and series read at a glance
    _assert_reads_at_a_glance(page)
    # And the error panel with nothing in it is a sentence, not an empty frame
    assert "No errors recorded" in page.locator("p.nothing-recorded").inner_text()
    assert page.locator("svg.chart[aria-label^='Errors']").count() == 0
    assert page.locator("g.rollback-marker").count() == 0


def test_a_rolled_back_timeline_marks_and_labels_the_rollback_point(page: Any, tmp_path: Path) -> None:
    # Given a promotion rolled back by the error alarm at the 25 % canary step
    _open(page, rolled_back_in_canary(), tmp_path, "rolled-back.html")
    # Then the outcome says rolled back, when and why, and who serves now
    outcome = page.locator("p.outcome").inner_text()
    assert outcome.startswith("Outcome: rolled back"), outcome
    assert "12:01:31 UTC" in outcome
    assert "challenger-errors" in outcome
    assert "Now version 1 serves" in outcome
    # And every chart marks the rollback point; the traffic chart labels it, inside the chart
    charts = page.locator("svg.chart")
    assert page.locator("svg.chart g.rollback-marker").count() == charts.count() == 3
    label = page.locator("text.rollback-label")
    assert label.text_content() == "rolled back 12:01:31"
    chart_box = Box(**(charts.first.bounding_box() or {}))
    label_box = Box(**(label.bounding_box() or {}))
    assert chart_box.x <= label_box.x
    assert label_box.right <= chart_box.right
    # over no line: the label sits in its own row between the legend and the plot
    legend_box = Box(**(charts.first.locator("g.legend").bounding_box() or {}))
    assert legend_box.bottom <= label_box.y
    assert all(label_box.bottom <= box.y for _, box in boxes(charts.first, "polyline.series"))
    assert "rolled back" in [text for text, _ in boxes(page, "text.stage-label")]
    _assert_reads_at_a_glance(page)
    _assert_one_colour_per_role(page)


def test_a_timeline_rewritten_when_the_watch_ends_is_final(page: Any, tmp_path: Path) -> None:
    _open(page, promoted_and_final(), tmp_path, "final.html")
    outcome = page.locator("p.outcome").inner_text()
    assert outcome.startswith("Outcome: promoted")
    assert "the promotion is final" in outcome
    _assert_reads_at_a_glance(page)


@pytest.fixture
def report() -> MonitoringReport:
    """The pinned run (tests/unit/test_monitoring_report_pinned.py), which keeps all but its time."""
    recorded = json.loads(PINNED_REPORT.read_text(encoding="utf-8"))
    return MonitoringReport.model_validate({**recorded, "generated_at": "2026-11-20T12:00:00+00:00"})


def test_the_monitoring_report_puts_its_alerts_first_in_sentences(
    page: Any, tmp_path: Path, report: MonitoringReport
) -> None:
    # Given the report of a run with alerts, underflowing q-values and cells short of evidence, on a 1,280 px screen
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(write(render_report(report), tmp_path, "report.html"))
    # Then nothing is wider than the page (no sideways scrolling to reach the verdicts)
    scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"the page is {scroll} px wide in a {client} px window"
    # Then the alerts come first, as sentences, before any chart or table
    heading = page.locator("h2").first.inner_text()
    assert heading.startswith(f"Alerts: {len(report.violations)} changes need attention")
    sentences = page.locator("ul.alerts li").all_inner_texts()
    assert sentences == [f"{v.description}." for v in report.violations]
    first_svg = Box(**(page.locator("svg").first.bounding_box() or {}))
    last_alert = Box(**(page.locator("ul.alerts li").last.bounding_box() or {}))
    assert last_alert.bottom < first_svg.y
    # And no q-value reads "q = 0"
    text = page.locator("body").inner_text()
    assert re.findall(r"q = 0(?![.\d])", text) == []
    assert "q < 1e-16" in text
    # And the verdicts are neither clipped nor squeezed: each cell's text fits its box, the column stays wide
    verdicts = page.locator("td.verdict").all()
    assert verdicts
    for cell in verdicts[:40]:
        clipped = cell.evaluate("c => c.scrollWidth > c.clientWidth + 1")
        assert not clipped, cell.inner_text()
        assert (cell.bounding_box() or {"width": 0})["width"] >= 300
    # And "insufficient evidence" says why: the test's power at this n
    insufficient = [v for v in page.locator("td.verdict").all_inner_texts() if v.startswith("insufficient")]
    assert insufficient
    assert all(" power" in v for v in insufficient)
    assert any("the change looks large" in v and "% power to see the declared effect" in v for v in insufficient)
