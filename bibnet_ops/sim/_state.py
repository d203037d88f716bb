"""What each simulated device "is" at a given moment, computed from time rather than ticked.

A scanner's page counter is the integral of an opening-hours-dependent rate, a switch's interface
counters grow from its boot time, and a catalogue's OAI-PMH records get datestamps as cataloguers add
them. Faults change a state by settling it at the current time and flipping a flag, so idle endpoints
cost nothing between requests.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from zoneinfo import ZoneInfo

from bibnet_ops.model import OpeningHours

__all__ = ["AgentState", "CatalogueState", "OpeningClock", "ScannerState", "SwitchState"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
COUNTER32 = 2**32


class OpeningClock:
    """Answers "how many seconds was the library open between t0 and t1" for one site's hours."""

    def __init__(self, hours: OpeningHours, always_open: bool = False) -> None:
        self.hours = hours
        self.always_open = always_open
        try:
            self.tz: timezone | ZoneInfo = ZoneInfo(hours.timezone)
        except Exception:
            # Algeria has kept UTC+1 without daylight saving since 1981.
            self.tz = timezone(timedelta(hours=1))
        self._days = {d.lower()[:3] for d in hours.days}
        self._holidays = set(hours.holidays)

    def _window(self, day: date) -> tuple[float, float] | None:
        if _DAYS[day.weekday()] not in self._days or day.isoformat() in self._holidays:
            return None
        start = datetime.combine(day, self.hours.open, self.tz).timestamp()
        end = datetime.combine(day, self.hours.close, self.tz).timestamp()
        return (start, end) if end > start else None

    def open_seconds(self, t0: float, t1: float) -> float:
        """Seconds of opening time within [t0, t1]."""
        if t1 <= t0:
            return 0.0
        if self.always_open:
            return t1 - t0
        day = datetime.fromtimestamp(t0, self.tz).date()
        last = datetime.fromtimestamp(t1, self.tz).date()
        total = 0.0
        while day <= last:
            window = self._window(day)
            if window:
                total += max(0.0, min(t1, window[1]) - max(t0, window[0]))
            day += timedelta(days=1)
        return total

    def is_open(self, t: float) -> bool:
        if self.always_open:
            return True
        window = self._window(datetime.fromtimestamp(t, self.tz).date())
        return bool(window and window[0] <= t < window[1])


@dataclass
class AgentState:
    """The system group every SNMP agent answers: description, name, uptime since boot."""

    descr: str
    name: str
    location: str
    object_id: str
    boot_time: float
    contact: str = "DSI <dsi@bibnet.dz>"

    def uptime_ticks(self, now: float) -> int:
        """sysUpTime in hundredths of a second, wrapping like TimeTicks does."""
        return int(max(0.0, now - self.boot_time) * 100) % COUNTER32

    def reboot(self, at: float) -> None:
        self.boot_time = at


class ScannerState:
    """A book scanner's Printer-MIB lifetime page counter (prtMarkerLifeCount, a Counter32)."""

    def __init__(self, clock: OpeningClock, rng: random.Random, now: float) -> None:
        self.clock = clock
        self.rate = rng.uniform(120.0, 300.0)  # pages per hour while the library is open
        self.count = float(rng.randint(40_000, 2_500_000))
        self.last = now
        self.idle = 0  # number of active scanner_idle faults

    def settle(self, now: float) -> None:
        """Fold the pages scanned up to `now` into the stored count."""
        if not self.idle:
            self.count += self.rate * self.clock.open_seconds(self.last, now) / 3600.0
        self.last = max(self.last, now)

    def total(self, now: float) -> float:
        if self.idle:
            return self.count
        return self.count + self.rate * self.clock.open_seconds(self.last, now) / 3600.0

    def pages(self, now: float) -> int:
        """The counter as an SNMP manager reads it: wrapping at 2^32."""
        return int(self.total(now)) % COUNTER32

    def set_idle(self, now: float, idle: bool) -> None:
        self.settle(now)
        self.idle = max(0, self.idle + (1 if idle else -1))

    def near_wrap(self, now: float, margin: int) -> None:
        """Move the counter to `margin` pages below 2^32 so it wraps soon."""
        self.settle(now)
        self.count += (COUNTER32 - margin) - (int(self.count) % COUNTER32)


IF_NAMES = ("uplink", "lan1", "lan2", "lan3", "lan4")


class SwitchState:
    """A switch's IF-MIB interfaces; octet and error counters grow from boot time."""

    def __init__(self, rng: random.Random) -> None:
        self.names = IF_NAMES
        self.octet_rates = [rng.uniform(2e5, 2e6)] + [rng.uniform(1e3, 2e5) for _ in IF_NAMES[1:]]
        # Error rates per second: a clean uplink sees a handful per day.
        self.error_rates = [rng.uniform(0, 5) / 86400 for _ in IF_NAMES]
        self.oper = [1] * len(IF_NAMES)

    def in_octets(self, i: int, up_s: float) -> int:
        return int(self.octet_rates[i] * up_s) % COUNTER32

    def out_octets(self, i: int, up_s: float) -> int:
        return int(self.octet_rates[i] * 0.4 * up_s) % COUNTER32

    def in_errors(self, i: int, up_s: float) -> int:
        return int(self.error_rates[i] * up_s) % COUNTER32


