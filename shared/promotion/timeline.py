"""A promotion's timeline: one self-contained HTML file (inline SVG, no scripts or external files) and its JSON.

Read from the top, by someone on call:

1. **The outcome**, in a coloured sentence: promoted (and whether its watch window is still open, until when,
   and to which version an alarm would roll back), rolled back (when, in which stage, why, who serves now),
   or still running (which stage, since when).
2. **The stage strip**: one band per stage (offline gate, replay, shadow, each canary weight, watch, rolled
   back), labelled in lanes so that no two labels print over each other.
3. **The charts**, on one shared time axis (ticks in time since the start and in UTC clock time): each model
   version's traffic share, then p99 latency per variant, then errors. Each chart has one legend, in its own
   strip above the plot; a role keeps its colour and dash on every chart (champion solid blue, candidate dashed
   orange, shadow dotted purple: Okabe-Ito, colour-blind safe). A metric is drawn over the whole span each
   datapoint stands for (CloudWatch's datapoint at ``t`` summarizes ``[t, t + period)``), so a series reaches
   the end of what was recorded. An error panel with nothing in it is a sentence ("No errors recorded ..."),
   not an empty frame.
4. The audit log.

Hooks for tests and tools: every chart draws the stage boundaries as ``<line class="stage-boundary"
data-stage=...>`` and the rollback point as ``<g class="rollback-marker">`` (a red line and circle, labelled on
the traffic chart, in a row of its own above the plot); stage labels are ``text.stage-label``, legends
``g.legend``, axis tick labels ``text.tick-label``, each series a ``polyline.series`` with ``data-series``.

Drawn by hand rather than with matplotlib: the timeline is rendered inside the promotion functions, whose layer
(the scoring layer, onnxruntime + numpy, 115 MB) matplotlib and its dependencies would grow by about 82 MB
(measured: docs/pictures.md), and matplotlib's SVG carries none of the hooks above.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.promotion.transitions import Action, AuditEvent, Promotion, PromotionOutcome, Stage
from shared.scoring.telemetry import CHALLENGER, CHAMPION, SHADOW

WIDTH = 1000
PLOT_LEFT, PLOT_RIGHT = 72, WIDTH - 28
FONT = "font-family=\"'DejaVu Sans',Verdana,sans-serif\""
CHAR_WIDTH = 0.62
"""A conservative average glyph width in em for the sans fonts above: label placement reserves this much."""
STAGE_ACTIONS = frozenset({Action.PROMOTE_START, Action.STAGE, Action.WEIGHT, Action.PROMOTE, Action.ROLLBACK})
COLORS = ("#009e73", "#cc79a7", "#56b4e9", "#000000")
"""Okabe-Ito colours for series of no known role (colour-blind safe)."""
ROLES = (
    (SHADOW, "#cc79a7", "2 3"),
    (CHAMPION, "#0072b2", ""),
    (CHALLENGER, "#e69f00", "7 4"),
    ("candidate", "#e69f00", "7 4"),
)
"""A series' role (a word in its name) → its colour and dash, the same on every chart: the champion a solid blue line,
the candidate a dashed orange one, shadow a dotted purple one (Okabe-Ito: apart for every colour vision, and apart
without colour by their dashes). Champion lines first in each legend."""
ROLLBACK_COLOR = "#d62728"
STAGE_FILLS = {
    Stage.OFFLINE_GATE.value: "#eceff1",
    Stage.REPLAY.value: "#e3f2fd",
    Stage.SHADOW.value: "#ede7f6",
    Stage.CANARY.value: "#fff3e0",
    Stage.WATCH.value: "#e8f5e9",
    Stage.IDLE.value: "#f5f5f5",
}
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_TICKS = 8
DEFAULT_PERIOD_SECONDS = 60

Series = Sequence[tuple[datetime, float]]


@dataclass(frozen=True)
class Timeline:
    html: str
    document: dict[str, Any]


@dataclass(frozen=True)
class Status:
    """What the page says first: the outcome as a person means it, and one sentence of detail."""

    outcome: str
    """``promoted`` (also while its watch window is open), ``rolled_back`` or ``running``."""
    sentence: str
    watch_open: bool


@dataclass(frozen=True)
class Band:
    """One stage of the promotion on the time axis: from its audit event to the next stage's."""

    stage: str
    label: str
    start: datetime
    end: datetime


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _clock(when: datetime) -> str:
    return _utc(when).strftime("%H:%M:%S")


def _stamp(when: datetime) -> str:
    return _utc(when).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m" if not secs else f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m" if not secs else f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_WIDTH


