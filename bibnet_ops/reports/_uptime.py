"""Availability from state transitions, weighted by time, under the accounting rules in `RULES`.

`RULES` is written into every report, so that the figures can be checked by whoever reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from operator import itemgetter

from bibnet_ops.reports._intervals import Span, SpanIndex, intersect, measure, normalize, subtract
from bibnet_ops.store import CollectorRun

__all__ = [
    "CHECK_CATEGORY",
    "DOWN",
    "MAINTENANCE",
    "RULES",
    "SITE_CATEGORY",
    "UNKNOWN",
    "UNREACHABLE",
    "UP",
    "Availability",
    "Basis",
    "OutageSpan",
    "Segment",
    "account",
    "account_on",
    "basis",
    "combine",
    "coverage",
    "timeline",
    "worst_of",
]

UP, DOWN, UNKNOWN, UNREACHABLE, MAINTENANCE = "up", "down", "unknown", "unreachable", "maintenance"
CHECK_CATEGORY = {"OK": UP, "WARNING": UP, "CRITICAL": DOWN, "UNKNOWN": UNKNOWN}
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

Segment = tuple[float, float, str]


def timeline(
    changes: Sequence[tuple[float, str]], since: float, until: float, mapping: Mapping[str, str]
) -> list[Segment]:
    """Category segments covering [since, until) from time-ordered (time, new state) changes.

    Changes at or before `since` set the starting state; without one the start is unknown.
    """
    state, cursor = UNKNOWN, since
    out: list[Segment] = []
    for t, new in changes:
        category = mapping.get(new, UNKNOWN)
        if t <= since:
            state = category
            continue
        if t >= until:
            break
        if category != state:
            out.append((cursor, t, state))
            cursor, state = t, category
    out.append((cursor, until, state))
    return [s for s in out if s[1] > s[0]]


_RANK = {DOWN: 0, UP: 1, UNREACHABLE: 2, MAINTENANCE: 3, UNKNOWN: 4}


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
            if idx[i] < len(tl) and tl[idx[i]][0] <= start and _RANK[tl[idx[i]][2]] < _RANK[best]:
                best = tl[idx[i]][2]
        if out and out[-1][2] == best:
            out[-1] = (out[-1][0], end, best)
        else:
            out.append((start, end, best))
    return out


def worst_of(
    changes: Sequence[Sequence[tuple[float, str, str]]], since: float, until: float, mapping: Mapping[str, str]
) -> list[Segment]:
    """`combine` of each check's `timeline`, in one sweep over the state changes (what a device report needs).

    Args:
        changes: per check, its time-ordered (time, new state, reason) changes as `timeline` takes them.
    """
    if len(changes) == 1:
        return timeline([(c[0], c[1]) for c in changes[0]], since, until, mapping)
    counts = dict.fromkeys(_RANK, 0)
    events: list[tuple[float, str, str]] = []  # (time, category left, category entered)
    for check in changes:
        state = UNKNOWN
        for t, new, _ in check:
            category = mapping.get(new, UNKNOWN)
            if t <= since:
                state = category
                continue
            if t >= until:
                break
            if category != state:
                events.append((t, state, category))
                state = category
        counts[state] += 1
    for _, old, new in events:  # back from each check's last state to its state at `since`
        counts[old] += 1
        counts[new] -= 1
    events.sort(key=itemgetter(0))

    def worst() -> str:  # the order of _RANK
        if counts[DOWN]:
            return DOWN
        if counts[UP]:
            return UP
        if counts[UNREACHABLE]:
            return UNREACHABLE
        return MAINTENANCE if counts[MAINTENANCE] else UNKNOWN

    out: list[Segment] = []
    state, cursor = worst(), since
    i, n = 0, len(events)
    while i < n:
        t = events[i][0]
        while i < n and events[i][0] == t:
            counts[events[i][1]] -= 1
            counts[events[i][2]] += 1
            i += 1
        category = worst()
        if category != state:
            out.append((cursor, t, state))
            cursor, state = t, category
    out.append((cursor, until, state))
    return [s for s in out if s[1] > s[0]]


def coverage(runs: Sequence[CollectorRun], now: float, heartbeat: float = 60.0) -> list[Span]:
    """When a collector was running: each run up to its stop, its last heartbeat, or now if still alive."""
    spans = []
    for run in runs:
        end = run.end
        if run.stopped is None and now - run.heartbeat <= 2 * heartbeat:
            end = now
        spans.append((run.started, end))
    return normalize(spans)


@dataclass(frozen=True)
class OutageSpan:
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
        for name in ("service", "up", "down", "unknown", "unreachable", "maintenance", "status_maintenance"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
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
    """`account` with the basis computed once (many sites share opening hours and coverage)."""
    watched = base.watched
    result = Availability(service=base.service, maintenance=base.maintenance, unknown=base.unknown)
    since = segments[0][0] if segments else until
    for start, end, category in segments:
        seconds = watched.overlap(start, end)
        if category == UP:
            result.up += seconds
        elif category == DOWN:
            result.down += seconds
            if seconds > 0:
                result.outages.append(
                    OutageSpan(start, end, seconds, ongoing=end >= until, started_before=start <= since)
                )
        elif category == UNREACHABLE:
            result.unreachable += seconds
        elif category == MAINTENANCE:
            result.status_maintenance += seconds
        else:
            result.unknown += seconds
    return result
