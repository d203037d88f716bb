"""Quick reads for the dashboard: sparklines, recent events, a site's recent uptime.

Each call opens its own read-only store (SQLite: a connection WAL lets run beside the writer; PostgreSQL:
one borrowed from the process's pool) and closes it, so a screen can call these from a worker thread
without sharing a connection or waiting on the collector.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bibnet_ops.accounting import SITE_CATEGORY, account, coverage, normalize, timeline
from bibnet_ops.store._api import HistoryStore
from bibnet_ops.store._maintenance import window_intervals
from bibnet_ops.store._open import StoreLike, StoreTarget, open_store, resolve_store

if TYPE_CHECKING:
    from bibnet_ops.inventory._model import Inventory

__all__ = ["HistoryEvent", "HistoryReader", "SiteUptime"]


@dataclass(frozen=True)
class HistoryEvent:
    """A check or site state change, newest first in `recent_events`."""

    time: float
    subject: str  # check id, or site id for a site status change
    old: str
    new: str
    hard: bool
    reason: str
    site: bool = False


@dataclass(frozen=True)
class SiteUptime:
    """A site's availability over the last hours (24x7), with what could not be counted."""

    site_id: str
    hours: float
    availability_pct: float | None
    down_min: float
    unknown_min: float
    unreachable_min: float
    outages: int


class HistoryReader:
    """Read-only access to the history store for screens."""

    def __init__(self, store: StoreLike) -> None:
        self.target: StoreTarget = resolve_store(store)
        self.path = self.target.path

    @contextmanager
    def _store(self) -> Iterator[HistoryStore]:
        store = open_store(self.target, readonly=True)
        try:
            yield store
        finally:
            store.close()

    def sparkline(
        self, check_id: str, since: float, until: float | None = None, points: int = 60, field: str = "latency"
    ) -> list[float | None]:
        """`points` values evenly spread over [since, until): mean latency (s) or mean value per slot.

        Uses minute rollups for spans up to a day, hourly ones up to 30 days, daily ones beyond;
        a slot without data is None (draw it as a gap, not as zero).
        """
        until = time.time() if until is None else until
        span = max(until - since, 1.0)
        tier = "minute" if span <= 86400 else "hour" if span <= 30 * 86400 else "day"
        sums = [0.0] * points
        counts = [0] * points
        with self._store() as store:
            for r in store.rollups(tier, since, until, [check_id]):
                value = r.latency_avg if field == "latency" else r.value_avg
                if value is None:
                    continue
                slot = min(points - 1, int((r.start - since) / span * points))
                weight = max(r.count, 1)
                sums[slot] += value * weight
                counts[slot] += weight
        return [s / c if c else None for s, c in zip(sums, counts, strict=True)]

    def recent_events(self, limit: int = 50, site_id: str | None = None) -> list[HistoryEvent]:
        """Newest check and site state changes (hard and soft), for the whole network or one site."""
        with self._store() as store:
            checks = [
                HistoryEvent(t.time, t.check_id, t.old, t.new, t.hard, t.reason)
                for t in store.recent_transitions(limit, site_id)
            ]
            sites = [
                HistoryEvent(s.time, s.site_id, s.old, s.new, True, s.reason, site=True)
                for s in store.recent_site_transitions(limit, site_id)
            ]
        return sorted([*checks, *sites], key=lambda e: -e.time)[:limit]

    def site_uptime(
        self, inventory: Inventory, site_id: str, hours: float = 24.0, now: float | None = None
    ) -> SiteUptime:
        """A site's 24x7 availability over the last `hours` (24 h and 30 days on the site screen)."""
        now = time.time() if now is None else now
        since = now - hours * 3600
        site = inventory.sites[site_id]
        with self._store() as store:
            changes = [(t.time, t.new) for t in store.site_transitions(since, now, [site_id])]
            covered = coverage(store.runs(since, now), now)
            excluded = normalize(
                span
                for w in store.maintenance_windows(since, now)
                if w.exclude_from_sla and w.applies_to(site_id, site.region)
                for span in window_intervals(w, since, now)
            )
        figures = account(timeline(changes, since, now, SITE_CATEGORY), [(since, now)], excluded, covered, since, now)
        ratio = figures.ratio
        return SiteUptime(
            site_id,
            hours,
            None if ratio is None else 100.0 * ratio,
            figures.down / 60,
            figures.unknown / 60,
            figures.unreachable / 60,
            len(figures.outages),
        )
