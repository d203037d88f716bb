"""What an uptime report contains; every renderer (CSV, JSON, Markdown, HTML) reads only this."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["REPORT_SCHEMA_VERSION", "ExcludedWindow", "Outage", "ReportRow", "UnknownPeriod", "UptimeReport"]

# Bump when a JSON field changes meaning or disappears (adding a field keeps the version).
REPORT_SCHEMA_VERSION = 1


@dataclass
class ReportRow:
    """Figures for one site, region, device kind, device or check (minutes unless the name says otherwise)."""

    key: str
    name_fr: str
    name_ar: str = ""
    region: str = ""
    kind: str = ""
    members: int = 1
    service_min: float = 0.0
    up_min: float = 0.0
    down_min: float = 0.0
    unknown_min: float = 0.0
    unreachable_min: float = 0.0
    maintenance_excluded_min: float = 0.0
    availability_pct: float | None = None
    sla_target_pct: float = 99.0
    sla_met: bool | None = None
    outages: int = 0
    longest_outage_min: float = 0.0
    mttr_min: float | None = None
    pages: float | None = None
    pages_per_day: float | None = None
    pages_target_per_day: float | None = None
    pages_target_met: bool | None = None
    sync_lag_p95_s: float | None = None
    sync_lag_max_s: float | None = None


@dataclass
class Outage:
    """One continuous down period of a reported entity; `charged_min` is what it cost the SLA."""

    key: str
    name_fr: str
    start: float
    end: float
    charged_min: float
    ongoing: bool = False
    started_before: bool = False
    reason: str = ""


@dataclass
class ExcludedWindow:
    """A maintenance window that applied during the period and the service time it removed."""

    id: int
    scope: str
    target: str
    start: float
    end: float | None
    recurrence: str
    reason: str
    excluded_from_sla: bool
    excluded_min: float
    created_by: str


@dataclass
class UnknownPeriod:
    """A span of the period when no collector was running."""

    start: float
    end: float


@dataclass
class UptimeReport:
    """An availability / SLA / digitisation report over a period (local dates, inclusive)."""

    network: str
    period_from: str
    period_to: str
    since: float
    until: float
    timezone: str
    hours: str
    by: str
    generated_at: float
    sla_target_pct: float
    pages_target_per_day: float | None
    sync_lag_bucket: str
    rows: list[ReportRow] = field(default_factory=list)
    total: ReportRow | None = None
    outages: list[Outage] = field(default_factory=list)
    maintenance: list[ExcludedWindow] = field(default_factory=list)
    unknown_periods: list[UnknownPeriod] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    schema_version: int = REPORT_SCHEMA_VERSION
