"""A promotion's timeline: one self-contained HTML file (inline SVG, no scripts or external files) and its JSON.

The traffic chart shows each model version's share of traffic over time, rebuilt from the audit
events; one small chart per metric series follows. Every chart carries the stage boundaries as
vertical lines (``class="stage-boundary"``, ``data-stage``) and the rollback point, if any, as a red
line and circle (``class="rollback-marker"``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.promotion.transitions import Action, AuditEvent, Promotion

WIDTH, CHART_HEIGHT, MARGIN = 960, 180, 48
STAGE_ACTIONS = frozenset({Action.PROMOTE_START, Action.STAGE, Action.WEIGHT, Action.PROMOTE, Action.ROLLBACK})
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")

Series = Sequence[tuple[datetime, float]]


@dataclass(frozen=True)
class Timeline:
    html: str
    document: dict[str, Any]


def traffic_shares(promotion: Promotion, events: Sequence[AuditEvent]) -> dict[str, list[tuple[datetime, float]]]:
    """Each version's traffic share after every audit event that moved traffic (a step series per version)."""
    old = promotion.champion_at_start.version if promotion.champion_at_start else None
    new = promotion.candidate.version
    candidate_share = 0.0
    shares: dict[str, list[tuple[datetime, float]]] = {f"v{new} (candidate)": []}
    if old is not None:
        shares[f"v{old} (champion)"] = []
    for event in sorted(events, key=lambda e: e.time):
        if event.action is Action.PROMOTE:
            candidate_share = 1.0
        elif event.action is Action.ROLLBACK:
            candidate_share = 0.0
        elif event.action is Action.WEIGHT and event.weight is not None:
            candidate_share = event.weight
        elif event.action not in STAGE_ACTIONS:
            continue
        shares[f"v{new} (candidate)"].append((event.time, candidate_share))
        if old is not None:
            shares[f"v{old} (champion)"].append((event.time, 1.0 - candidate_share))
    return shares


class _Axis:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.seconds = max((end - start).total_seconds(), 1.0)

    def x(self, when: datetime) -> float:
        fraction = min(max((when - self.start).total_seconds() / self.seconds, 0.0), 1.0)
        return round(MARGIN + fraction * (WIDTH - 2 * MARGIN), 2)


def _y(value: float, low: float, high: float) -> float:
    span = high - low or 1.0
    return round(CHART_HEIGHT - MARGIN / 2 - (value - low) / span * (CHART_HEIGHT - MARGIN), 2)


def _markers(axis: _Axis, events: Sequence[AuditEvent]) -> list[str]:
    parts = []
    top, bottom = MARGIN / 2, CHART_HEIGHT - MARGIN / 2
    for event in events:
        if event.action not in STAGE_ACTIONS:
            continue
        x = axis.x(event.time)
        if event.action is Action.ROLLBACK:
            title = html.escape(f"rollback at {event.time.isoformat()}: {event.reason}")
            parts.append(
                f'<g class="rollback-marker"><title>{title}</title>'
                f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#d62728" stroke-width="2"/>'
                f'<circle cx="{x}" cy="{top}" r="5" fill="#d62728"/></g>'
            )
            continue
        stage = html.escape(event.stage)
        parts.append(
            f'<line class="stage-boundary" data-stage="{stage}" x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" '
            f'stroke="#999" stroke-dasharray="4 3"/>'
            f'<text x="{x + 2}" y="{top + 10}" font-size="10" fill="#555">{stage}</text>'
        )
    return parts


