"""Render an `UptimeReport` as CSV (UTF-8 with BOM for Excel), JSON (versioned), Markdown or HTML."""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields, is_dataclass
from datetime import datetime
from json.encoder import encode_basestring as _encode_str
from typing import Any
from zoneinfo import ZoneInfo

from bibnet_ops.reports._model import ReportRow, UptimeReport

__all__ = ["FORMATS", "ROW_COLUMNS", "fmt_local", "render_report"]

FORMATS = ("csv", "json", "md", "html")
ROW_COLUMNS = [f.name for f in fields(ReportRow)]
_TIME_FIELDS = {"since", "until", "generated_at", "start", "end"}


def fmt_local(t: float | None, tz: str, with_seconds: bool = False) -> str:
    """A UTC epoch time as local ISO 8601 with offset (empty for None)."""
    if t is None:
        return ""
    spec = "seconds" if with_seconds else "minutes"
    return datetime.fromtimestamp(t, ZoneInfo(tz)).isoformat(timespec=spec)


def render_report(report: UptimeReport, fmt: str) -> bytes | str:
    """The report in one of FORMATS: `bytes` for CSV (it carries a BOM), `str` for the others."""
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
        from bibnet_ops.reports._html import render_html

        return render_html(report)
    raise ValueError(f"unknown report format {fmt!r} (use one of {', '.join(FORMATS)})")


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))
    return value


def render_csv(report: UptimeReport) -> bytes:
    """One line per row plus the network total; UTF-8 with BOM so Excel shows the Arabic names."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["period_from", "period_to", "hours", "by", *ROW_COLUMNS])
    rows = [*report.rows, *([report.total] if report.total else [])]
    for row in rows:
        values = asdict(row)
        writer.writerow(
            [report.period_from, report.period_to, report.hours, report.by, *(_cell(values[c]) for c in ROW_COLUMNS)]
        )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def render_json(report: UptimeReport) -> str:
    """Stable JSON (documented in docs/reports.md); times are local ISO 8601 with their UTC offset."""
    zone = ZoneInfo(report.timezone)

    def plain(key: str, value: Any) -> Any:
        if key in _TIME_FIELDS and isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, zone).isoformat(timespec="seconds")
        return round(value, 4) if isinstance(value, float) else value

    def encoded(key: str, value: Any) -> str:  # json.dumps(plain(key, value)), in one step for speed
        if type(value) is str:
            return _encode_str(value)
        if type(value) is float and math.isfinite(value):
            if key in _TIME_FIELDS:
                return '"' + datetime.fromtimestamp(value, zone).isoformat(timespec="seconds") + '"'
            return repr(round(value, 4))
        return json.dumps(plain(key, value), ensure_ascii=False)

    data: dict[str, Any] = {"schema_version": report.schema_version}
    lists: dict[str, str] = {}
    # lists of rows, outages...: written apart by hand, then put in the place of a token no value can hold
    token = f"records-{uuid.uuid4().hex}-"
    for name, value in vars(report).items():
        if name == "schema_version":
            continue
        if isinstance(value, list) and value and is_dataclass(value[0]):
            lists[_encode_str(token + name)] = _records_json([vars(item) for item in value], encoded)
            data[name] = token + name
        elif isinstance(value, list):
            data[name] = [plain("", v) for v in value]
        elif is_dataclass(value):
            data[name] = {key: plain(key, v) for key, v in vars(value).items()}
        else:
            data[name] = plain(name, value)
    out = json.dumps(data, ensure_ascii=False, indent=2)
    for placeholder, text in lists.items():
        out = out.replace(placeholder, text, 1)
    return out + "\n"


def _records_json(records: list[Mapping[str, Any]], encoded: Callable[[str, Any], str]) -> str:
    """Flat records, one level into the document, as `json.dumps(indent=2)` writes them, without its
    pure-Python indenting encoder (a year by device kind lists 72 k outages)."""
    keys = {key: f"      {_encode_str(key)}: " for key in records[0]}
    items = [
        "    {\n" + ",\n".join(keys[k] + encoded(k, v) for k, v in record.items()) + "\n    }" for record in records
    ]
    return "[\n" + ",\n".join(items) + "\n  ]"


def _num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{suffix}".replace(",", "\u202f")


def _pct(value: float | None) -> str:
    return _num(value, 3, " %")


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
        ("SLA target", _num(report.sla_target_pct, 2, " %")),
        ("Availability (network)", _pct(total.availability_pct if total else None)),
        ("Pages digitised", _num(total.pages if total else None, 0)),
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
        _num(row.down_min),
        str(row.outages),
        _num(row.longest_outage_min),
        _num(row.mttr_min),
        _num(row.unknown_min),
        _num(row.unreachable_min),
        _num(row.maintenance_excluded_min),
        _num(row.pages, 0),
        _num(row.pages_per_day, 0) + ("" if row.pages_target_met is None else f" ({_met(row.pages_target_met)})"),
        _num(row.sync_lag_p95_s, 0),
    ]


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
                f"{_num(o.charged_min)} | {_md_escape(o.reason)} |"
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
                f"{'yes' if w.excluded_from_sla else 'no'} | {_num(w.excluded_min)} | {_md_escape(w.reason)} | "
                f"{_md_escape(w.created_by)} |"
            )
    else:
        out.append("None.")
    out += ["", "## Periods without a collector (unknown)", ""]
    if report.unknown_periods:
        out += [
            f"- {fmt_local(p.start, report.timezone)} → {fmt_local(p.end, report.timezone)} "
            f"({_num((p.end - p.start) / 60)} min)"
            for p in report.unknown_periods
        ]
    else:
        out.append("None: a collector ran throughout.")
    out += ["", "## Accounting rules", ""]
    out += [f"{i}. {rule}" for i, rule in enumerate(report.rules, 1)]
    return "\n".join(out) + "\n"