def status(promotion: Promotion, *, now: datetime) -> Status:
    """The outcome a person means: a promoted version in its watch window is promoted, not running."""
    candidate = f"version {promotion.candidate.version}"
    previous = promotion.champion_at_start.version if promotion.champion_at_start else None
    if promotion.outcome is PromotionOutcome.ROLLED_BACK:
        when = promotion.finished_at
        at = f" at {_stamp(when)}" if when else ""
        phase = " after promotion, inside its watch window" if promotion.promoted_at else ""
        serving = f"version {previous} serves" if previous is not None else "no version serves"
        why = f": {promotion.reason.rstrip('. ')}" if promotion.reason else ""  # CloudWatch reasons end in "."
        return Status(
            PromotionOutcome.ROLLED_BACK.value, f"{candidate} was rolled back{at}{phase}{why}. Now {serving}.", False
        )
    if promotion.outcome is PromotionOutcome.PROMOTED:
        ended = promotion.finished_at or promotion.watch_until
        tail = f" Its watch window ended at {_stamp(ended)}; the promotion is final." if ended else ""
        return Status(PromotionOutcome.PROMOTED.value, f"{candidate} serves.{tail}", False)
    if promotion.promoted_at is not None:
        until = promotion.watch_until
        open_until = f" until {_stamp(until)}" if until else ""
        back = f" rolls back to version {previous}" if previous is not None else " stops it"
        return Status(
            PromotionOutcome.PROMOTED.value,
            f"{candidate} serves since {_stamp(promotion.promoted_at)}. Watch window open{open_until}: "
            f"an alarm before then{back}. This page is rewritten when the window ends or on a rollback.",
            until is None or now <= until,
        )
    return Status(
        PromotionOutcome.RUNNING.value,
        f"{candidate} is being promoted: stage in progress since {_stamp(promotion.stage_started_at)}.",
        False,
    )


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


def _stage_label(event: AuditEvent) -> str:
    if event.action is Action.ROLLBACK:
        return "rolled back"
    if event.action is Action.PROMOTE:
        return "promoted · watch"
    if event.action is Action.WEIGHT and event.weight is not None:
        return f"canary {event.weight * 100:g}%"
    if event.stage == Stage.IDLE.value:
        return "watch over"
    return event.stage.replace("_", " ")


def stage_bands(events: Sequence[AuditEvent], end: datetime) -> list[Band]:
    """The stages in order, each lasting until the next one starts (the last until ``end``)."""
    marks = [e for e in sorted(events, key=lambda e: e.time) if e.action in STAGE_ACTIONS]
    return [
        Band(
            stage=event.stage,
            label=_stage_label(event),
            start=event.time,
            end=marks[index + 1].time if index + 1 < len(marks) else max(end, event.time),
        )
        for index, event in enumerate(marks)
    ]


class _Axis:
    """The shared time axis: ``x`` of a moment, and ticks at a round step from the start."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.end = end
        self.seconds = max((end - start).total_seconds(), 1.0)

    def x(self, when: datetime) -> float:
        fraction = min(max((when - self.start).total_seconds() / self.seconds, 0.0), 1.0)
        return round(PLOT_LEFT + fraction * (PLOT_RIGHT - PLOT_LEFT), 2)

    def step(self) -> int:
        return next((s for s in TICK_STEPS if self.seconds / s <= MAX_TICKS), TICK_STEPS[-1])

    def ticks(self) -> list[datetime]:
        step = self.step()
        count = int(self.seconds // step)
        return [self.start + timedelta(seconds=step * i) for i in range(count + 1)]


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= value)


def _format_value(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


@dataclass(frozen=True)
class _Frame:
    """One chart's geometry: the legend strip, then the plot, then the time axis."""

    top: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom + 48


def _style(name: str, index: int) -> tuple[str, str, int]:
    """A series' colour, dash and legend rank: by its role (:data:`ROLES`), else by its place."""
    lowered = name.lower()
    for rank, (role, color, dash) in enumerate(ROLES):
        if role in lowered:
            return color, dash, rank
    return COLORS[index % len(COLORS)], "", len(ROLES) + index


def _dash(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


def _legend(series_names: Sequence[str], y: float) -> str:
    parts = ['<g class="legend">']
    x = float(PLOT_LEFT)
    for index, name in enumerate(series_names):
        color, dash, _ = _style(name, index)
        parts.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 22}" y2="{y - 4}" stroke="{color}" stroke-width="3"{_dash(dash)}/>'
            f'<text x="{x + 28}" y="{y}" font-size="12" {FONT} fill="#222">{html.escape(name)}</text>'
        )
        x += 28 + _text_width(name, 12) + 24
    parts.append("</g>")
    return "".join(parts)