def _chart(
    title: str, series: Mapping[str, Series], axis: _Axis, events: Sequence[AuditEvent], *, step: bool, end: datetime
) -> str:
    values = [v for points in series.values() for _, v in points]
    low, high = (0.0, 1.0) if step or not values else (min(0.0, *values), max(values) or 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{CHART_HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {CHART_HEIGHT}">',
        f'<text x="{MARGIN}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{MARGIN}" y1="{CHART_HEIGHT - MARGIN / 2}" x2="{WIDTH - MARGIN}" y2="{CHART_HEIGHT - MARGIN / 2}" '
        'stroke="#333"/>',
        f'<text x="4" y="{_y(high, low, high) + 4}" font-size="10">{high:.3g}</text>',
        f'<text x="4" y="{_y(low, low, high) + 4}" font-size="10">{low:.3g}</text>',
    ]
    parts += _markers(axis, events)
    for index, (name, points) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        coordinates: list[str] = []
        ordered = sorted(points)
        for position, (when, value) in enumerate(ordered):
            if step and position:
                coordinates.append(f"{axis.x(when)},{_y(ordered[position - 1][1], low, high)}")
            coordinates.append(f"{axis.x(when)},{_y(value, low, high)}")
        if step and ordered:
            coordinates.append(f"{axis.x(end)},{_y(ordered[-1][1], low, high)}")
        if coordinates:
            parts.append(
                f'<polyline class="series" data-series="{html.escape(name)}" fill="none" stroke="{color}" '
                f'stroke-width="2" points="{" ".join(coordinates)}"/>'
            )
        parts.append(
            f'<text x="{WIDTH - MARGIN - 220}" y="{14 + 12 * index}" font-size="10" fill="{color}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render(
    promotion: Promotion,
    events: Sequence[AuditEvent],
    metric_series: Mapping[str, Series],
    *,
    end: datetime,
) -> Timeline:
    """The timeline of ``promotion`` from ``promotion.started_at`` to ``end``."""
    start = min([promotion.started_at, *(e.time for e in events)])
    end = max([end, *(e.time for e in events), start + timedelta(seconds=1)])
    axis = _Axis(start, end)
    ordered = sorted(events, key=lambda e: e.time)
    shares = traffic_shares(promotion, ordered)
    title = f"Promotion of {promotion.usecase} v{promotion.candidate.version} ({promotion.execution_name})"
    charts = [_chart("Traffic share per model version", shares, axis, ordered, step=True, end=end)]
    charts += [
        _chart(name, {name: points}, axis, ordered, step=False, end=end) for name, points in metric_series.items()
    ]
    rows = "".join(
        f"<tr><td>{html.escape(e.time.isoformat())}</td><td>{html.escape(e.action.value)}</td>"
        f"<td>{html.escape(e.stage)}</td><td>{'' if e.weight is None else e.weight}</td>"
        f"<td>{html.escape(e.actor)}</td><td>{html.escape(e.reason)}</td></tr>"
        for e in ordered
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Outcome: <strong>{html.escape(promotion.outcome.value)}</strong>"
        f"{' — ' + html.escape(promotion.reason) if promotion.reason else ''}</p>"
        + "".join(f"<div>{chart}</div>" for chart in charts)
        + "<h2>Audit log</h2><table><tr><th>time</th><th>action</th><th>stage</th><th>weight</th>"
        f"<th>actor</th><th>reason</th></tr>{rows}</table></body></html>\n"
    )

    def points(series: Series) -> list[dict[str, Any]]:
        return [{"time": when.isoformat(), "value": value} for when, value in sorted(series)]

    document = {
        "usecase": promotion.usecase,
        "execution": promotion.execution_name,
        "candidate_version": promotion.candidate.version,
        "champion_version": promotion.champion_at_start.version if promotion.champion_at_start else None,
        "outcome": promotion.outcome.value,
        "reason": promotion.reason,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "traffic": {name: points(series) for name, series in shares.items()},
        "metrics": {name: points(series) for name, series in metric_series.items()},
        "stages": [
            {"time": e.time.isoformat(), "action": e.action.value, "stage": e.stage, "weight": e.weight}
            for e in ordered
            if e.action in STAGE_ACTIONS
        ],
        "rollback": next(
            ({"time": e.time.isoformat(), "reason": e.reason} for e in ordered if e.action is Action.ROLLBACK), None
        ),
    }
    return Timeline(html=page, document=document)
