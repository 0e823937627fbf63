"""The timeline renders stage boundaries and the rollback point as SVG elements."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

from shared.promotion.timeline import render
from shared.promotion.transitions import end_watch, promote, rollback, set_canary_weight, start, start_shadow
from tests.unit.promotion_fixtures import EXECUTION, T0, ref, serving

SVG = "{http://www.w3.org/2000/svg}"


def _charts(page: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL)]


def test_a_rolled_back_promotion_shows_its_stages_and_the_rollback_point() -> None:
    # Given a promotion through shadow and one canary step, rolled back by an alarm
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    shadow = start_shadow(begun.state, begun.promotion, now=T0 + timedelta(minutes=1), actor="promotion")
    canary = set_canary_weight(
        shadow.state, shadow.promotion, 0, (0.1, 1.0), now=T0 + timedelta(minutes=2), actor="promotion"
    )
    rolled = rollback(canary.state, canary.promotion, now=T0 + timedelta(minutes=3), actor="alarm", reason="errors")
    events = [begun.event, shadow.event, canary.event, rolled.event]
    latency = [(T0 + timedelta(minutes=m), 10.0 + m) for m in range(4)]
    # When the timeline is rendered
    timeline = render(rolled.promotion, events, {"p99 latency challenger (ms)": latency}, end=T0 + timedelta(minutes=4))
    # Then it is one HTML page with the stage strip, a traffic chart and a metric chart
    strip, *charts = _charts(timeline.html)
    assert strip.get("class") == "stage-strip"
    labels = [t.text for t in strip.iter(f"{SVG}text") if t.get("class") == "stage-label"]
    assert labels == ["offline gate", "shadow", "canary 10%", "rolled back"]
    assert len(charts) == 2
    assert all(chart.get("class") == "chart" for chart in charts)
    assert "<script" not in timeline.html
    assert "http://" not in timeline.html.replace("http://www.w3.org/2000/svg", "")
    traffic = charts[0]
    stages = [line.get("data-stage") for line in traffic.iter(f"{SVG}line") if line.get("class") == "stage-boundary"]
    assert stages == ["offline_gate", "shadow", "canary"]
    markers = [g for g in traffic.iter(f"{SVG}g") if g.get("class") == "rollback-marker"]
    assert len(markers) == 1
    assert "rolled back" in "".join(markers[0].itertext())
    assert "Outcome: <strong>rolled back</strong>" in timeline.html
    assert markers[0].find(f"{SVG}circle") is not None
    series = {p.get("data-series") for p in traffic.iter(f"{SVG}polyline")}
    assert series == {"v2 (candidate)", "v1 (champion)"}
    # And the JSON has the series and the rollback
    document = timeline.document
    assert [p["value"] for p in document["traffic"]["v2 (candidate)"]] == [0.0, 0.0, 0.1, 0.0]
    assert document["rollback"]["reason"] == "errors"
    assert document["execution"] == "promote-v2"
    assert len(document["metrics"]["p99 latency challenger (ms)"]) == 4


def test_a_promoted_version_in_its_watch_window_reads_promoted_until_the_window_ends() -> None:
    # Given a promotion promoted at +2 min with a 5-minute watch window, rendered right after promotion
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    shadow = start_shadow(begun.state, begun.promotion, now=T0 + timedelta(seconds=30), actor="p")
    canary = set_canary_weight(shadow.state, shadow.promotion, 0, (1.0,), now=T0 + timedelta(minutes=1), actor="p")
    promoted = promote(
        canary.state, canary.promotion, now=T0 + timedelta(minutes=2), actor="p", watch_window_seconds=300
    )
    events = [begun.event, shadow.event, canary.event, promoted.event]
    # When the timeline is rendered while the window is open
    timeline = render(promoted.promotion, events, {}, end=T0 + timedelta(minutes=2, seconds=1))
    # Then it says promoted, with the window's end and the version an alarm would go back to
    assert "Outcome: <strong>promoted</strong>" in timeline.html
    outcome = re.search(r'<p class="outcome[^"]*"[^>]*>(.*?)</p>', timeline.html)
    assert outcome is not None
    assert "running" not in outcome.group(1)
    assert "Watch window open until 2026-01-05 12:07:00 UTC" in timeline.html
    assert "rolls back to version 1" in timeline.html
    assert (timeline.document["outcome"], timeline.document["watch_open"]) == ("promoted", True)
    # And an error panel with no datapoints is a sentence, not an empty frame
    metrics = {"errors challenger": [], "p99 latency challenger (ms)": [(T0, 12.0)]}
    with_metrics = render(promoted.promotion, events, metrics, end=T0 + timedelta(minutes=2, seconds=1))
    assert 'class="nothing-recorded"' in with_metrics.html
    assert "No errors recorded" in with_metrics.html
    assert not any("Errors" in (chart.get("aria-label") or "") for chart in _charts(with_metrics.html))
    # When the window ends, the page is final
    ended = end_watch(promoted.state, promoted.promotion, now=T0 + timedelta(minutes=7, seconds=1), actor="p")
    final = render(ended.promotion, [*events, ended.event], {}, end=T0 + timedelta(minutes=7, seconds=1))
    assert "Outcome: <strong>promoted</strong>" in final.html
    assert "the promotion is final" in final.html
    assert final.document["watch_open"] is False


def test_a_metric_datapoint_covers_its_period_so_a_series_reaches_the_end_of_its_record() -> None:
    # Given one-minute p99 datapoints at 12:00 and 12:01, and a promotion that ends at 12:01:40
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    latency = {"p99 latency challenger (ms)": [(T0, 10.0), (T0 + timedelta(minutes=1), 20.0)]}
    # When the timeline is rendered
    timeline = render(begun.promotion, [begun.event], latency, end=T0 + timedelta(minutes=1, seconds=40))
    # Then the series runs from the start to the end of the axis as one line
    chart = _charts(timeline.html)[-1]
    lines = [p for p in chart.iter(f"{SVG}polyline") if p.get("class") == "series"]
    assert len(lines) == 1
    xs = [float(point.split(",")[0]) for point in (lines[0].get("points") or "").split()]
    axis = next(line for line in chart.iter(f"{SVG}line") if line.get("class") == "time-axis")
    assert (min(xs), max(xs)) == (float(axis.get("x1") or 0), float(axis.get("x2") or 0))


def test_an_alarms_reason_ending_in_a_full_stop_reads_as_one_sentence() -> None:
    # Given a promotion rolled back by an alarm whose reason (CloudWatch's) ends in "."
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana", execution_arn=EXECUTION)
    shadow = start_shadow(begun.state, begun.promotion, now=T0 + timedelta(minutes=1), actor="promotion")
    reason = "alarm shadow-errors: Threshold Crossed: 1 out of the last 1 datapoints was greater than the threshold."
    rolled = rollback(shadow.state, shadow.promotion, now=T0 + timedelta(minutes=2), actor="alarm", reason=reason)
    # When the timeline is rendered
    timeline = render(rolled.promotion, [begun.event, shadow.event, rolled.event], {}, end=T0 + timedelta(minutes=2))
    # Then the outcome has the reason once, followed by one full stop and who serves now
    assert "greater than the threshold. Now version 1 serves." in timeline.html
    assert ".." not in timeline.document["summary"]
