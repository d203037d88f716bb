"""One self-contained HTML file (inline CSS and SVG, no script, no external resource) that prints on A4."""

from __future__ import annotations

from collections import defaultdict
from html import escape

from bibnet_ops.reports._cells import TABLE_HEADERS, fmt_local, summary_lines, table_cells
from bibnet_ops.reports._model import Outage, UptimeReport

__all__ = ["render_html"]

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font: 10pt/1.35 "DejaVu Sans", "Noto Sans", Arial, sans-serif; color: #111; margin: 0 auto; max-width: 190mm; }
h1 { font-size: 16pt; margin: 0 0 4mm; } h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 1px solid #999; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 1mm 4mm; margin: 0; }
dt { font-weight: bold; } dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 8pt; }
th, td { border: 1px solid #bbb; padding: 1mm 1.5mm; text-align: right; vertical-align: top; }
th { background: #eee; } td.name, th.name { text-align: left; } td[dir=rtl] { text-align: right; }
tr.total td { font-weight: bold; background: #f4f4f4; }
thead { display: table-header-group; } tr, .chart { page-break-inside: avoid; break-inside: avoid; }
.missed { color: #a00; } .met { color: #060; }
.chart svg { width: 100%; height: auto; }
ol.rules li { margin-bottom: 1mm; }
@media print { a { color: inherit; text-decoration: none; } }
"""

_BAR_W, _LABEL_W = 680, 200


def _bars(report: UptimeReport) -> str:
    """Availability bars: per region for site rows (aggregated), else one bar per row (at most 40)."""
    groups: dict[str, tuple[float, float]] = defaultdict(lambda: (0.0, 0.0))
    if report.by == "site":
        for row in report.rows:
            up, down = groups[row.region or "-"]
            groups[row.region or "-"] = (up + row.up_min, down + row.down_min)
        title = "Availability by region"
    else:
        for row in report.rows[:40]:
            groups[row.name_fr] = (row.up_min, row.down_min)
        title = f"Availability by {report.by}"
    if not groups:
        return ""
    lo = min(95.0, report.sla_target_pct - 1)
    scale = (_BAR_W - _LABEL_W - 60) / (100.0 - lo)
    height = 18 * len(groups) + 30
    parts = [f'<svg viewBox="0 0 {_BAR_W} {height}" role="img" aria-label="{escape(title)}">']
    target_x = _LABEL_W + (report.sla_target_pct - lo) * scale
    for i, (name, (up, down)) in enumerate(sorted(groups.items())):
        y = 10 + 18 * i
        pct = 100.0 * up / (up + down) if up + down > 0 else None
        width = 0.0 if pct is None else max(0.0, (pct - lo) * scale)
        colour = "#2a7" if pct is not None and pct >= report.sla_target_pct else "#c33"
        label = "no data" if pct is None else f"{pct:.2f} %"
        parts.append(f'<text x="{_LABEL_W - 6}" y="{y + 12}" font-size="11" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<rect x="{_LABEL_W}" y="{y}" width="{width:.1f}" height="14" fill="{colour}"/>')
        parts.append(f'<text x="{_LABEL_W + width + 4:.1f}" y="{y + 12}" font-size="11">{label}</text>')
    parts.append(
        f'<line x1="{target_x:.1f}" x2="{target_x:.1f}" y1="4" y2="{height - 16}" stroke="#000" '
        'stroke-dasharray="4 3"/>'
        f'<text x="{target_x:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">SLA '
        f"{report.sla_target_pct:g} % (axis from {lo:g} %)</text></svg>"
    )
    return f'<div class="chart"><h2>{escape(title)}</h2>{"".join(parts)}</div>'


def _timeline(report: UptimeReport, lanes: int = 30) -> str:
    """Outage timeline: one lane per entity with outages (the most affected first)."""
    if not report.outages:
        return ""
    charged: dict[str, float] = defaultdict(float)
    names: dict[str, str] = {}
    of_key: dict[str, list[Outage]] = defaultdict(list)
    for o in report.outages:
        charged[o.key] += o.charged_min
        names[o.key] = o.name_fr
        of_key[o.key].append(o)
    keys = sorted(charged, key=lambda k: -charged[k])[:lanes]
    span = max(report.until - report.since, 1.0)
    plot_w = _BAR_W - _LABEL_W - 10
    height = 16 * len(keys) + 30
    parts = [f'<svg viewBox="0 0 {_BAR_W} {height}" role="img" aria-label="Outage timeline">']
    for i, key in enumerate(keys):
        y = 6 + 16 * i
        parts.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 10}" font-size="10" text-anchor="end">{escape(names[key][:38])}</text>'
        )
        parts.append(f'<rect x="{_LABEL_W}" y="{y}" width="{plot_w}" height="12" fill="#eee"/>')
        for o in of_key[key]:
            x = _LABEL_W + plot_w * (max(o.start, report.since) - report.since) / span
            w = max(1.0, plot_w * (min(o.end, report.until) - max(o.start, report.since)) / span)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="12" fill="#c33">'
                f"<title>{escape(fmt_local(o.start, report.timezone))} {o.charged_min:.0f} min</title></rect>"
            )
    parts.append(
        f'<text x="{_LABEL_W}" y="{height - 4}" font-size="10">{escape(report.period_from)}</text>'
        f'<text x="{_BAR_W - 10}" y="{height - 4}" font-size="10" text-anchor="end">{escape(report.period_to)}</text>'
        "</svg>"
    )
    return f'<div class="chart"><h2>Outage timeline</h2>{"".join(parts)}</div>'


def _table(report: UptimeReport) -> str:
    head = "".join(
        f'<th class="name">{escape(h)}</th>' if i < 2 else f"<th>{escape(h)}</th>" for i, h in enumerate(TABLE_HEADERS)
    )
    body = []
    rows = [*report.rows, *([report.total] if report.total else [])]
    for row in rows:
        cells = table_cells(row)
        klass = "" if row.sla_met is None else ("met" if row.sla_met else "missed")
        tds = [f'<td class="name">{escape(cells[0])}</td>', f'<td dir="rtl" lang="ar">{escape(cells[1])}</td>']
        tds += [
            f'<td class="{klass}">{escape(c)}</td>' if i == 1 else f"<td>{escape(c)}</td>"
            for i, c in enumerate(cells[2:], 1)
        ]
        total = ' class="total"' if row is report.total else ""
        body.append(f"<tr{total}>{''.join(tds)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _lists(report: UptimeReport, max_outages: int = 50) -> str:
    tz = report.timezone
    out = [f"<h2>Outages ({len(report.outages)}, longest {min(max_outages, len(report.outages))} shown)</h2>"]
    longest = sorted(report.outages, key=lambda o: -o.charged_min)[:max_outages]
    if longest:
        out.append(
            '<table><thead><tr><th class="name">Entity</th><th>Start</th><th>End</th>'
            '<th>Charged (min)</th><th class="name">Reason</th></tr></thead><tbody>'
        )
        for o in longest:
            end = "ongoing" if o.ongoing else fmt_local(o.end, tz)
            out.append(
                f'<tr><td class="name">{escape(o.name_fr)}</td><td>{fmt_local(o.start, tz)}</td>'
                f'<td>{end}</td><td>{o.charged_min:.1f}</td><td class="name">{escape(o.reason)}</td></tr>'
            )
        out.append("</tbody></table>")
    else:
        out.append("<p>No outage in the period.</p>")
    out.append("<h2>Maintenance windows</h2>")
    if report.maintenance:
        out.append(
            '<table><thead><tr><th>#</th><th class="name">Scope</th><th>Start</th><th>End</th><th>Recurs</th>'
            '<th>Excluded from SLA</th><th>Excluded (site-min)</th><th class="name">Reason</th><th>By</th>'
            "</tr></thead><tbody>"
        )
        for w in report.maintenance:
            out.append(
                f'<tr><td>{w.id}</td><td class="name">{escape(w.scope)} {escape(w.target)}</td>'
                f"<td>{fmt_local(w.start, tz)}</td><td>{fmt_local(w.end, tz) or 'open'}</td>"
                f"<td>{escape(w.recurrence) or '—'}</td><td>{'yes' if w.excluded_from_sla else 'no'}</td>"
                f'<td>{w.excluded_min:.1f}</td><td class="name">{escape(w.reason)}</td>'
                f"<td>{escape(w.created_by)}</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append("<p>None.</p>")
    out.append("<h2>Periods without a collector (unknown, never counted as up)</h2>")
    if report.unknown_periods:
        items = "".join(
            f"<li>{fmt_local(p.start, tz)} → {fmt_local(p.end, tz)} ({(p.end - p.start) / 60:.1f} min)</li>"
            for p in report.unknown_periods
        )
        out.append(f"<ul>{items}</ul>")
    else:
        out.append("<p>None: a collector ran throughout.</p>")
    out.append('<h2>Accounting rules</h2><ol class="rules">')
    out.extend(f"<li>{escape(rule)}</li>" for rule in report.rules)
    out.append("</ol>")
    return "".join(out)


def render_html(report: UptimeReport) -> str:
    """The whole report as one HTML document."""
    summary = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in summary_lines(report))
    title = f"Availability report — {report.network} — {report.period_from} → {report.period_to}"
    return (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><dl>{summary}</dl>"
        f"{_bars(report)}<h2>Availability</h2>{_table(report)}{_timeline(report)}{_lists(report)}"
        "</body></html>\n"
    )
