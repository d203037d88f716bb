"""History for the screens: a site's stored sparklines, events and uptime; report periods, files and figures.

Everything here is plain Python (no Textual): the `load_*`, `compute_*` and `write_*` functions do the disk
work and run in the screens' thread workers, never on the UI thread; the rest formats their results.
"""

from __future__ import annotations

import logging
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.store import HistoryEvent, HistoryReader, SiteUptime, StoreError, StoreLike, open_store, store_exists
from bibnet_ops.tui.fmt import age, number, share
from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.netstate import PAGES_METRIC, CheckView, FeedEntry

if TYPE_CHECKING:
    from bibnet_ops.inventory import Inventory
    from bibnet_ops.reports import ReportRow, UptimeReport

__all__ = [
    "PERIODS",
    "REPORT_GROUPINGS",
    "SPARK_HOURS",
    "SPARK_POINTS",
    "NoHistoryError",
    "ReportRequest",
    "SiteHistory",
    "SparkHistory",
    "compute_report",
    "event_time",
    "feed_entries",
    "has_data",
    "load_site_history",
    "local_today",
    "merge_events",
    "period_dates",
    "report_cells",
    "report_filename",
    "uptime_line",
    "write_report",
]

log = logging.getLogger(__name__)

# The site screen's sparklines start with this many hours of stored history, in this many slots.
SPARK_HOURS = 2.0
SPARK_POINTS = 60
PERIODS = ("this_month", "last_month", "last_7_days", "custom")
REPORT_GROUPINGS = ("site", "region", "kind")


class NoHistoryError(Exception):
    """There is no history store to read (none configured, or the collector has not written it yet)."""


# Site detail.


@dataclass(frozen=True)
class SiteHistory:
    """What the site screen reads from the store: sparkline seeds, events, uptime over 24 h and 30 days.

    `until` is when it was read: live samples after it extend the seeds. `problem` is empty when the
    store was read, `missing` when there is no store yet, else the error text.
    """

    site_id: str
    until: float
    latency: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)
    events: list[FeedEntry] = field(default_factory=list)
    day: SiteUptime | None = None
    month: SiteUptime | None = None
    problem: str = ""


def _present(values: list[float | None], scale: float = 1.0) -> list[float]:
    # A sparkline cannot draw a gap: slots without data are left out rather than drawn as zero.
    return [v * scale for v in values if v is not None]


def feed_entries(events: list[HistoryEvent]) -> list[FeedEntry]:
    """Stored state changes as feed entries (unchanged states, and states this version does not know, left out)."""
    out = []
    for e in events:
        if e.old == e.new:
            continue  # a soft-to-hard step or a restart: the live feed leaves these out too
        kind = SiteStatus if e.site else CheckStatus
        try:
            kind(e.old), kind(e.new)
        except ValueError:
            continue
        site = e.subject if e.site else e.subject.split("/", 1)[0]
        out.append(FeedEntry(e.time, site, "" if e.site else e.subject, e.old, e.new, e.reason, e.hard, e.site))
    return out


def load_site_history(
    path: StoreLike | None,
    inventory: Inventory,
    site_id: str,
    now: float,
    *,
    hours: float = SPARK_HOURS,
    points: int = SPARK_POINTS,
    events: int = 20,
) -> SiteHistory:
    """Read a site's history (blocking: call it from a worker thread); errors come back in `problem`."""
    if path is None or not store_exists(path):
        return SiteHistory(site_id, now, problem="missing")
    reader = HistoryReader(path)
    since = now - hours * 3600
    try:
        latency: dict[str, list[float]] = {}
        values: dict[str, list[float]] = {}
        for check in inventory.checks_of(site_id):
            latency[check.id] = _present(reader.sparkline(check.id, since, now, points, "latency"), 1000.0)
            if check.metric == PAGES_METRIC:
                values[check.id] = _present(reader.sparkline(check.id, since, now, points, "value"))
        return SiteHistory(
            site_id,
            now,
            latency,
            values,
            feed_entries(reader.recent_events(events, site_id)),
            reader.site_uptime(inventory, site_id, 24.0, now),
            reader.site_uptime(inventory, site_id, 30 * 24.0, now),
        )
    except StoreError as exc:
        return SiteHistory(site_id, now, problem=str(exc))
    except Exception as exc:  # a locked or damaged file must not take the dashboard down
        log.exception("reading the history of %s", site_id)
        return SiteHistory(site_id, now, problem=str(exc) or type(exc).__name__)


