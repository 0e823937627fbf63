"""The monitoring report as one self-contained HTML page: the alerts first, then the evidence.

Sections: the alert sentences; drift per feature (a bar of PSI per feature with the alert threshold as a line,
alerts red, insufficient evidence grey); a reliability diagram (inline SVG: axes with ticks and labels, the
diagonal of perfect calibration, the window's bins as points sized by their count, the legend outside the plot);
per-segment metrics with their interval drawn against the baseline; CBPE beside the realized values; data
quality. No script, no external asset, no plotting library.
"""

from __future__ import annotations

import math
from collections import defaultdict
from html import escape

from shared.monitoring.cells import ALERT, INSUFFICIENT_EVIDENCE, significance
from shared.monitoring.statistics import normal_cdf, normal_quantile
from shared.monitoring.types import (
    DATA_DRIFT,
    PREDICTION_DRIFT,
    Cell,
    MonitoringReport,
    PerformanceEstimate,
    ReliabilityCurve,
)

ALERT_COLOUR = "#c62828"
OK_COLOUR = "#2e7d32"
INSUFFICIENT_COLOUR = "#9e9e9e"
WINDOW_COLOUR = "#1565c0"
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#212121}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.alerts li{color:#c62828;margin:.3rem 0}.quiet{color:#2e7d32}
table{border-collapse:collapse;margin:.5rem 0;max-width:100%}
td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top;overflow-wrap:break-word}
tr.insufficient td{color:#757575}tr.alert td{color:#c62828;font-weight:600}
.note{color:#616161}svg{max-width:100%;height:auto}
table.segments{width:100%}td.verdict{min-width:20em}td.number{white-space:nowrap;text-align:right}
td.change{white-space:nowrap}td.change svg{display:block}
.alerts{font-size:1.05rem}
"""


def _fmt(value: float | None, digits: int = 3) -> str:
    return "&ndash;" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def _verdict_colour(cell: Cell) -> str:
    if cell.verdict == ALERT:
        return ALERT_COLOUR
    if cell.verdict == INSUFFICIENT_EVIDENCE:
        return INSUFFICIENT_COLOUR
    return OK_COLOUR


def _needed(cell: Cell) -> str:
    return "more rows than can be seen" if cell.required_n is None else f"n ≈ {int(cell.required_n):,}"


def power_at(cell: Cell, *, alpha: float, power: float) -> float | None:
    """The power the cell's test has at its n to see the declared effect, from the n that gives ``power``.

    For the z and chi-square tests the monitor sizes, ``z_alpha + z_power`` grows as ``sqrt(n)``: at ``n`` the
    test reaches ``Phi(sqrt(n / required_n) * (z_alpha + z_power) - z_alpha)``.
    """
    if cell.required_n is None or not math.isfinite(cell.required_n) or cell.required_n <= 0:
        return None
    z_alpha = normal_quantile(1 - alpha / 2)
    reach = math.sqrt(cell.n / cell.required_n) * (z_alpha + normal_quantile(power))
    return max(alpha, normal_cdf(reach - z_alpha))  # a level-alpha test rejects at least alpha of the time


def why_insufficient(cell: Cell, *, alpha: float, power: float) -> str:
    """Why a cell is not judged: its test's power at this n, and the n that would give the declared power."""
    achieved = power_at(cell, alpha=alpha, power=power)
    effect = f" of {cell.min_effect:g}" if cell.min_effect is not None else ""
    if achieved is None:
        return f"insufficient evidence: n={cell.n:,}, and no n seen here gives the test {power:.0%} power"
    looks = ""
    measured = cell.value is not None and cell.baseline is not None and cell.min_effect is not None
    if measured and abs((cell.value or 0.0) - (cell.baseline or 0.0)) >= (cell.min_effect or 0.0):
        looks = f"the change looks large ({_fmt(cell.baseline)} → {_fmt(cell.value)}), but "
    return (
        f"insufficient evidence: {looks}at n={cell.n:,} the test has {achieved:.0%} power to see the declared "
        f"effect{effect}; {power:.0%} needs {_needed(cell)}"
    )


def render_report(report: MonitoringReport) -> str:
    """The page of one run."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Monitoring — {escape(report.usecase)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Monitoring of {escape(report.usecase)}</h1>",
        _alerts(report),
        f'<p class="note">Run at {escape(report.generated_at)}; {len(report.cells)} tests judged together at a '
        f"false discovery rate of {report.fdr:g} (Benjamini-Hochberg), each sized for {report.power:.0%} power.</p>",
        _notes(report),
        "<h2>Drift per feature</h2>",
        _drift(report),
        "<h2>Calibration</h2>",
        _reliability(report.reliability),
        "<h2>Metrics per segment</h2>",
        _segments(report),
        "<h2>Estimated performance (before labels) and realized</h2>",
        _estimates(report.estimates),
        "<h2>Data quality</h2>",
        _data_quality(report),
        "</body></html>",
    ]
    return "\n".join(parts)


def _alerts(report: MonitoringReport) -> str:
    """The alerts as sentences, first on the page, with what was and was not judged."""
    judged = sum(cell.verdict != INSUFFICIENT_EVIDENCE for cell in report.cells)
    unjudged = len(report.cells) - judged
    tally = (
        f'<p class="note">{judged} of {len(report.cells)} tests judged; {unjudged} had too few rows to see their '
        f"declared effect (insufficient evidence, listed below with the n they need).</p>"
    )
    if not report.violations:
        return f'<h2>Alerts</h2><p class="quiet">No alerts: nothing significant and large enough to act on.</p>{tally}'
    count = len(report.violations)
    items = "".join(f"<li>{escape(v.description)}.</li>" for v in report.violations)
    return (
        f"<h2>Alerts: {count} {'change needs' if count == 1 else 'changes need'} attention</h2>"
        f'<ul class="alerts">{items}</ul>{tally}'
    )


def _notes(report: MonitoringReport) -> str:
    if not report.notes:
        return ""
    return '<ul class="note">' + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>"


def _drift(report: MonitoringReport) -> str:
    groups: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in report.cells:
        if cell.check_type in {DATA_DRIFT, PREDICTION_DRIFT}:
            groups[(cell.model_version, cell.window)].append(cell)
    if not groups:
        return '<p class="note">No drift tests (no model version with a baseline).</p>'
    return "".join(
        f"<h3>Model {escape(version)}, {escape(window)}</h3>{_psi_bars(cells)}"
        for (version, window), cells in groups.items()
    )


def _psi_bars(cells: list[Cell]) -> str:
    """Horizontal PSI bars, one row a feature, with the alert threshold as a dashed vertical line."""
    label_width, bar_width, row, top = 170, 420, 22, 24
    threshold = next((c.min_effect for c in cells if c.min_effect is not None), 0.1)
    top_value = max([threshold * 2.5, *[c.value or 0.0 for c in cells]])
    height = top + row * len(cells) + 30
    width = label_width + bar_width + 330

    def x(value: float) -> float:
        return label_width + bar_width * min(value, top_value) / top_value

    shapes = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="PSI per feature">',
        f'<text x="{label_width}" y="14" font-size="12">PSI (population stability index)</text>',
    ]
    for i, cell in enumerate(cells):
        y = top + i * row
        colour = _verdict_colour(cell)
        shapes.append(
            f'<text x="{label_width - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{escape(cell.feature_name)}</text>"
        )
        if cell.verdict == INSUFFICIENT_EVIDENCE:
            shapes.append(
                f'<rect x="{label_width}" y="{y + 3}" width="{bar_width}" height="{row - 6}" fill="#eeeeee"/>'
                f'<text x="{label_width + bar_width + 8}" y="{y + 15}" font-size="11" fill="#757575">'
                f"insufficient evidence: n={cell.n:,}, needs {escape(_needed(cell))}</text>"
            )
            continue
        value = cell.value or 0.0
        shapes.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{x(value) - label_width:.1f}" height="{row - 6}" '
            f'fill="{colour}"><title>{escape(cell.description)}</title></rect>'
            f'<text x="{label_width + bar_width + 8}" y="{y + 15}" font-size="11" fill="{colour}">'
            f"{_fmt(value)} (n={cell.n:,}, {significance('q', cell.q_value)})</text>"
        )
    line_x = x(threshold)
    bottom = top + row * len(cells)
    shapes.append(
        f'<line x1="{line_x:.1f}" y1="{top - 4}" x2="{line_x:.1f}" y2="{bottom + 4}" stroke="#000" '
        f'stroke-dasharray="4 3"/><text x="{line_x:.1f}" y="{bottom + 18}" font-size="11" text-anchor="middle">'
        f"alert at {threshold:g}</text></svg>"
    )
    return "".join(shapes)


def reliability_svg(curve: ReliabilityCurve) -> str:
    """A reliability diagram: observed positive rate against mean score per bin, the diagonal, a legend."""
    left, top, size = 60, 20, 300
    width, height = left + size + 200, top + size + 50

    def px(value: float) -> float:
        return left + size * value

    def py(value: float) -> float:
        return top + size * (1 - value)

    shapes = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Reliability diagram, model {escape(curve.model_version)}, {escape(curve.window)}">',
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#000"/>',
    ]
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        shapes.append(
            f'<line x1="{px(tick):.1f}" y1="{top + size}" x2="{px(tick):.1f}" y2="{top + size + 5}" stroke="#000"/>'
            f'<text x="{px(tick):.1f}" y="{top + size + 17}" font-size="11" text-anchor="middle">{tick:.1f}</text>'
            f'<line x1="{left - 5}" y1="{py(tick):.1f}" x2="{left}" y2="{py(tick):.1f}" stroke="#000"/>'
            f'<text x="{left - 8}" y="{py(tick) + 4:.1f}" font-size="11" text-anchor="end">{tick:.1f}</text>'
        )
    shapes.append(
        f'<text x="{left + size / 2}" y="{top + size + 38}" font-size="12" text-anchor="middle">'
        "Mean predicted probability</text>"
        f'<text x="14" y="{top + size / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + size / 2})">Observed positive rate</text>'
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#757575" stroke-dasharray="5 4"/>'
    )
    largest = max((b.n for b in curve.bins), default=1)
    points = " ".join(f"{px(b.mean_score):.1f},{py(b.observed_rate):.1f}" for b in curve.bins)
    shapes.append(f'<polyline points="{points}" fill="none" stroke="{WINDOW_COLOUR}" stroke-width="1.5"/>')
    for b in curve.bins:
        radius = 3 + 5 * math.sqrt(b.n / largest)
        shapes.append(
            f'<circle cx="{px(b.mean_score):.1f}" cy="{py(b.observed_rate):.1f}" r="{radius:.1f}" '
            f'fill="{WINDOW_COLOUR}" fill-opacity="0.7"><title>scores {b.low:.1f}&ndash;{b.high:.1f}: n={b.n:,}, '
            f"mean score {b.mean_score:.3f}, observed {b.observed_rate:.3f}</title></circle>"
        )
    legend_x = left + size + 20
    shapes.append(
        f'<line x1="{legend_x}" y1="{top + 10}" x2="{legend_x + 24}" y2="{top + 10}" stroke="#757575" '
        f'stroke-dasharray="5 4"/><text x="{legend_x + 30}" y="{top + 14}" font-size="12">perfect calibration</text>'
        f'<circle cx="{legend_x + 12}" cy="{top + 32}" r="5" fill="{WINDOW_COLOUR}" fill-opacity="0.7"/>'
        f'<text x="{legend_x + 30}" y="{top + 36}" font-size="12">{escape(curve.window)} (n={curve.n:,})</text>'
        f'<text x="{legend_x + 30}" y="{top + 54}" font-size="12">ECE {curve.ece:.3f}</text>'
        f'<text x="{legend_x + 30}" y="{top + 72}" font-size="11" fill="#757575">point area ∝ rows in bin</text>'
        "</svg>"
    )
    return "".join(shapes)


def _reliability(curves: list[ReliabilityCurve]) -> str:
    if not curves:
        return '<p class="note">No labels have landed yet: no reliability diagram.</p>'
    return "".join(f"<h3>Model {escape(c.model_version)}, {escape(c.window)}</h3>{reliability_svg(c)}" for c in curves)


def _interval_svg(cell: Cell) -> str:
    """The window's value and interval on [0, 1], with the baseline as a black tick."""
    width, height = 150, 16

    def x(value: float) -> float:
        return 4 + (width - 8) * min(max(value, 0.0), 1.0)

    if cell.verdict == INSUFFICIENT_EVIDENCE or cell.value is None:
        return ""
    colour = _verdict_colour(cell)
    shapes = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f'<line x1="4" y1="8" x2="{width - 4}" y2="8" stroke="#e0e0e0"/>',
    ]
    if cell.interval is not None:
        low, high = cell.interval
        shapes.append(f'<line x1="{x(low):.1f}" y1="8" x2="{x(high):.1f}" y2="8" stroke="{colour}" stroke-width="3"/>')
    shapes.append(f'<circle cx="{x(cell.value):.1f}" cy="8" r="3.5" fill="{colour}"/>')
    if cell.baseline is not None:
        shapes.append(f'<line x1="{x(cell.baseline):.1f}" y1="1" x2="{x(cell.baseline):.1f}" y2="15" stroke="#000"/>')
    shapes.append("</svg>")
    return "".join(shapes)


def _segments(report: MonitoringReport) -> str:
    cells = [c for c in report.cells if c.metric in {"auc", "brier", "ece", "positive_rate", "precision", "recall"}]
    if not cells:
        return '<p class="note">No labels joined yet, or no model version with a baseline.</p>'
    rows = [
        '<table class="segments"><tr><th>model, window</th><th>segment</th><th>metric</th>'
        '<th>training → now<br><span class="note">bar: interval, tick: training</span></th>'
        "<th>n</th><th>q</th><th>verdict</th></tr>"
    ]
    for cell in cells:
        klass = {ALERT: "alert", INSUFFICIENT_EVIDENCE: "insufficient"}.get(cell.verdict, "ok")
        verdict = (
            cell.verdict
            if cell.verdict != INSUFFICIENT_EVIDENCE
            else why_insufficient(cell, alpha=report.fdr, power=report.power)
        )
        interval = (
            f"interval {_fmt(cell.interval[0])}&ndash;{_fmt(cell.interval[1])}" if cell.interval is not None else ""
        )
        rows.append(
            f'<tr class="{klass}"><td>v{escape(cell.model_version)}, {escape(cell.window).replace(" ", "&nbsp;")}</td>'
            f"<td>{_breakable(cell.segment)}</td><td>{_breakable(cell.metric)}</td>"
            f'<td class="change" title="{interval}">{_fmt(cell.baseline)} → {_fmt(cell.value)}'
            f"{_interval_svg(cell)}</td>"
            f'<td class="number">{cell.n:,}</td>'
            f'<td class="number">{significance("q", cell.q_value).removeprefix("q = ").removeprefix("q ")}</td>'
            f'<td class="verdict">{escape(verdict)}</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _breakable(name: str) -> str:
    """A segment or metric name that may wrap after ``=``, ``_`` or ``&`` (``contract=<wbr/>Month-to-month``)."""
    text = escape(name)
    for mark in ("=", "_", "&amp;"):
        text = text.replace(mark, f"{mark}<wbr/>")
    return text


def _estimates(estimates: list[PerformanceEstimate]) -> str:
    if not estimates:
        return '<p class="note">No traffic to estimate from.</p>'
    rows = [
        "<table><tr><th>model</th><th>window</th><th>segment</th><th>n</th><th>AUC expected / realized</th>"
        "<th>precision</th><th>recall</th><th>positive rate</th><th>labels</th></tr>"
    ]
    for e in estimates:
        rows.append(
            f"<tr><td>{escape(e.model_version)}</td><td>{escape(e.window)}</td><td>{escape(e.segment)}</td>"
            f"<td>{e.n:,}</td><td>{_fmt(e.expected_auc)} / {_fmt(e.realized_auc)}</td>"
            f"<td>{_fmt(e.expected_precision)} / {_fmt(e.realized_precision)}</td>"
            f"<td>{_fmt(e.expected_recall)} / {_fmt(e.realized_recall)}</td>"
            f"<td>{_fmt(e.expected_positive_rate)} / {_fmt(e.realized_positive_rate)}</td><td>{e.labeled_n:,}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _data_quality(report: MonitoringReport) -> str:
    rows = ["<table><tr><th>window</th><th>feature</th><th>rows</th><th>null rate</th><th>unseen categories</th></tr>"]
    for q in report.data_quality:
        unseen = ", ".join(escape(c) for c in q.unseen_categories) or "&ndash;"
        rows.append(
            f"<tr><td>{escape(q.window)}</td><td>{escape(q.feature_name)}</td><td>{q.n:,}</td>"
            f"<td>{100 * q.null_rate:.1f}%</td><td>{unseen} ({q.unseen_count:,} rows)</td></tr>"
        )
    rows.append("</table>")
    refusals = [
        f"<li>{escape(w.window)}: "
        + ", ".join(f"{escape(reason)}: {count:,}" for reason, count in sorted(w.refusals.items()))
        + "</li>"
        for w in report.windows
        if w.refusals
    ]
    if refusals:
        rows.append("<h3>Refused requests by reason</h3><ul>" + "".join(refusals) + "</ul>")
    return "".join(rows)
