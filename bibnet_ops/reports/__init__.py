"""Uptime, SLA, outages, digitisation and sync-lag reports from the history store.

`build_report(store, inventory, first, last, by=..., hours=...)` makes an `UptimeReport`;
`render_report(report, fmt)` turns it into CSV (bytes), JSON, Markdown or HTML (str).
"""

from __future__ import annotations

from bibnet_ops.accounting import RULES, Availability
from bibnet_ops.reports._build import GROUPINGS, build_report, percentile
from bibnet_ops.reports._calendar import HOURS_MODES, service_spans
from bibnet_ops.reports._cells import fmt_local
from bibnet_ops.reports._model import (
    REPORT_SCHEMA_VERSION,
    ExcludedWindow,
    Outage,
    ReportRow,
    UnknownPeriod,
    UptimeReport,
)
from bibnet_ops.reports._render import FORMATS, render_report

__all__ = [
    "FORMATS",
    "GROUPINGS",
    "HOURS_MODES",
    "REPORT_SCHEMA_VERSION",
    "RULES",
    "Availability",
    "ExcludedWindow",
    "Outage",
    "ReportRow",
    "UnknownPeriod",
    "UptimeReport",
    "build_report",
    "fmt_local",
    "percentile",
    "render_report",
    "service_spans",
]
