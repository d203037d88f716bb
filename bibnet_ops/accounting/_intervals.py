"""Arithmetic on sets of half-open time intervals [start, end), kept sorted and disjoint."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import accumulate

__all__ = ["Span", "SpanIndex", "intersect", "measure", "normalize", "subtract", "union"]

Span = tuple[float, float]


def normalize(spans: Iterable[Span]) -> list[Span]:
    """Sort, drop empty spans and merge overlapping or touching ones."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def union(*sets: Iterable[Span]) -> list[Span]:
    return normalize(s for spans in sets for s in spans)


def intersect(a: list[Span], b: list[Span]) -> list[Span]:
    """Intersection of two normalized sets."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: list[Span], b: list[Span]) -> list[Span]:
    """Parts of normalized `a` not in normalized `b`."""
    out: list[Span] = []
    j = 0
    for start, end in a:
        cur = start
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < end:
            out.append((cur, end))
    return out


def measure(spans: Iterable[Span]) -> float:
    """Total length in seconds."""
    return sum(end - start for start, end in spans)


class SpanIndex:
    """A normalized set answering "how much of [start, end) does it cover?" in O(log n)."""

    def __init__(self, spans: list[Span]) -> None:
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]
        self.prefix = [0.0, *accumulate(e - s for s, e in spans)]

    def overlap(self, start: float, end: float) -> float:
        """Length of the intersection of [start, end) with the set."""
        if end <= start or not self.starts:
            return 0.0
        first = bisect_right(self.ends, start)  # first span ending after start
        last = bisect_left(self.starts, end)  # spans before this index start before end
        if first >= last:
            return 0.0
        total = self.prefix[last] - self.prefix[first]
        total -= max(0.0, start - self.starts[first])
        total -= max(0.0, self.ends[last - 1] - end)
        return total