def _time_axis(axis: _Axis, frame: _Frame) -> list[str]:
    parts = [
        f'<line class="time-axis" x1="{PLOT_LEFT}" y1="{frame.bottom}" x2="{PLOT_RIGHT}" y2="{frame.bottom}" '
        'stroke="#333"/>'
    ]
    for tick in axis.ticks():
        x = axis.x(tick)
        relative = "0" if tick == axis.start else "+" + _duration((tick - axis.start).total_seconds())
        parts.append(
            f'<line x1="{x}" y1="{frame.top}" x2="{x}" y2="{frame.bottom}" stroke="#eee"/>'
            f'<line x1="{x}" y1="{frame.bottom}" x2="{x}" y2="{frame.bottom + 5}" stroke="#333"/>'
            f'<text class="tick-label" x="{x}" y="{frame.bottom + 18}" font-size="11" {FONT} '
            f'text-anchor="middle" fill="#222">{relative}</text>'
            f'<text class="tick-label clock" x="{x}" y="{frame.bottom + 32}" font-size="10" {FONT} '
            f'text-anchor="middle" fill="#666">{_clock(tick)}</text>'
        )
    return parts


def _boundaries(axis: _Axis, events: Sequence[AuditEvent], frame: _Frame, *, label_rollback: bool) -> list[str]:
    parts = []
    for event in events:
        if event.action not in STAGE_ACTIONS:
            continue
        x = axis.x(event.time)
        if event.action is Action.ROLLBACK:
            title = html.escape(f"rollback at {_stamp(event.time)}: {event.reason}")
            label = ""
            if label_rollback:
                text = f"rolled back {_clock(event.time)}"
                room_right = PLOT_RIGHT - x > _text_width(text, 12) + 10
                anchor, dx = ("start", 8) if room_right else ("end", -8)
                label = (  # in its own row between the legend and the plot: over no line
                    f'<text class="rollback-label" x="{x + dx}" y="{frame.top - 5}" font-size="12" {FONT} '
                    f'font-weight="bold" fill="{ROLLBACK_COLOR}" text-anchor="{anchor}">{text}</text>'
                )
            parts.append(
                f'<g class="rollback-marker"><title>{title}</title>'
                f'<line x1="{x}" y1="{frame.top}" x2="{x}" y2="{frame.bottom}" stroke="{ROLLBACK_COLOR}" '
                f'stroke-width="2"/><circle cx="{x}" cy="{frame.top}" r="5" fill="{ROLLBACK_COLOR}"/>{label}</g>'
            )
            continue
        stage = html.escape(event.stage)
        parts.append(
            f'<line class="stage-boundary" data-stage="{stage}" x1="{x}" y1="{frame.top}" x2="{x}" '
            f'y2="{frame.bottom}" stroke="#9e9e9e" stroke-dasharray="4 3"/>'
        )
    return parts


