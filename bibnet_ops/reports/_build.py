"""Build an `UptimeReport` from the history store and the inventory."""

from __future__ import annotations

import gc
import math
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from operator import attrgetter

from bibnet_ops.accounting import (
    RULES,
    Availability,
    Basis,
    Segment,
    Span,
    account_on,
    basis,
    coverage,
    intersect,
    measure,
    normalize,
    subtract,
)
from bibnet_ops.inventory._model import Inventory
from bibnet_ops.model import Site
from bibnet_ops.reports._calendar import local_day_bounds, service_days, service_spans
from bibnet_ops.reports._model import ExcludedWindow, Outage, ReportRow, UnknownPeriod, UptimeReport
from bibnet_ops.reports._units import Unit, account_units
from bibnet_ops.store import HistoryStore, MaintenanceWindow, window_intervals

__all__ = ["GROUPINGS", "build_report", "percentile"]

GROUPINGS = ("site", "region", "kind", "device", "check")
PAGES_METRIC = "pages_per_hour"
SYNC_METRIC = "sync_lag"


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least pct % of values at or below it)."""
    if not values:
        return None
    return sorted(values)[_rank(len(values), pct) - 1]


def _rank(n: int, pct: float) -> int:
    return max(1, math.ceil(pct / 100.0 * n))


class _LagFigures:
    """Sync-lag p95 and maximum of the bucket maxima of a row's checks (`percentile` of them, without
    fetching them all: the store returns the largest 5 %); each set of checks is worked out once, since
    by kind the OAI row and the network total hold the same ones (a year of them is 730 k values)."""

    def __init__(self, store: HistoryStore, bucket: str, since: float, until: float, checks: list[str]) -> None:
        self.store, self.bucket, self.since, self.until = store, bucket, since, until
        self.counts = store.bucket_counts(bucket, since, until, checks) if checks else {}
        self._known: dict[frozenset[str], tuple[float | None, float | None]] = {}

    def of(self, units: list[Unit]) -> tuple[float | None, float | None]:
        ids = frozenset(c.id for u in units for c in u.checks if c.id in self.counts)
        if ids not in self._known:
            n = sum(self.counts[c] for c in ids)
            top = self.store.bucket_top(self.bucket, self.since, self.until, sorted(ids), n - _rank(n, 95) + 1)
            self._known[ids] = (top[-1], top[0]) if n else (None, None)
        return self._known[ids]


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
    with _without_cycle_collection():
        return _build_report(store, inventory, first, last, by=by, hours=hours, now=now)


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector: a year report makes millions of small acyclic objects (rows,
    segments, outages) that it would walk again and again (a fifth of the time) and find nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build_report(
    store: HistoryStore,
    inventory: Inventory,
    first: date,
    last: date,
    *,
    by: str,
    hours: str,
    now: float | None,
) -> UptimeReport:
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

    units = account_units(store, inventory, sites, kinds, by, since, horizon, accounted)
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
    groups: dict[str, list[Unit]] = defaultdict(list)
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
    # units come in key order and a unit's outages have distinct starts: a stable sort by start is by (start, key)
    report.outages.sort(key=attrgetter("start"))
    report.maintenance = _listed_windows(windows, sites, service, since, horizon)
    report.unknown_periods = [UnknownPeriod(s, e) for s, e in subtract([(since, horizon)], covered)]
    return report


def _excluded(windows: Sequence[MaintenanceWindow], site: Site, since: float, until: float) -> list[Span]:
    spans: list[Span] = []
    for w in windows:
        if w.exclude_from_sla and w.applies_to(site.id, site.region):
            spans.extend(window_intervals(w, since, until))
    return normalize(spans)


def _group_key(unit: Unit, by: str) -> str:
    if by == "region":
        return unit.site.region or "-"
    if by == "kind":
        return unit.kind or "-"
    return unit.key


def _metrics(
    store: HistoryStore, inventory: Inventory, since: float, until: float
) -> tuple[dict[str, float], _LagFigures, str]:
    """Pages per check (sum of daily counter increments), and the sync-lag figures of any set of checks."""
    page_checks = [c.id for c in inventory.checks if c.metric == PAGES_METRIC]
    sync_checks = [c.id for c in inventory.checks if c.metric == SYNC_METRIC]
    pages: dict[str, float] = defaultdict(float)
    if page_checks:
        pages.update(store.delta_sums("day", since, until, page_checks))
    bucket = "hour"
    if sync_checks:
        oldest = store.oldest_bucket("hour", sync_checks)
        if oldest is None or oldest > since + 86400:
            oldest_day = store.oldest_bucket("day", sync_checks)
            if oldest_day is not None and (oldest is None or oldest_day < oldest - 3600):
                bucket = "day"
    return pages, _LagFigures(store, bucket, since, until, sync_checks), bucket


def _row(
    key: str,
    units: list[Unit],
    by: str,
    inventory: Inventory,
    sla: float,
    pages_target: float | None,
    pages: dict[str, float],
    lag: _LagFigures,
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
    row.sync_lag_p95_s, row.sync_lag_max_s = lag.of(units)
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
