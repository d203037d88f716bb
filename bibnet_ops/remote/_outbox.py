"""The child's side of the socket: a bounded outbox the engine fills and a sender thread that empties it.

The engine's subscriber only appends under a lock, so a dashboard that stops reading (suspended, busy,
gone) can never block polling: the outbox keeps at most `limit` events, drops the oldest beyond that and
counts them, and remembers whether a state event was lost so the collector can send a fresh snapshot.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from bibnet_ops.engine import PollHealth
from bibnet_ops.model import Sample
from bibnet_ops.remote._protocol import Batch

__all__ = ["Outbox", "Sender"]

log = logging.getLogger(__name__)


class Outbox:
    """Events, the latest poll health and other messages waiting for the sender thread.

    Args:
        limit: events held at most; beyond it the oldest are dropped.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._events: deque[object] = deque()
        self._messages: list[object] = []
        self._health: PollHealth | None = None
        self.dropped = 0
        self.lost_state = False
        self.closed = False
        self.wake = threading.Event()

    def event(self, event: object) -> None:
        """The engine subscriber: queue one event, dropping the oldest if the dashboard is behind."""
        if type(event) is Sample and event.evidence:
            # Raw replies stay in the engine: the dashboard asks for one check's when a technician wants it.
            event = dataclasses.replace(event, evidence="")
        with self._lock:
            if not self.closed:
                self._append(event)

    def close(self) -> None:
        """Forget queued events and take no more (the collector is stopping); messages still go."""
        with self._lock:
            self.closed = True
            self._events.clear()

    def extend(self, events: list[object]) -> None:
        with self._lock:
            for event in events:
                self._append(event)

    def _append(self, event: object) -> None:
        if len(self._events) >= self.limit:
            old = self._events.popleft()
            self.dropped += 1
            if not isinstance(old, Sample):
                self.lost_state = True
        self._events.append(event)

    def health(self, health: PollHealth) -> None:
        with self._lock:
            self._health = health

    def message(self, message: object) -> None:
        """Queue a message (Ready, Reply, Stopped...) and wake the sender for it."""
        with self._lock:
            self._messages.append(message)
        self.wake.set()

    def take(self) -> tuple[Batch | None, list[object]]:
        """Everything queued: one batch of events (None when there is nothing new) and the other messages."""
        with self._lock:
            events, self._events = self._events, deque()
            messages, self._messages = self._messages, []
            health, self._health = self._health, None
            dropped = self.dropped
        batch = Batch(list(events), dropped, health) if events or health is not None else None
        return batch, messages


class Sender:
    """A thread sending the outbox every `interval` seconds; blocking on a full socket stalls only itself.

    Args:
        conn: the child's end of the socket.
        outbox: what to send.
        interval: seconds between batches.
        after_send: called (on the sender thread) after each successful send, e.g. to schedule a resync.
    """

    def __init__(
        self, conn: Connection, outbox: Outbox, interval: float, after_send: Callable[[], None] | None = None
    ) -> None:
        self.conn = conn
        self.outbox = outbox
        self.interval = interval
        self.after_send = after_send
        self.broken = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="bibnet-collector-sender", daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            self.outbox.wake.wait(self.interval)
            self.outbox.wake.clear()
            closing = self._closing
            batch, messages = self.outbox.take()
            # Events first: a Reply or Stopped must not overtake the events that preceded it.
            if not self._send([batch, *messages] if batch is not None else messages):
                return
            if closing:
                return

    def _send(self, items: list[Any]) -> bool:
        if not items:
            return True
        try:
            for item in items:
                self.conn.send(item)
        except (OSError, EOFError, ValueError):  # the dashboard is gone: nothing more to say
            self.broken = True
            return False
        if self.after_send is not None:
            self.after_send()
        return True

    def begin_close(self) -> None:
        """Send what is queued, then end the thread; returns at once (see `close`)."""
        self._closing = True
        self.outbox.wake.set()

    def close(self, timeout: float) -> None:
        """Send what is queued, then end the thread (waiting at most `timeout` seconds)."""
        self.begin_close()
        if self._thread.is_alive():
            self._thread.join(timeout)
