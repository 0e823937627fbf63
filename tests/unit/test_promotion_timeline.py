"""The timeline renders stage boundaries and the rollback point as SVG elements."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

from shared.promotion.timeline import render
from shared.promotion.transitions import rollback, set_canary_weight, start, start_shadow
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
    # Then it is one HTML page with a traffic chart and a metric chart
    charts = _charts(timeline.html)
    assert len(charts) == 2
    assert "<script" not in timeline.html
    assert "http://" not in timeline.html.replace("http://www.w3.org/2000/svg", "")
    traffic = charts[0]
    stages = [line.get("data-stage") for line in traffic.iter(f"{SVG}line") if line.get("class") == "stage-boundary"]
    assert stages == ["offline_gate", "shadow", "canary"]
    markers = [g for g in traffic.iter(f"{SVG}g") if g.get("class") == "rollback-marker"]
    assert len(markers) == 1
    assert markers[0].find(f"{SVG}circle") is not None
    series = {p.get("data-series") for p in traffic.iter(f"{SVG}polyline")}
    assert series == {"v2 (candidate)", "v1 (champion)"}
    # And the JSON has the series and the rollback
    document = timeline.document
    assert [p["value"] for p in document["traffic"]["v2 (candidate)"]] == [0.0, 0.0, 0.1, 0.0]
    assert document["rollback"]["reason"] == "errors"
    assert document["execution"] == "promote-v2"
    assert len(document["metrics"]["p99 latency challenger (ms)"]) == 4
