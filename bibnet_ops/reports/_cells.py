"""Figures as people read them, shared by the Markdown and HTML reports: local times, numbers, table cells."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bibnet_ops.reports._model import ReportRow, UptimeReport

__all__ = ["TABLE_HEADERS", "fmt_local", "num", "summary_lines", "table_cells"]


def fmt_local(t: float | None, tz: str, with_seconds: bool = False) -> str:
    """A UTC epoch time as local ISO 8601 with offset (empty for None)."""
    if t is None:
        return ""
    spec = "seconds" if with_seconds else "minutes"
    return datetime.fromtimestamp(t, ZoneInfo(tz)).isoformat(timespec=spec)


def num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{suffix}".replace(",", "\u202f")


def _pct(value: float | None) -> str:
    return num(value, 3, " %")


def _met(value: bool | None) -> str:
    return "—" if value is None else ("✔ met" if value else "✘ missed")


def summary_lines(report: UptimeReport) -> list[tuple[str, str]]:
    """Label/value pairs describing the report, shared by the Markdown and HTML renderers."""
    hours = "opening hours of each site" if report.hours == "opening" else "24x7 (all the time)"
    total = report.total
    return [
        ("Network", report.network),
        ("Period", f"{report.period_from} → {report.period_to} ({report.timezone})"),
        ("Service period", hours),
        ("Grouped by", report.by),
        ("SLA target", num(report.sla_target_pct, 2, " %")),
        ("Availability (network)", _pct(total.availability_pct if total else None)),
        ("Pages digitised", num(total.pages if total else None, 0)),
        ("Sync-lag bucket", report.sync_lag_bucket),
        ("Generated", fmt_local(report.generated_at, report.timezone)),
    ]


TABLE_HEADERS = [
    "Name",
    "الاسم",
    "Availability",
    "SLA",
    "Down (min)",
    "Outages",
    "Longest (min)",
    "MTTR (min)",
    "Unknown (min)",
    "Unreachable (min)",
    "Excluded (min)",
    "Pages",
    "Pages/day",
    "Sync lag p95 (s)",
]


def table_cells(row: ReportRow) -> list[str]:
    return [
        row.name_fr,
        row.name_ar,
        _pct(row.availability_pct),
        _met(row.sla_met),
        num(row.down_min),
        str(row.outages),
        num(row.longest_outage_min),
        num(row.mttr_min),
        num(row.unknown_min),
        num(row.unreachable_min),
        num(row.maintenance_excluded_min),
        num(row.pages, 0),
        num(row.pages_per_day, 0) + ("" if row.pages_target_met is None else f" ({_met(row.pages_target_met)})"),
        num(row.sync_lag_p95_s, 0),
    ]


