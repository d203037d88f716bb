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

from bibnet_ops.reports._html import render_html
from bibnet_ops.reports._markdown import render_markdown
from bibnet_ops.reports._model import ReportRow, UptimeReport

__all__ = ["FORMATS", "ROW_COLUMNS", "render_report"]

FORMATS = ("csv", "json", "md", "html")
ROW_COLUMNS = [f.name for f in fields(ReportRow)]
_TIME_FIELDS = {"since", "until", "generated_at", "start", "end"}


def render_report(report: UptimeReport, fmt: str) -> bytes | str:
    """The report in one of FORMATS: `bytes` for CSV (it carries a BOM), `str` for the others."""
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
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
