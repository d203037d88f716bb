"""Per-minute, hourly and daily rollups of samples: the aggregate, its buckets and the accumulator.

A rollup keeps count, failures, latency min/avg/max (integer milliseconds), value min/avg/max/last
and the sum of counter increments (pages scanned, for a scanner's lifetime page counter).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from bibnet_ops.model import CheckStatus, Sample

__all__ = ["COUNTER_KEYS", "Agg", "RollupAccumulator", "bucket_of", "bucket_start"]

# Keys of Sample.values holding a lifetime counter whose increments are summed (pages scanned).
COUNTER_KEYS = ("total", "pages_total")
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def bucket_of(tier: str, t: float, tz: str = "Africa/Algiers") -> int:
    """Bucket number of a UTC time: epoch minutes, epoch hours, or local days since 1970-01-01."""
    if tier == "minute":
        return int(t // 60)
    if tier == "hour":
        return int(t // 3600)
    local = datetime.fromtimestamp(t, _zone(tz))
    return local.date().toordinal() - _EPOCH_ORDINAL


def bucket_start(tier: str, bucket: int, tz: str = "Africa/Algiers") -> float:
    """UTC epoch seconds at which a bucket begins (local midnight for days)."""
    if tier == "minute":
        return bucket * 60.0
    if tier == "hour":
        return bucket * 3600.0
    day = datetime.fromordinal(bucket + _EPOCH_ORDINAL)
    return day.replace(tzinfo=_zone(tz)).astimezone(UTC).timestamp()


def bucket_end(tier: str, bucket: int, tz: str = "Africa/Algiers") -> float:
    return bucket_start(tier, bucket + 1, tz)


@dataclass
class Agg:
    """Mergeable aggregate of samples; `to_row`/`from_row` give its compact database form."""

    n: int = 0
    failures: int = 0
    lat_n: int = 0
    lat_min: int | None = None
    lat_sum: int = 0
    lat_max: int | None = None
    v_n: int = 0
    v_min: float | None = None
    v_sum: float = 0.0
    v_max: float | None = None
    v_last: float | None = None
    delta: float | None = None

    def add(self, status: CheckStatus, latency: float | None, value: float | None, delta: float | None) -> None:
        """Fold one sample in (latency in seconds, kept as whole milliseconds)."""
        self.n += 1
        if status is CheckStatus.CRITICAL or status is CheckStatus.UNKNOWN:
            self.failures += 1
        if latency is not None and math.isfinite(latency):
            ms = round(latency * 1000)
            self.lat_n += 1
            self.lat_sum += ms
            self.lat_min = ms if self.lat_min is None else min(self.lat_min, ms)
            self.lat_max = ms if self.lat_max is None else max(self.lat_max, ms)
        if value is not None and math.isfinite(value):
            self.v_n += 1
            self.v_sum += value
            self.v_min = value if self.v_min is None else min(self.v_min, value)
            self.v_max = value if self.v_max is None else max(self.v_max, value)
            self.v_last = value
        if delta is not None:
            self.delta = (self.delta or 0.0) + delta

    def merge(self, later: Agg) -> None:
        """Fold in an aggregate of samples taken after this one's."""
        self.n += later.n
        self.failures += later.failures
        self.lat_n += later.lat_n
        self.lat_sum += later.lat_sum
        self.lat_min = _pick(min, self.lat_min, later.lat_min)
        self.lat_max = _pick(max, self.lat_max, later.lat_max)
        self.v_n += later.v_n
        self.v_sum += later.v_sum
        self.v_min = _pick(min, self.v_min, later.v_min)
        self.v_max = _pick(max, self.v_max, later.v_max)
        if later.v_last is not None:
            self.v_last = later.v_last
        if later.delta is not None:
            self.delta = (self.delta or 0.0) + later.delta

    def to_row(self) -> tuple[object, ...]:
        """Columns n .. delta in their compact form.

        Counts equal to n are NULL; min/max/last are NULL when a single value stands for them;
        values are kept in thousandths so SQLite stores them as small integers, not 8-byte floats.
        """
        one_lat = self.lat_n <= 1
        one_v = self.v_n <= 1
        return (
            self.n,
            self.failures,
            None if self.lat_n == self.n else self.lat_n,
            None if one_lat else self.lat_min,
            self.lat_sum if self.lat_n else None,
            None if one_lat else self.lat_max,
            None if self.v_n == self.n else self.v_n,
            None if one_v else _milli(self.v_min),
            _milli(self.v_sum) if self.v_n else None,
            None if one_v else _milli(self.v_max),
            None if one_v else _milli(self.v_last),
            self.delta,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Agg:
        """Inverse of `to_row`."""
        n, failures, lat_n, lat_min, lat_sum, lat_max, v_n, v_min, v_sum, v_max, v_last, delta = row
        agg = cls(n=int(n), failures=int(failures), lat_sum=int(lat_sum or 0))
        agg.lat_n = agg.n if lat_n is None else int(lat_n)
        agg.v_n = agg.n if v_n is None else int(v_n)
        one_lat = agg.lat_sum if agg.lat_n == 1 else None
        agg.lat_min = int(lat_min) if lat_min is not None else one_lat
        agg.lat_max = int(lat_max) if lat_max is not None else one_lat
        agg.v_sum = _unmilli(v_sum) or 0.0
        one_v = agg.v_sum if agg.v_n == 1 else None
        agg.v_min = _unmilli(v_min) if v_min is not None else one_v
        agg.v_max = _unmilli(v_max) if v_max is not None else one_v
        agg.v_last = _unmilli(v_last) if v_last is not None else one_v
        agg.delta = delta
        return agg


def _milli(value: float | None) -> float | None:
    """A value in thousandths, rounded: integral, so SQLite writes it as a 1-6 byte integer."""
    return None if value is None else float(round(value * 1000))


def _unmilli(value: float | None) -> float | None:
    return None if value is None else float(value) / 1000.0


def _pick(func: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """min/max that ignores a missing side."""
    if a is None:
        return b
    if b is None:
        return a
    return func(a, b)


class RollupAccumulator:
    """Turns a stream of samples into pending rollups for the three tiers.

    Minute rollups are emitted once their minute is over (plus a grace period for late samples);
    hour and day rollups are emitted as partial aggregates at every drain and merged by the store,
    so that a crash loses at most the samples since the last commit.
    """

    def __init__(self, tz: str = "Africa/Algiers", grace: float = 5.0) -> None:
        self.tz = tz
        self.grace = grace
        self._open_minutes: dict[tuple[str, int], Agg] = {}
        self._pending: dict[tuple[str, str, int], Agg] = {}
        self._counters: dict[str, float] = {}
        self.counters_changed: dict[str, float] = {}

    def seed_counters(self, counters: dict[str, float]) -> None:
        """Counter values remembered from an earlier run, so that increments across a restart count."""
        self._counters.update(counters)

    def add(self, sample: Sample) -> None:
        t = sample.time or 0.0
        delta = self._delta(sample)
        minute = bucket_of("minute", t)
        self._open_minutes.setdefault((sample.check_id, minute), Agg()).add(
            sample.status, sample.latency, sample.value, delta
        )
        for tier in ("hour", "day"):
            key = (tier, sample.check_id, bucket_of(tier, t, self.tz))
            self._pending.setdefault(key, Agg()).add(sample.status, sample.latency, sample.value, delta)

    def _delta(self, sample: Sample) -> float | None:
        for key in COUNTER_KEYS:
            total = sample.values.get(key)
            if total is None:
                continue
            previous = self._counters.get(sample.check_id)
            self._counters[sample.check_id] = total
            self.counters_changed[sample.check_id] = total
            if previous is None:
                return 0.0
            # a counter that went down was reset (device restarted): it counted up from zero since
            return total - previous if total >= previous else total
        return None

    def drain(self, now: float, everything: bool = False) -> list[tuple[str, str, int, Agg]]:
        """Pending rollups as (tier, check_id, bucket, agg); closes minutes older than the grace period."""
        out = [(tier, check, bucket, agg) for (tier, check, bucket), agg in self._pending.items()]
        self._pending.clear()
        limit = bucket_of("minute", now - self.grace)
        for key in [k for k in self._open_minutes if everything or k[1] < limit]:
            out.append(("minute", key[0], key[1], self._open_minutes.pop(key)))
        return out
