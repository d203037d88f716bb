"""Build an `UptimeReport` from the history store and the inventory."""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from operator import itemgetter

from bibnet_ops.inventory._model import Inventory
from bibnet_ops.model import CheckSpec, Site
from bibnet_ops.reports._calendar import local_day_bounds, service_days, service_spans
from bibnet_ops.reports._intervals import Span, intersect, measure, normalize, subtract
from bibnet_ops.reports._model import ExcludedWindow, Outage, ReportRow, UnknownPeriod, UptimeReport
from bibnet_ops.reports._uptime import (
    CHECK_CATEGORY,
    RULES,
    SITE_CATEGORY,
    Availability,
    Basis,
    Segment,
    account_on,
    basis,
    coverage,
    timeline,
    worst_of,
)
from bibnet_ops.store import HistoryStore, MaintenanceWindow, window_intervals

__all__ = ["GROUPINGS", "build_report", "percentile"]

GROUPINGS = ("site", "region", "kind", "device", "check")
PAGES_METRIC = "pages_per_hour"
SYNC_METRIC = "sync_lag"


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least pct % of values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class _Unit:
    """One accounted entity (a site, a device or a check) with what the rows need from it."""

    key: str
    name: str
    site: Site
    kind: str
    checks: list[CheckSpec]
    figures: Availability
    reasons: dict[float, str] = field(default_factory=dict)


def _settings_number(inventory: Inventory, table: str, key: str, default: float | None) -> float | None:
    value = (inventory.settings.get(table) or {}).get(key, default)
    return None if value is None else float(value)


def build_report(
    store: HistoryStore,
    inventory: Inventory,
    first: date,
    last: date,
    *,
    by: str = "site",
    hours: str = "opening",
    now: float | None = None,
) -> UptimeReport:
    """Availability, SLA, outages, digitisation and sync lag from `first` to `last` (local dates, inclusive).

    Args:
        by: site, region, kind (device kind), device or check.
        hours: "opening" (each site's opening hours) or "24x7".
        now: the present; the part of the period after it is not counted.
    """
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r} (use one of {', '.join(GROUPINGS)})")
    now = time.time() if now is None else now
    since, until = local_day_bounds(first, last, inventory.timezone)
    horizon = max(since, min(until, now))
    covered = coverage(store.runs(since, until), now)
    windows = store.maintenance_windows(since, horizon)
    sites = sorted(inventory.sites.values(), key=lambda s: s.id)
    kinds = {name: t.kind for name, t in inventory.templates.items()}
    spans_of = lru_cache(maxsize=None)(lambda oh: normalize(service_spans(oh, since, horizon, hours)))
    service = {s.id: spans_of(s.opening_hours) for s in sites}
    excluded = {s.id: _excluded(windows, s, since, horizon) for s in sites}
    bases: dict[tuple[object, ...], Basis] = {}

    def accounted(segments: list[Segment], site: Site) -> Availability:
        key = (site.opening_hours, tuple(excluded[site.id]))
        if key not in bases:
            bases[key] = basis(service[site.id], excluded[site.id], covered)
        return account_on(segments, bases[key], horizon)

    units = _units(store, inventory, sites, kinds, by, since, horizon, accounted)
    sla = _settings_number(inventory, "sla", "target", 99.0) or 99.0
    pages_target = _settings_number(inventory, "sla", "pages_per_day", None)
    pages, lag, bucket = _metrics(store, inventory, since, until)
    report = UptimeReport(
        network=inventory.name,
        period_from=first.isoformat(),
        period_to=last.isoformat(),
        since=since,
        until=until,
        timezone=inventory.timezone,
        hours=hours,
        by=by,
        generated_at=now,
        sla_target_pct=sla,
        pages_target_per_day=pages_target,
        sync_lag_bucket=bucket,
        rules=list(RULES),
    )
    days_of = lru_cache(maxsize=None)(lambda oh: service_days(oh, since, horizon, hours))
    days = {s.id: days_of(s.opening_hours) for s in sites}
    groups: dict[str, list[_Unit]] = defaultdict(list)
    for unit in units:
        groups[_group_key(unit, by)].append(unit)
    for key in sorted(groups):
        report.rows.append(_row(key, groups[key], by, inventory, sla, pages_target, pages, lag, days))
    report.total = _row("total", units, by, inventory, sla, pages_target, pages, lag, days)
    report.total.name_fr, report.total.name_ar = "Réseau (total)", "الشبكة (المجموع)"
    for unit in units:
        for o in unit.figures.outages:
            report.outages.append(
                Outage(
                    unit.key,
                    unit.name,
                    o.start,
                    o.end,
                    o.charged / 60,
                    o.ongoing,
                    o.started_before,
                    unit.reasons.get(o.start, ""),
                )
            )
    report.outages.sort(key=lambda o: (o.start, o.key))
    report.maintenance = _listed_windows(windows, sites, service, since, horizon)
    report.unknown_periods = [UnknownPeriod(s, e) for s, e in subtract([(since, horizon)], covered)]
    return report