def merge_events(stored: list[FeedEntry], live: list[FeedEntry], limit: int) -> list[FeedEntry]:
    """Stored and live state changes, newest first, each once (the store keeps times to the millisecond)."""
    seen: set[tuple[int, str, str, str]] = set()
    out = []
    for entry in sorted([*live, *stored], key=lambda e: -e.time):
        key = (round(entry.time * 1000), entry.site_id, entry.check_id, entry.new)
        if key in seen:
            continue
        seen.add(key)
        out.append(entry)
        if len(out) >= limit:
            break
    return out


class SparkHistory:
    """Sparkline series of one site: the stored seed, then the live samples seen after it was read."""

    def __init__(self) -> None:
        self.seeded = False
        self._until = 0.0
        self._seed: dict[str, dict[str, list[float]]] = {"latency": {}, "value": {}}
        self._tail: dict[str, dict[str, list[tuple[float, float]]]] = {"latency": {}, "value": {}}
        self._last: dict[str, float] = {}

    def seed(self, history: SiteHistory) -> None:
        """Start again from freshly read history; live samples it already holds are dropped."""
        self.seeded = True
        self._until = history.until
        self._seed = {"latency": dict(history.latency), "value": dict(history.values)}
        for tail in self._tail.values():
            for cid, points in tail.items():
                tail[cid] = [p for p in points if p[0] >= history.until]

    def observe(self, view: CheckView) -> None:
        """Record a check's latest sample if it is new and later than the seed."""
        t = view.last_time
        cid = view.spec.id
        if t is None or t <= self._last.get(cid, 0.0):
            return
        self._last[cid] = t
        if not self.seeded or t < self._until:
            return
        if view.latency is not None:
            self._tail["latency"].setdefault(cid, []).append((t, view.latency * 1000.0))
        if view.value is not None and view.spec.metric == PAGES_METRIC:
            self._tail["value"].setdefault(cid, []).append((t, view.value))
        for tail in self._tail.values():
            points = tail.get(cid)
            if points and len(points) > 4 * SPARK_POINTS:
                del points[: len(points) - 4 * SPARK_POINTS]

    def series(self, field_name: str, check_id: str, live: list[float]) -> list[float]:
        """Seed plus later samples; the in-memory `live` series while the store has nothing for the check."""
        seed = self._seed[field_name].get(check_id, [])
        if not seed:
            return live
        return seed + [v for _, v in self._tail[field_name].get(check_id, [])]

    def has(self, field_name: str, check_id: str) -> bool:
        """Whether the store had data for this check."""
        return bool(self._seed[field_name].get(check_id))


def _pct(value: float) -> str:
    return f"{number(value, 1)} %"


def uptime_line(day: SiteUptime | None, month: SiteUptime | None) -> str:
    """`24 h: 99.2 % (unknown 3 %)  30 d: 98.7 %`: availability with the share no collector saw."""
    parts = []
    for key, uptime in (("detail.uptime_24h", day), ("detail.uptime_30d", month)):
        if uptime is None:
            continue
        pct = tr("detail.no_data") if uptime.availability_pct is None else _pct(uptime.availability_pct)
        text = tr(key, pct=pct)
        unknown = 100.0 * uptime.unknown_min / (uptime.hours * 60) if uptime.hours else 0.0
        if round(unknown) >= 1:
            text += " " + tr("detail.uptime_unknown", pct=share(unknown))
        parts.append(text)
    return "  ".join(parts)