def _step_coordinates(
    points: Series, axis: _Axis, y: Any, *, hold_until: datetime | None, period: float
) -> list[list[str]]:
    """Runs of coordinates: each value held until the next point (or its period's end); gaps start a new run."""
    ordered = sorted(points)
    runs: list[list[str]] = []
    current: list[str] = []
    for index, (when, value) in enumerate(ordered):
        following = ordered[index + 1][0] if index + 1 < len(ordered) else None
        if hold_until is not None:
            until = following or hold_until
        else:
            bucket_end = when + timedelta(seconds=period)
            until = min(following, bucket_end) if following is not None else bucket_end
        until = min(until, axis.end)
        left = max(when, axis.start)
        if until < left:
            continue
        current += [f"{axis.x(left)},{y(value)}", f"{axis.x(until)},{y(value)}"]
        if following is None or following > until:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def _chart(
    title: str,
    series: Mapping[str, Series],
    axis: _Axis,
    events: Sequence[AuditEvent],
    *,
    percent: bool = False,
    period: float = DEFAULT_PERIOD_SECONDS,
    label_rollback: bool = False,
) -> str:
    frame = _Frame(top=70, bottom=70 + 130) if label_rollback else _Frame(top=52, bottom=52 + 130)
    styles = {name: _style(name, index) for index, name in enumerate(series)}
    # a series with no datapoint at all is left out (its legend entry would name a line that is not there)
    series = {name: series[name] for name in sorted(series, key=lambda n: styles[n][2]) if series[name]}
    values = [v for points in series.values() for _, v in points]
    high = 1.0 if percent else _nice_ceiling(max(values, default=0.0))

    def y(value: float) -> float:
        return round(frame.bottom - max(min(value / high, 1.0), 0.0) * (frame.bottom - frame.top), 2)

    height = frame.height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text class="chart-title" x="{PLOT_LEFT}" y="16" font-size="14" {FONT} font-weight="bold">'
        f"{html.escape(title)}</text>",
        _legend(list(series), 38),
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = high * fraction
        text = f"{value * 100:.0f}%" if percent else _format_value(value)
        parts.append(
            f'<line x1="{PLOT_LEFT}" y1="{y(value)}" x2="{PLOT_RIGHT}" y2="{y(value)}" stroke="#eee"/>'
            f'<text class="value-label" x="{PLOT_LEFT - 8}" y="{y(value) + 4}" font-size="11" {FONT} '
            f'text-anchor="end" fill="#222">{text}</text>'
        )
    parts += _time_axis(axis, frame)
    parts.append(f'<line x1="{PLOT_LEFT}" y1="{frame.top}" x2="{PLOT_LEFT}" y2="{frame.bottom}" stroke="#333"/>')
    parts += _boundaries(axis, events, frame, label_rollback=label_rollback)
    for name, points in series.items():
        color, dash, _ = styles[name]
        runs = _step_coordinates(points, axis, y, hold_until=axis.end if percent else None, period=period)
        for run in runs:
            parts.append(
                f'<polyline class="series" data-series="{html.escape(name)}" fill="none" stroke="{color}" '
                f'stroke-width="2.5"{_dash(dash)} stroke-linejoin="round" points="{" ".join(run)}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _stage_strip(bands: Sequence[Band], axis: _Axis) -> str:
    """The stages as coloured bands, each labelled in the first lane where it clears the labels before it."""
    size, lane_height, gap = 12, 18, 10
    lanes: list[float] = []
    placed: list[tuple[Band, float, int, str]] = []
    for band in bands:
        width = _text_width(band.label, size)
        x = min(axis.x(band.start) + 4, PLOT_RIGHT - width)
        lane = next((i for i, right in enumerate(lanes) if x >= right + gap), len(lanes))
        if lane == len(lanes):
            lanes.append(0.0)
        lanes[lane] = x + width
        placed.append((band, x, lane, "start"))
    band_top = 24 + lane_height * max(len(lanes), 1)
    band_bottom = band_top + 16
    height = band_bottom + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="stage-strip" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Stages">',
        f'<text class="chart-title" x="{PLOT_LEFT}" y="16" font-size="14" {FONT} font-weight="bold">Stages</text>',
    ]
    for band, x, lane, anchor in placed:
        left, right = axis.x(band.start), axis.x(band.end)
        rolled = band.label == "rolled back"
        fill = "#ffebee" if rolled else STAGE_FILLS.get(band.stage, "#f5f5f5")
        color = ROLLBACK_COLOR if rolled else "#333"
        text_y = 24 + lane_height * (lane + 1) - 5
        parts.append(
            f'<g class="stage-band" data-stage="{html.escape(band.stage)}">'
            f"<title>{html.escape(band.label)}: {_clock(band.start)} to {_clock(band.end)} UTC "
            f"({_duration((band.end - band.start).total_seconds())})</title>"
            f'<rect x="{left}" y="{band_top}" width="{max(right - left, 1.5)}" height="{band_bottom - band_top}" '
            f'fill="{fill}" stroke="#bdbdbd"/>'
            f'<line x1="{left}" y1="{text_y + 3}" x2="{left}" y2="{band_top}" stroke="#9e9e9e"/>'
            f'<text class="stage-label" x="{x}" y="{text_y}" font-size="{size}" {FONT} fill="{color}" '
            f'text-anchor="{anchor}">{html.escape(band.label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _group_metrics(metric_series: Mapping[str, Series]) -> list[tuple[str, dict[str, Series]]]:
    """Latency series on one chart, error series on another, anything else on its own."""
    latency = {n: s for n, s in metric_series.items() if "latency" in n}
    errors = {n: s for n, s in metric_series.items() if "error" in n and n not in latency}
    other = [(n, {n: s}) for n, s in metric_series.items() if n not in latency and n not in errors]
    groups: list[tuple[str, dict[str, Series]]] = []
    if latency:
        groups.append(("p99 latency per variant (ms)", latency))
    if errors:
        groups.append(("Errors per variant (per minute)", errors))
    return groups + other


def _nothing_recorded(title: str, series: Mapping[str, Series], axis: _Axis) -> str | None:
    values = [v for points in series.values() for _, v in points]
    if any(v != 0 for v in values):
        return None
    what = "No errors recorded" if "rror" in title else f"Nothing recorded for {title.lower()}"
    names = ", ".join(series)
    return (
        f'<p class="nothing-recorded"><strong>{html.escape(title)}:</strong> {html.escape(what)} '
        f"({html.escape(names)}) from {_clock(axis.start)} to {_clock(axis.end)} UTC"
        f"{'' if values else '; no datapoints at all'}.</p>"
    )


STYLE = (
    "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:24px;max-width:1040px;color:#212121}"
    "h1{font-size:20px;margin:0 0 8px}"
    ".outcome{font-size:18px;padding:10px 14px;border-radius:4px;margin:8px 0}"
    ".outcome-promoted{background:#e8f5e9;border-left:6px solid #2e7d32}"
    ".outcome-rolled_back{background:#ffebee;border-left:6px solid #c62828}"
    ".outcome-running{background:#fff8e1;border-left:6px solid #f9a825}"
    ".summary{color:#424242;font-size:13px}"
    ".nothing-recorded{font-size:14px;color:#2e7d32;margin:8px 0 16px " + str(PLOT_LEFT) + "px}"
    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
)


def render(
    promotion: Promotion,
    events: Sequence[AuditEvent],
    metric_series: Mapping[str, Series],
    *,
    end: datetime,
    period_seconds: int = DEFAULT_PERIOD_SECONDS,
) -> Timeline:
    """The timeline of ``promotion`` from ``promotion.started_at`` to ``end`` (metric datapoints ``period_seconds``
    apart)."""
    start = min([promotion.started_at, *(e.time for e in events)])
    end = max([end, *(e.time for e in events), start + timedelta(seconds=1)])
    axis = _Axis(start, end)
    ordered = sorted(events, key=lambda e: e.time)
    shares = traffic_shares(promotion, ordered)
    bands = stage_bands(ordered, end)
    state = status(promotion, now=end)
    title = f"Promotion of {promotion.usecase} v{promotion.candidate.version} ({promotion.execution_name})"
    sections = [_stage_strip(bands, axis)]
    sections.append(_chart("Traffic share per model version", shares, axis, ordered, percent=True, label_rollback=True))
    for chart_title, group in _group_metrics(metric_series):
        statement = _nothing_recorded(chart_title, group, axis)
        sections.append(statement or _chart(chart_title, group, axis, ordered, period=period_seconds))
    rows = "".join(
        f"<tr><td>{_clock(e.time)} (+{_duration((e.time - start).total_seconds())})</td>"
        f"<td>{html.escape(e.action.value)}</td><td>{html.escape(e.stage)}</td>"
        f"<td>{'' if e.weight is None else f'{e.weight * 100:g}%'}</td>"
        f"<td>{html.escape(e.actor)}</td><td>{html.escape(e.reason)}</td></tr>"
        for e in ordered
    )
    path = " → ".join(band.label for band in bands)
    summary = (
        f"Started {_stamp(start)} by {html.escape(promotion.requested_by or 'unknown')}; this page covers "
        f"{_duration(axis.seconds)} up to {_stamp(end)}. Stages: {html.escape(path) or 'none yet'}."
    )
    outcome_words = state.outcome.replace("_", " ")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{html.escape(title)}: {outcome_words}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="outcome outcome-{state.outcome}" data-outcome="{state.outcome}">Outcome: '
        f"<strong>{outcome_words}</strong> — {html.escape(state.sentence)}</p>"
        f'<p class="summary">{summary}</p>'
        + "".join(f"<div>{section}</div>" for section in sections)
        + "<h2>Audit log</h2><table><tr><th>time (UTC)</th><th>action</th><th>stage</th><th>weight</th>"
        f"<th>actor</th><th>reason</th></tr>{rows}</table></body></html>\n"
    )

    def points(series: Series) -> list[dict[str, Any]]:
        return [{"time": when.isoformat(), "value": value} for when, value in sorted(series)]

    document = {
        "usecase": promotion.usecase,
        "execution": promotion.execution_name,
        "candidate_version": promotion.candidate.version,
        "champion_version": promotion.champion_at_start.version if promotion.champion_at_start else None,
        "outcome": state.outcome,
        "summary": state.sentence,
        "watch_open": state.watch_open,
        "watch_until": promotion.watch_until.isoformat() if promotion.watch_until else None,
        "reason": promotion.reason,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "period_seconds": period_seconds,
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