def _excluded(windows: Sequence[MaintenanceWindow], site: Site, since: float, until: float) -> list[Span]:
    spans: list[Span] = []
    for w in windows:
        if w.exclude_from_sla and w.applies_to(site.id, site.region):
            spans.extend(window_intervals(w, since, until))
    return normalize(spans)


def _units(
    store: HistoryStore,
    inventory: Inventory,
    sites: list[Site],
    kinds: dict[str, str],
    by: str,
    since: float,
    horizon: float,
    accounted: Callable[[list[Segment], Site], Availability],
) -> list[_Unit]:
    """Account each site (site/region rows), device (device/kind rows) or check (check rows)."""
    units: list[_Unit] = []
    if by in ("site", "region"):
        changes: dict[str, list[tuple[float, str]]] = defaultdict(list)
        reasons: dict[str, dict[float, str]] = defaultdict(dict)
        for tr in store.site_transitions(since, horizon, [s.id for s in sites]):
            changes[tr.site_id].append((tr.time, tr.new))
            reasons[tr.site_id][max(tr.time, since)] = tr.reason
        by_site: dict[str, list[CheckSpec]] = defaultdict(list)
        for check in inventory.checks:  # one pass: Inventory.checks_of scans every check per call
            by_site[check.site_id].append(check)
        for site in sites:
            segments = timeline(changes[site.id], since, horizon, SITE_CATEGORY)
            units.append(
                _Unit(
                    site.id,
                    site.name_fr,
                    site,
                    site.kind,
                    by_site[site.id],
                    accounted(segments, site),
                    reasons[site.id],
                )
            )
        return units
    check_changes = store.hard_changes(since, horizon, [c.id for c in inventory.checks])
    devices: dict[str, list[CheckSpec]] = defaultdict(list)
    for check in inventory.checks:
        devices[check.device_key if by != "check" else check.id].append(check)
    for key, checks in sorted(devices.items()):
        site = inventory.sites[checks[0].site_id]
        lines = [check_changes.get(c.id, []) for c in checks]
        figures = accounted(worst_of(lines, since, horizon, CHECK_CATEGORY), site)
        kind = kinds.get(checks[0].template, checks[0].template)
        units.append(
            _Unit(
                key,
                f"{site.name_fr} — {key.split('/', 1)[1]}",
                site,
                kind,
                checks,
                figures,
                {o.start: _reason_at(lines, o.start, since) for o in figures.outages},
            )
        )
    return units


def _reason_at(lines: list[list[tuple[float, str, str]]], start: float, since: float) -> str:
    """The reason of the last change at `start` (changes before `since` count as at `since`) of the last
    check, in inventory order, that has one: the state change that started an outage."""
    for line in reversed(lines):
        i = bisect_right(line, start, key=itemgetter(0)) - 1
        if i >= 0 and max(line[i][0], since) == start:
            return line[i][2]
    return ""


def _group_key(unit: _Unit, by: str) -> str:
    if by == "region":
        return unit.site.region or "-"
    if by == "kind":
        return unit.kind or "-"
    return unit.key


