"""The Markdown report: the summary, the availability table, outages, maintenance and the accounting rules."""

from __future__ import annotations

from bibnet_ops.reports._cells import TABLE_HEADERS, fmt_local, num, summary_lines, table_cells
from bibnet_ops.reports._model import UptimeReport

__all__ = ["render_markdown"]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: UptimeReport, max_outages: int = 50) -> str:
    out = [f"# Availability report — {report.network}", ""]
    out += [f"- **{label}**: {_md_escape(value)}" for label, value in summary_lines(report)]
    out += ["", "## Availability", "", "| " + " | ".join(TABLE_HEADERS) + " |"]
    out.append("|" + "---|" * len(TABLE_HEADERS))
    for row in [*report.rows, *([report.total] if report.total else [])]:
        out.append("| " + " | ".join(_md_escape(c) for c in table_cells(row)) + " |")
    longest = sorted(report.outages, key=lambda o: -o.charged_min)[:max_outages]
    out += ["", f"## Outages ({len(report.outages)}, longest {len(longest)} shown)", ""]
    if longest:
        out += ["| Entity | Start | End | Charged (min) | Reason |", "|---|---|---|---|---|"]
        for o in longest:
            end = "ongoing" if o.ongoing else fmt_local(o.end, report.timezone)
            out.append(
                f"| {_md_escape(o.name_fr)} | {fmt_local(o.start, report.timezone)} | {end} | "
                f"{num(o.charged_min)} | {_md_escape(o.reason)} |"
            )
    else:
        out.append("No outage in the period.")
    out += ["", "## Maintenance windows", ""]
    if report.maintenance:
        out += ["| # | Scope | Start | End | Recurs | Excluded from SLA | Excluded (site-min) | Reason | By |"]
        out.append("|---|---|---|---|---|---|---|---|---|")
        for w in report.maintenance:
            out.append(
                f"| {w.id} | {w.scope} {_md_escape(w.target)} | {fmt_local(w.start, report.timezone)} | "
                f"{fmt_local(w.end, report.timezone) or 'open'} | {w.recurrence or '—'} | "
                f"{'yes' if w.excluded_from_sla else 'no'} | {num(w.excluded_min)} | {_md_escape(w.reason)} | "
                f"{_md_escape(w.created_by)} |"
            )
    else:
        out.append("None.")
    out += ["", "## Periods without a collector (unknown)", ""]
    if report.unknown_periods:
        out += [
            f"- {fmt_local(p.start, report.timezone)} → {fmt_local(p.end, report.timezone)} "
            f"({num((p.end - p.start) / 60)} min)"
            for p in report.unknown_periods
        ]
    else:
        out.append("None: a collector ran throughout.")
    out += ["", "## Accounting rules", ""]
    out += [f"{i}. {rule}" for i, rule in enumerate(report.rules, 1)]
    return "\n".join(out) + "\n"
