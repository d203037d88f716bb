"""Where the dashboard's events come from: a thread-safe buffer between the engine and the screen.

The engine calls the subscriber callback from its own thread or loop; the callback only appends to a
deque (cheap, never blocks the engine), and the app drains the deque on its refresh timer, so a burst of
events costs one redraw. No Textual here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["EventBuffer", "EventSource", "PollHealth", "StaticSource"]


@dataclass(frozen=True)
class PollHealth:
    """How well the collector keeps up: checks completed per second, scheduling lag, age of the last poll."""

    checks_per_second: float = 0.0
    lag: float = 0.0
    last_poll_age: float | None = None


class EventSource(Protocol):
    """What the dashboard needs from whatever runs the checks."""

    def drain(self) -> list[object]:
        """Events received since the last call, oldest first."""
        ...

    def poll_health(self) -> PollHealth | None:
        """Current poll-health figures, or None when unknown."""
        ...

    def poll_now(self, pattern: str) -> bool:
        """Ask for the checks matching `site[/device[/check]]` to run now; False if it cannot."""
        ...


class EventBuffer:
    """A bounded, thread-safe queue of engine events with the `EventSource` reading side.

    Args:
        limit: events kept when the screen falls behind (the oldest are dropped; the next snapshot heals).
        health: a callable returning poll-health figures.
        poll_now: a callable asking the engine to run checks now.
    """

    def __init__(
        self,
        limit: int = 200_000,
        health: Callable[[], PollHealth | None] | None = None,
        poll_now: Callable[[str], bool] | None = None,
    ) -> None:
        self._events: deque[object] = deque(maxlen=limit)
        self._health = health
        self._poll_now = poll_now
        self.received = 0

    def __call__(self, event: object) -> None:
        """The engine subscriber: record the event and return at once."""
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
        return out

    def poll_health(self) -> PollHealth | None:
        return self._health() if self._health is not None else None

    def poll_now(self, pattern: str) -> bool:
        return self._poll_now(pattern) if self._poll_now is not None else False


class StaticSource:
    """A source with fixed events and figures, for snapshots and screenshots that must not move."""

    def __init__(self, events: list[object] | None = None, health: PollHealth | None = None) -> None:
        self._events = list(events or [])
        self._health = health
        self.polled: list[str] = []

    def drain(self) -> list[object]:
        out, self._events = self._events, []
        return out

    def poll_health(self) -> PollHealth | None:
        return self._health

    def poll_now(self, pattern: str) -> bool:
        self.polled.append(pattern)
        return True
