"""Poll-health figures: how well the scheduler keeps up (checks/s, scheduling lag, last poll age)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["PollHealth", "PollStats"]

WINDOW = 60.0


@dataclass(frozen=True)
class PollHealth:
    """Collector health over the last minute.

    Attributes:
        checks_per_second: polls completed per second over the last minute (or since start if shorter).
        lag_p50: median scheduling lag in seconds (probe start minus due time, slot waits included).
        lag_p99: 99th percentile of the same.
        last_poll_age: seconds since the last poll completed, None before the first.
        in_flight: probes running now.
        queued: polls due but waiting for a concurrency slot.
        completed: polls completed since start.
        timeouts: polls the engine cut off at their timeout since start.
    """

    checks_per_second: float = 0.0
    lag_p50: float = 0.0
    lag_p99: float = 0.0
    last_poll_age: float | None = None
    in_flight: int = 0
    queued: int = 0
    completed: int = 0
    timeouts: int = 0

    @property
    def lag(self) -> float:
        """The figure a one-number display shows: lag p99."""
        return self.lag_p99


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


class PollStats:
    """Counters the scheduler updates on every poll; `figures()` turns them into a `PollHealth`.

    Completions are counted in one-second buckets and lags kept with their time, both pruned to the
    last minute, so recording stays O(1) at tens of thousands of polls per minute.
    """

    def __init__(self, started: float, max_lags: int = 50_000) -> None:
        self.started = started
        self.completed = 0
        self.timeouts = 0
        self.in_flight = 0
        self.queued = 0
        self.last_done: float | None = None
        self._buckets: deque[list[float]] = deque()  # [second, count]
        self._lags: deque[tuple[float, float]] = deque(maxlen=max_lags)

    def record_start(self, now: float, lag: float) -> None:
        self._lags.append((now, max(0.0, lag)))

    def record_done(self, now: float) -> None:
        self.completed += 1
        self.last_done = now
        second = float(int(now))
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([second, 1.0])
            while self._buckets and self._buckets[0][0] < now - WINDOW:
                self._buckets.popleft()

    def figures(self, now: float) -> PollHealth:
        """Summarise the last minute as seen at monotonic time `now`."""
        horizon = now - WINDOW
        done = sum(count for second, count in self._buckets if second >= horizon)
        span = min(WINDOW, max(1e-9, now - self.started))
        while self._lags and self._lags[0][0] < horizon:
            self._lags.popleft()
        lags = sorted(lag for _, lag in self._lags)
        return PollHealth(
            checks_per_second=done / span,
            lag_p50=_percentile(lags, 0.50),
            lag_p99=_percentile(lags, 0.99),
            last_poll_age=None if self.last_done is None else max(0.0, now - self.last_done),
            in_flight=self.in_flight,
            queued=self.queued,
            completed=self.completed,
            timeouts=self.timeouts,
        )