def _metrics(
    store: HistoryStore, inventory: Inventory, since: float, until: float
) -> tuple[dict[str, float], dict[str, list[float]], str]:
    """Pages per check (sum of daily counter increments) and per-bucket maximum sync lag per check."""
    page_checks = [c.id for c in inventory.checks if c.metric == PAGES_METRIC]
    sync_checks = [c.id for c in inventory.checks if c.metric == SYNC_METRIC]
    pages: dict[str, float] = defaultdict(float)
    if page_checks:
        pages.update(store.delta_sums("day", since, until, page_checks))
    lag: dict[str, list[float]] = {}
    bucket = "hour"
    if sync_checks:
        oldest = store.oldest_bucket("hour", sync_checks)
        if oldest is None or oldest > since + 86400:
            oldest_day = store.oldest_bucket("day", sync_checks)
            if oldest_day is not None and (oldest is None or oldest_day < oldest - 3600):
                bucket = "day"
        lag = store.bucket_maxima(bucket, since, until, sync_checks)
    return pages, lag, bucket


def _row(
    key: str,
    units: list[_Unit],
    by: str,
    inventory: Inventory,
    sla: float,
    pages_target: float | None,
    pages: dict[str, float],
    lag: dict[str, list[float]],
    days: dict[str, int],
) -> ReportRow:
    total = Availability()
    for unit in units:
        total.add(unit.figures)
    first = units[0] if units else None
    row = ReportRow(key=key, name_fr=key, members=len(units), sla_target_pct=sla)
    if first is not None and by in ("site", "device", "check"):
        row.name_fr, row.name_ar = first.name, first.site.name_ar
        row.region, row.kind = first.site.region, first.kind
    elif by == "region" and key in inventory.regions:
        region = inventory.regions[key]
        row.name_fr, row.name_ar, row.region = region.name_fr, region.name_ar, key
    elif by == "kind":
        row.kind = key
    row.service_min, row.up_min, row.down_min = total.service / 60, total.up / 60, total.down / 60
    row.unknown_min, row.unreachable_min = total.unknown / 60, total.unreachable / 60
    row.maintenance_excluded_min = total.maintenance / 60
    ratio = total.ratio
    row.availability_pct = None if ratio is None else 100.0 * ratio
    row.sla_met = None if row.availability_pct is None else row.availability_pct >= sla
    charged = [o.charged / 60 for o in total.outages]
    row.outages = len(charged)
    row.longest_outage_min = max(charged, default=0.0)
    row.mttr_min = sum(charged) / len(charged) if charged else None
    scanning = [u for u in units if any(c.metric == PAGES_METRIC for c in u.checks)]
    if scanning:
        row.pages = sum(pages.get(c.id, 0.0) for u in units for c in u.checks if c.metric == PAGES_METRIC)
        unit_days = sum(days[u.site.id] for u in scanning)
        row.pages_per_day = row.pages / unit_days if unit_days else None
        row.pages_target_per_day = pages_target
        if pages_target is not None and row.pages_per_day is not None:
            row.pages_target_met = row.pages_per_day >= pages_target
    values = [v for u in units for c in u.checks for v in lag.get(c.id, ())]
    row.sync_lag_p95_s = percentile(values, 95)
    row.sync_lag_max_s = max(values, default=None)
    return row


def _listed_windows(
    windows: Sequence[MaintenanceWindow],
    sites: list[Site],
    service: dict[str, list[Span]],
    since: float,
    until: float,
) -> list[ExcludedWindow]:
    out = []
    for w in windows:
        spans = normalize(window_intervals(w, since, until))
        if not spans:
            continue
        removed = 0.0
        if w.exclude_from_sla:
            removed = sum(measure(intersect(service[s.id], spans)) for s in sites if w.applies_to(s.id, s.region))
        recurrence = f"{','.join(w.days)} {w.local_start}-{w.local_end}" if w.recurring else ""
        out.append(
            ExcludedWindow(
                w.id,
                w.scope,
                w.target,
                w.start,
                w.end,
                recurrence,
                w.reason,
                w.exclude_from_sla,
                removed / 60,
                w.created_by,
            )
        )
    return out
