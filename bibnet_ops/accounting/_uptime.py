"""Availability from state transitions, weighted by time, under the accounting rules in `RULES`.

`RULES` is written into every report, so that the figures can be checked by whoever reads them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple, Protocol

from bibnet_ops.accounting._intervals import Span, SpanIndex, intersect, measure, normalize, subtract
from bibnet_ops.accounting._timeline import (
    DOWN,
    MAINTENANCE,
    RANK,
    UNKNOWN,
    UNREACHABLE,
    UP,
    Segment,
)

__all__ = [
    "RULES",
    "SITE_CATEGORY",
    "Availability",
    "Basis",
    "CollectorRunLike",
    "OutageSpan",
    "account",
    "account_on",
    "basis",
    "combine",
    "coverage",
]

SITE_CATEGORY = {"UP": UP, "DEGRADED": UP, "DOWN": DOWN, "UNREACHABLE": UNREACHABLE, "MAINTENANCE": MAINTENANCE}

RULES = [
    "Only HARD states count; soft states (retries still in progress) never change the figures.",
    "A check is up when OK or WARNING, down when CRITICAL, unknown when UNKNOWN or not yet reported.",
    "A device is down while any of its checks is down, up while none is down and one is up.",
    "A site is up when UP or DEGRADED and down when DOWN. UNREACHABLE (cut off behind a failed parent "
    "site) is counted apart as 'unreachable' and not charged to the site; the parent's outage is. "
    "Time the site reported MAINTENANCE is not charged either.",
    "Only service time counts: the site's opening hours in its local time (Africa/Algiers by default, "
    "holidays excluded), or all the time for a 24x7 report.",
    "Maintenance windows marked 'excluded from SLA' are removed from the service time and listed.",
    "Time when no collector was running is 'unknown' and never counted as up; a state carries over "
    "such a gap, the gap itself does not.",
    "Availability = up / (up + down). Unknown, unreachable and excluded time are shown, not counted.",
    "An outage is a continuous down period; its duration is the down time it charges to the service "
    "time (an outage across a closing time counts once, for its opening-hours part only). MTTR is "
    "the mean of those durations.",
    "Pages digitised = sum of the increments of the scanners' lifetime page counters (pages_per_hour "
    "checks); a counter that goes down (scanner restarted) counts from zero.",
    "Sync lag p95 = 95th percentile of the OAI checks' per-bucket maximum lag (hourly buckets while "
    "kept, daily beyond), the bucket size is stated in the report.",
]


def combine(timelines: Sequence[list[Segment]], since: float, until: float) -> list[Segment]:
    """Worst-of timeline (down beats up beats unreachable/maintenance beats unknown), for a device."""
    cuts = sorted({since, until, *(t for tl in timelines for s in tl for t in s[:2] if since < t < until)})
    out: list[Segment] = []
    idx = [0] * len(timelines)
    for start, end in pairwise(cuts):
        best = UNKNOWN
        for i, tl in enumerate(timelines):
            while idx[i] < len(tl) and tl[idx[i]][1] <= start:
                idx[i] += 1
            if idx[i] < len(tl) and tl[idx[i]][0] <= start and RANK[tl[idx[i]][2]] < RANK[best]:
                best = tl[idx[i]][2]
        if out and out[-1][2] == best:
            out[-1] = (out[-1][0], end, best)
        else:
            out.append((start, end, best))
    return out


class CollectorRunLike(Protocol):
    """A period a collector ran, as the store records it (`store.CollectorRun`)."""

    @property
    def started(self) -> float: ...

    @property
    def heartbeat(self) -> float: ...

    @property
    def stopped(self) -> float | None: ...

    @property
    def end(self) -> float: ...


def coverage(runs: Sequence[CollectorRunLike], now: float, heartbeat: float = 60.0) -> list[Span]:
    """When a collector was running: each run up to its stop, its last heartbeat, or now if still alive."""
    spans = []
    for run in runs:
        end = run.end
        if run.stopped is None and now - run.heartbeat <= 2 * heartbeat:
            end = now
        spans.append((run.started, end))
    return normalize(spans)


class OutageSpan(NamedTuple):
    """A continuous down period (wall clock), and the down time it charges to the service period."""

    start: float
    end: float
    charged: float
    ongoing: bool = False
    started_before: bool = False


@dataclass
class Availability:
    """Seconds of each kind within a service period, and the outages in it."""

    service: float = 0.0
    up: float = 0.0
    down: float = 0.0
    unknown: float = 0.0
    unreachable: float = 0.0
    maintenance: float = 0.0  # service time removed by maintenance windows excluded from the SLA
    status_maintenance: float = 0.0  # time the site itself reported MAINTENANCE
    outages: list[OutageSpan] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """up / (up + down), or None when nothing was measured."""
        counted = self.up + self.down
        return self.up / counted if counted > 0 else None

    def add(self, other: Availability) -> None:
        self.service += other.service
        self.up += other.up
        self.down += other.down
        self.unknown += other.unknown
        self.unreachable += other.unreachable
        self.maintenance += other.maintenance
        self.status_maintenance += other.status_maintenance
        self.outages.extend(other.outages)


@dataclass(frozen=True)
class Basis:
    """What a site's service period, exclusions and collector coverage leave to be accounted."""

    service: float
    maintenance: float
    unknown: float
    watched: SpanIndex


