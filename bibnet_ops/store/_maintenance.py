"""Maintenance windows in time: expanding recurring ones and answering "is site X in maintenance at t?".

`MaintenanceSchedule` is what the engine and alerting use: it reads the windows through its own read
connection, caches them for a few seconds, and answers from memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from bibnet_ops.store._api import MaintenanceWindow, StoreError
from bibnet_ops.store._open import StoreLike, StoreTarget, open_store, resolve_store

__all__ = ["DAY_NAMES", "MaintenanceSchedule", "active_window", "in_maintenance", "window_intervals"]

log = logging.getLogger(__name__)

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hhmm(text: str) -> dtime:
    hours, _, minutes = text.partition(":")
    return dtime(int(hours), int(minutes or 0))


def window_intervals(window: MaintenanceWindow, since: float, until: float) -> list[tuple[float, float]]:
    """UTC intervals during which a window is in force within [since, until)."""
    lo = max(since, window.start)
    hi = min(until, window.end) if window.end is not None else until
    if lo >= hi:
        return []
    if not window.recurring:
        return [(lo, hi)]
    tz = ZoneInfo(window.timezone)
    begin, finish = _hhmm(window.local_start), _hhmm(window.local_end)
    day = datetime.fromtimestamp(lo, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(hi, tz).date()
    out: list[tuple[float, float]] = []
    while day <= last:
        if DAY_NAMES[day.weekday()] in window.days:
            start = datetime.combine(day, begin, tz).timestamp()
            end_day: date = day + timedelta(days=1) if finish <= begin else day
            end = datetime.combine(end_day, finish, tz).timestamp()
            s, e = max(start, lo), min(end, hi)
            if s < e:
                out.append((s, e))
        day += timedelta(days=1)
    return out


def active_window(
    windows: Iterable[MaintenanceWindow], site_id: str, t: float, region: str = ""
) -> MaintenanceWindow | None:
    """The first window covering a site at time t, or None."""
    for window in windows:
        if window.applies_to(site_id, region) and window_intervals(window, t, t + 0.001):
            return window
    return None


class MaintenanceSchedule:
    """Cached view of the store's maintenance windows for the engine and alerting (thread-safe).

    Args:
        path: the history store (a SQLite path, a `postgresql://` URL or a StoreTarget).
        regions: site id -> region id, so that region-wide windows apply to their sites.
        refresh: seconds a read of the windows is reused before reading the store again.
    """

    def __init__(self, path: StoreLike, regions: dict[str, str] | None = None, refresh: float = 15.0) -> None:
        self.target = resolve_store(path)
        self.regions = regions or {}
        self.refresh = refresh
        self._lock = threading.Lock()
        self._windows: list[MaintenanceWindow] = []
        self._loaded_at = float("-inf")

    def windows(self) -> list[MaintenanceWindow]:
        """All windows not yet over, re-read from the store at most every `refresh` seconds."""
        with self._lock:
            if time.monotonic() - self._loaded_at >= self.refresh:
                try:
                    self._windows = _read_windows(self.target, since=time.time() - 86400)
                except StoreError as exc:  # a central store out of reach: the windows known last still hold
                    log.warning("maintenance windows not refreshed: %s", exc)
                self._loaded_at = time.monotonic()
            return self._windows

    def invalidate(self) -> None:
        """Forget the cache (after adding or ending a window in this process)."""
        with self._lock:
            self._loaded_at = float("-inf")

    def active(self, site_id: str, t: float | None = None) -> MaintenanceWindow | None:
        """The window putting a site in maintenance at t (now by default), or None."""
        when = time.time() if t is None else t
        return active_window(self.windows(), site_id, when, self.regions.get(site_id, ""))


def _read_windows(target: StoreTarget, since: float | None = None) -> list[MaintenanceWindow]:
    if target.path is not None and not target.path.exists():
        return []
    store = open_store(target, readonly=True)
    try:
        return store.maintenance_windows(since=since)
    finally:
        store.close()


def in_maintenance(
    path: StoreLike, site_id: str, t: float | None = None, region: str = ""
) -> MaintenanceWindow | None:
    """One-shot answer (opens the store): the window covering a site at t (now by default), or None."""
    when = time.time() if t is None else t
    return active_window(_read_windows(resolve_store(path), since=when - 1), site_id, when, region)