_TITLES = (
    "Histoire de l'Algérie contemporaine", "Les poètes du Maghreb", "Dictionnaire des wilayas",
    "تاريخ الجزائر الحديث", "ديوان الشعر الملحون", "Contes populaires de Kabylie",
    "Introduction à la bibliothéconomie", "Atlas du Sahara", "مدخل إلى علم المكتبات",
    "La guerre de libération nationale", "Architecture de la Casbah", "رحلة ابن بطوطة",
)
_AUTHORS = ("Kateb Yacine", "Assia Djebar", "Mohammed Dib", "مالك بن نبي", "Mouloud Feraoun",
            "أحلام مستغانمي", "Rachid Mimouni", "عبد الحميد بن هدوقة")


class CatalogueState:
    """A Koha catalogue's bibliographic records as its OAI-PMH provider lists them.

    Records get ascending datestamps as cataloguers add or edit them (a few per hour at any time:
    holdings updates touch records overnight too). A stalled sync stops datestamps advancing and may
    hide the records of the last `lag` seconds, so the lag a harvester sees starts high and grows.

    `records` sizes the catalogue at start: past a few hundred its records are implicit, evenly spread
    over the year before the start (record i's datestamp is computed, not stored), so a repository of a
    million records costs no more memory than one of two hundred; records catalogued after the start
    are stored as they come.
    """

    FIRST_BIBLIO = 1000
    IMPLICIT_FROM = 1000  # catalogues at least this large keep their initial records implicit

    def __init__(self, rng: random.Random, now: float, initial: int = 200) -> None:
        self.rng = rng
        self.interval = rng.uniform(600.0, 2400.0)  # mean seconds between record changes
        span = 365 * 86400
        self.implicit = initial if initial >= self.IMPLICIT_FROM else 0
        self.step, self.first = 0.0, 0.0
        if self.implicit:
            self.datestamps = array("d")
            self.step = span / (self.implicit - 1)
            self.first = now - rng.uniform(5, self.interval) - span
        else:
            self.datestamps = array("d", sorted(now - rng.uniform(60, span) for _ in range(initial)))
            self.datestamps[-1] = now - rng.uniform(5, self.interval)
        self.next_time = now + rng.expovariate(1.0 / self.interval)
        self.stalled = 0
        self.cutoff: float | None = None  # records newer than this are hidden while stalled

    def settle(self, now: float) -> None:
        """Add the records catalogued up to `now` (none while the sync is stalled)."""
        while self.next_time <= now:
            if not self.stalled:
                self.datestamps.append(self.next_time)
            self.next_time += self.rng.expovariate(1.0 / self.interval)

    def set_stalled(self, now: float, stalled: bool, lag: float = 0.0) -> None:
        self.settle(now)
        self.stalled = max(0, self.stalled + (1 if stalled else -1))
        if stalled and lag > 0:
            cutoff = now - lag
            self.cutoff = cutoff if self.cutoff is None else min(self.cutoff, cutoff)
        elif not self.stalled:
            self.cutoff = None

    def stamp(self, index: int) -> float:
        """Datestamp of the index-th record (oldest first)."""
        if index < self.implicit:
            return self.first + index * self.step
        return self.datestamps[index - self.implicit]

    def _left(self, t: float) -> int:
        """Number of records older than `t`."""
        if self.implicit and t <= self.stamp(self.implicit - 1):
            k = min(max(int((t - self.first) / self.step), 0), self.implicit - 1)
            # the division's rounding is settled against the very datestamps the provider lists
            while k > 0 and self.stamp(k - 1) >= t:
                k -= 1
            while k < self.implicit and self.stamp(k) < t:
                k += 1
            return k
        return self.implicit + bisect_left(self.datestamps, t)

    def _right(self, t: float) -> int:
        """Number of records at or before `t`."""
        if self.implicit and t < self.stamp(self.implicit - 1):
            return self._left(t) + (1 if t >= self.first and self.stamp(self._left(t)) == t else 0)
        return self.implicit + bisect_right(self.datestamps, t)

    def _total(self) -> int:
        return self.implicit + len(self.datestamps)

    def _visible(self) -> int:
        if self.cutoff is None:
            return self._total()
        return max(1, self._right(self.cutoff))

    def count(self, now: float) -> int:
        self.settle(now)
        return self._visible()

    def newest(self, now: float) -> float:
        self.settle(now)
        return self.stamp(self._visible() - 1)

    def earliest(self) -> float:
        return self.stamp(0)

    def select(self, now: float, since: float | None, until: float | None) -> tuple[int, int]:
        """Index range [lo, hi) of records whose datestamp lies within [since, until]."""
        self.settle(now)
        lo = 0 if since is None else self._left(since)
        hi = self._visible()
        if until is not None:
            hi = min(hi, self._right(until))
        return lo, max(lo, hi)

    def record(self, index: int) -> tuple[int, float, str, str, int]:
        """(biblionumber, datestamp, title, author, year) of the index-th record."""
        title = _TITLES[(index * 7) % len(_TITLES)]
        author = _AUTHORS[(index * 5) % len(_AUTHORS)]
        return self.FIRST_BIBLIO + index, self.stamp(index), title, author, 1950 + (index * 13) % 75


def opening_hours_default() -> OpeningHours:
    """Sat-Wed 08:30-17:00 in Africa/Algiers, the network's usual hours."""
    return OpeningHours(open=dtime(8, 30), close=dtime(17, 0))