def basis(service: list[Span], excluded: list[Span], covered: list[Span]) -> Basis:
    """Service time less excluded maintenance, split into watched (a collector ran) and unknown time."""
    counted = subtract(service, excluded)
    return Basis(
        service=measure(service),
        maintenance=measure(intersect(service, excluded)),
        unknown=measure(subtract(counted, covered)),
        watched=SpanIndex(intersect(counted, covered)),
    )


def account(
    segments: list[Segment],
    service: list[Span],
    excluded: list[Span],
    covered: list[Span],
    since: float,
    until: float,
) -> Availability:
    """Apply the accounting rules to one entity's timeline.

    Args:
        segments: the entity's category timeline over [since, until).
        service: normalized service spans (opening hours or 24x7).
        excluded: normalized maintenance spans excluded from the SLA.
        covered: normalized spans when a collector was running.
    """
    return account_on(segments, basis(service, excluded, covered), until)


def account_on(segments: list[Segment], base: Basis, until: float) -> Availability:
    """`account` with the basis computed once (many sites share opening hours and coverage).

    `SpanIndex.overlap` is inlined (a year by device kind accounts over half a million segments), with
    the same arithmetic in the same order, so the figures are the same to the last bit.
    """
    starts, ends, prefix = base.watched.starts, base.watched.ends, base.watched.prefix
    up = down = unreachable = status_maintenance = 0.0
    unknown = base.unknown
    outages: list[OutageSpan] = []
    since = segments[0][0] if segments else until
    for start, end, category in segments:
        seconds = 0.0
        if end > start and starts:
            first = bisect_right(ends, start)
            last = bisect_left(starts, end)
            if first < last:
                seconds = prefix[last] - prefix[first]
                if start > starts[first]:
                    seconds -= start - starts[first]
                if ends[last - 1] > end:
                    seconds -= ends[last - 1] - end
        if category == UP:
            up += seconds
        elif category == DOWN:
            down += seconds
            if seconds > 0:
                outages.append(OutageSpan(start, end, seconds, end >= until, start <= since))
        elif category == UNREACHABLE:
            unreachable += seconds
        elif category == MAINTENANCE:
            status_maintenance += seconds
        else:
            unknown += seconds
    return Availability(
        service=base.service,
        up=up,
        down=down,
        unknown=unknown,
        unreachable=unreachable,
        maintenance=base.maintenance,
        status_maintenance=status_maintenance,
        outages=outages,
    )
