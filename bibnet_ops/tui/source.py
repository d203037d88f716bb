"""Where the dashboard's events come from: the `EventSource` protocol and two in-process sources (no Textual).

The shipped commands use `bibnet_ops.remote.CollectorProcess` (the collector in a child process). An
`EventBuffer` serves an engine in this process: the engine calls the subscriber from its own thread or loop,
the callback only appends to a deque (cheap, never blocks the engine), and the app drains the deque on its
refresh timer, so a burst of events costs one redraw. `StaticSource` is a still picture for snapshots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from bibnet_ops.engine import Evidence
from bibnet_ops.events import Sample

__all__ = ["EventBuffer", "EventSource", "HealthFigures", "PollHealth", "StaticSource"]


@dataclass(frozen=True)
class PollHealth:
    """How well the collector keeps up: checks completed per second, scheduling lag, age of the last poll."""

    checks_per_second: float = 0.0
    lag: float = 0.0
    last_poll_age: float | None = None


class HealthFigures(Protocol):
    """The poll-health figures the header shows (`PollHealth` here, or the engine's own)."""

    @property
    def checks_per_second(self) -> float: ...

    @property
    def lag(self) -> float: ...

    @property
    def last_poll_age(self) -> float | None: ...


class EventSource(Protocol):
    """What the dashboard needs from whatever runs the checks."""

    def drain(self) -> list[object]:
        """Events received since the last call, oldest first."""
        ...

    def poll_health(self) -> HealthFigures | None:
        """Current poll-health figures, or None when unknown."""
        ...

    def poll_now(self, pattern: str) -> bool:
        """Ask for the checks matching `site[/device[/check]]` to run now; False if it cannot."""
        ...

    def collector_stopped(self) -> str | None:
        """Why the collector no longer runs (shown as a badge), or None while it starts or runs."""
        ...

    def events_dropped(self) -> int:
        """Events lost so far because the screen fell behind (the states among them are sent again)."""
        ...

    def evidence(self, check_id: str) -> Future[Evidence]:
        """The raw reply the check's last result was judged on, fetched on demand (never streamed)."""
        ...


def _done(value: Evidence) -> Future[Evidence]:
    future: Future[Evidence] = Future()
    future.set_result(value)
    return future


class EventBuffer:
    """A bounded, thread-safe queue of engine events with the `EventSource` reading side.

    Args:
        limit: events kept when the screen falls behind (the oldest are dropped, then `resync` is called).
        health: a callable returning poll-health figures.
        poll_now: a callable asking the engine to run checks now.
        stopped: a callable saying why the engine no longer runs (None while it runs).
        resync: called by `drain` after events were dropped, to have every current state sent again.
        evidence: a callable returning a check's last raw reply (the engine's `evidence`).
    """

    def __init__(
        self,
        limit: int = 200_000,
        health: Callable[[], PollHealth | None] | None = None,
        poll_now: Callable[[str], bool] | None = None,
        stopped: Callable[[], str | None] | None = None,
        resync: Callable[[], None] | None = None,
        evidence: Callable[[str], Evidence] | None = None,
    ) -> None:
        self._events: deque[object] = deque(maxlen=limit)
        self._evidence = evidence
        self._health = health
        self._poll_now = poll_now
        self._stopped = stopped
        self._resync = resync
        self.received = 0
        self.dropped = 0
        self._dropped_seen = 0

    def __call__(self, event: object) -> None:
        """The engine subscriber: record the event and return at once."""
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self.received += 1

    def drain(self) -> list[object]:
        out = []
        popleft = self._events.popleft
        # popleft on a deque is atomic, so the engine may keep appending while we drain.
        for _ in range(len(self._events)):
            try:
                out.append(popleft())
            except IndexError:
                break
        if self.dropped > self._dropped_seen and self._resync is not None:
            self._dropped_seen = self.dropped
            self._resync()
        return out

    def poll_health(self) -> PollHealth | None:
        return self._health() if self._health is not None else None

    def poll_now(self, pattern: str) -> bool:
        return self._poll_now(pattern) if self._poll_now is not None else False

    def collector_stopped(self) -> str | None:
        return self._stopped() if self._stopped is not None else None

    def events_dropped(self) -> int:
        return self.dropped

    def evidence(self, check_id: str) -> Future[Evidence]:
        if self._evidence is None:
            future: Future[Evidence] = Future()
            future.set_exception(LookupError("no engine to ask"))
            return future
        return _done(self._evidence(check_id))


class StaticSource:
    """A source with fixed events and figures, for snapshots and screenshots that must not move."""

    def __init__(
        self, events: list[object] | None = None, health: PollHealth | None = None, stopped: str | None = None
    ) -> None:
        self._events = list(events or [])
        self._last: dict[str, Sample] = {}
        self._health = health
        self.stopped = stopped
        self.dropped = 0
        self.polled: list[str] = []

    def drain(self) -> list[object]:
        out, self._events = self._events, []
        for event in out:
            if isinstance(event, Sample):
                self._last[event.check_id] = event
        return out

    def poll_health(self) -> PollHealth | None:
        return self._health

    def poll_now(self, pattern: str) -> bool:
        self.polled.append(pattern)
        return True

    def collector_stopped(self) -> str | None:
        return self.stopped

    def events_dropped(self) -> int:
        return self.dropped

    def evidence(self, check_id: str) -> Future[Evidence]:
        last = self._last.get(check_id)
        if last is None:
            return _done(Evidence(check_id, ""))
        return _done(Evidence(check_id, "", last.status, last.reason, last.time, last.evidence, value=last.value))