# Reports.


def period_dates(choice: str, today: date, first: str = "", last: str = "") -> tuple[date, date]:
    """First and last local day of a report period; `first` and `last` (YYYY-MM-DD) for `custom`.

    Raises:
        ValueError: a custom date that is not YYYY-MM-DD, or an end before the start.
    """
    if choice == "this_month":
        return today.replace(day=1), today
    if choice == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end.replace(day=monthrange(end.year, end.month)[1])
    if choice == "last_7_days":
        return today - timedelta(days=6), today
    if choice != "custom":
        raise ValueError(choice)
    start, end = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
    if end < start:
        raise ValueError(f"{end} < {start}")
    return start, end


@dataclass(frozen=True)
class ReportRequest:
    """What the report screen asks for: a period (local dates, inclusive), a grouping, a service period."""

    first: date
    last: date
    by: str = "site"
    hours: str = "opening"


def compute_report(path: StoreLike | None, inventory: Inventory, request: ReportRequest, now: float) -> UptimeReport:
    """Build the report from the store (blocking: call it from a worker thread).

    Raises:
        NoHistoryError: no store configured, or none written yet.
    """
    from bibnet_ops.reports import build_report

    if path is None or not store_exists(path):
        raise NoHistoryError(str(path) if path is not None else "")
    try:
        store = open_store(path, readonly=True)
    except StoreError as exc:
        raise NoHistoryError(str(exc)) from exc
    try:
        return build_report(store, inventory, request.first, request.last, by=request.by, hours=request.hours, now=now)
    finally:
        store.close()


def report_filename(report: UptimeReport, fmt: str) -> str:
    """`bibnet-report-2026-03-01_2026-03-31-site-opening.csv`."""
    return f"bibnet-report-{report.period_from}_{report.period_to}-{report.by}-{report.hours}.{fmt}"


def write_report(report: UptimeReport, fmt: str, directory: Path) -> Path:
    """Render the report as the CLI does and write it into `directory` (blocking: worker thread)."""
    from bibnet_ops.reports import render_report

    if not directory.is_dir():
        raise FileNotFoundError(str(directory))
    rendered = render_report(report, fmt)
    path = directory / report_filename(report, fmt)
    path.write_bytes(rendered if isinstance(rendered, bytes) else rendered.encode("utf-8"))
    return path


def has_data(report: UptimeReport) -> bool:
    """Whether anything of the period was measured (else the store holds no history for it)."""
    total = report.total
    return total is not None and (total.up_min + total.down_min + total.unreachable_min) > 0


def _minutes(value: float | None) -> str:
    return "—" if value is None else age(value * 60) if value >= 1 else tr("unit.minutes", n=0)


def report_cells(row: ReportRow, name: str) -> tuple[str, ...]:
    """A preview line: key, name, availability, SLA met, downtime, outages, MTTR, pages."""
    avail = "—" if row.availability_pct is None else f"{number(row.availability_pct, 2)} %"
    sla = "—" if row.sla_met is None else ("✓ " + tr("report.yes")) if row.sla_met else ("✗ " + tr("report.no"))
    pages = "—" if row.pages is None else number(row.pages)
    mttr = _minutes(row.mttr_min)
    return (row.key, name, avail, sla, _minutes(row.down_min), str(row.outages), mttr, pages)


def event_time(t: float, now: float, tz: ZoneInfo) -> str:
    """`14:02:07` today, `03-12 14:02` on an earlier day (stored events can be weeks old)."""
    when = datetime.fromtimestamp(t, tz)
    if when.date() == datetime.fromtimestamp(now, tz).date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%m-%d %H:%M")


def local_today(now: float, tz: ZoneInfo) -> date:
    """The local date of a UTC epoch."""
    return datetime.fromtimestamp(now, tz).date()
