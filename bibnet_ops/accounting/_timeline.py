"""Category timelines from state changes: a check's, and a device's as the worst of its checks'.

These are the rules that turn hard states into up/down/unknown time. The store keeps each device's
worst-of timeline as it records transitions (store/_device_spans.py) and the reports account the same
timelines, so the rules live here, below both.
Times may be seconds (floats) or integer milliseconds: the functions only compare and copy them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

__all__ = [
    "CHECK_CATEGORY",
    "DOWN",
    "MAINTENANCE",
    "RANK",
    "UNKNOWN",
    "UNREACHABLE",
    "UP",
    "Segment",
    "timeline",
    "worst_of",
]

UP, DOWN, UNKNOWN, UNREACHABLE, MAINTENANCE = "up", "down", "unknown", "unreachable", "maintenance"
CHECK_CATEGORY = {"OK": UP, "WARNING": UP, "CRITICAL": DOWN, "UNKNOWN": UNKNOWN}
# worst first: down beats up beats unreachable/maintenance beats unknown
RANK = {DOWN: 0, UP: 1, UNREACHABLE: 2, MAINTENANCE: 3, UNKNOWN: 4}

Segment = tuple[float, float, str]


def timeline(changes: Sequence[tuple[Any, str]], since: Any, until: Any, mapping: Mapping[str, str]) -> list[Segment]:
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


def worst_of(
    changes: Sequence[Sequence[tuple[Any, str, str]]], since: Any, until: Any, mapping: Mapping[str, str]
) -> list[Segment]:
    """The worst-of timeline of several checks (a device), in one sweep over their state changes.

    Equal to combining each check's `timeline` segment by segment (`_uptime.combine`).

    Args:
        changes: per check, its time-ordered (time, new state, reason) changes as `timeline` takes them.
    """
    if len(changes) == 1:
        return timeline([(c[0], c[1]) for c in changes[0]], since, until, mapping)
    counts = dict.fromkeys(RANK, 0)
    events: list[tuple[Any, str, str]] = []  # (time, category left, category entered)
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

    def worst() -> str:  # the order of RANK
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
