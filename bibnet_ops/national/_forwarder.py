"""The forwarder: a thread replaying the outbox into the central store, in order, whenever it is reachable.

It never blocks the collector: the history writer only ever writes to the local outbox. When the central
store cannot be reached the forwarder records since when, retries every few seconds, and the outbox
grows; when it is back, the forwarder first drops what the central store already holds (its cursor),
then replays the rest batch by batch, oldest first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bibnet_ops.national._central import Central
from bibnet_ops.national._outbox import Outbox
from bibnet_ops.store import StoreError, StoreUnreachableError

__all__ = ["Forwarder", "ForwarderState"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForwarderState:
    """What the forwarder can say about the central store now.

    Attributes:
        reachable: the last attempt to write to the central store succeeded.
        unreachable_since: UTC epoch seconds of the first failure of the current outage (None when reachable).
        error: the last error, one line (never a password).
        queued_events: transitions, site and flapping changes waiting in the outbox.
        depth: every row waiting in the outbox (rollups and counters too).
        forwarded_rows: rows written to the central store since start.
        last_replay_seconds: from reconnecting after an outage to an empty outbox (None before any).
    """

    reachable: bool
    unreachable_since: float | None
    error: str
    queued_events: int
    depth: int
    forwarded_rows: int
    last_replay_seconds: float | None


class Forwarder:
    """Replays `outbox` into the central store that `connect()` opens (again after each failure).

    Args:
        outbox: the collector's outbox.
        connect: opens the central store (raises StoreError, StoreUnreachableError when the server is away).
        collector_id: recorded with the cursor.
        batch_rows: rows of each kind per central transaction.
        retry: seconds between attempts while the central store is unreachable.
        heartbeat_interval: seconds between heartbeats of the collector run in the central store.
        gate: called with the monotonic time of the last (re)connection; the forwarder replays nothing until
            it returns True (the collector first learns which of its sites were taken over meanwhile).
    """

    def __init__(
        self,
        outbox: Outbox,
        connect: Callable[[], Central],
        *,
        collector_id: str = "",
        batch_rows: int = 5000,
        retry: float = 2.0,
        heartbeat_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
        gate: Callable[[float], bool] | None = None,
    ) -> None:
        self.outbox = outbox
        self._gate = gate
        self._connected_at = 0.0
        self._connect = connect
        self.collector_id = collector_id
        self.key = f"{collector_id or 'collector'}:{outbox.epoch}"
        self.batch_rows = batch_rows
        self.retry = retry
        self.heartbeat_interval = heartbeat_interval
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._central: Central | None = None
        self._forwarded_seq = 0
        self._progress = threading.Condition()
        self.unreachable_since: float | None = None
        self.error = ""
        self.forwarded_rows = 0
        self.last_replay_seconds: float | None = None
        self.last_outage: tuple[float, float] | None = None  # (since, until) of the last outage
        self._replay_from: float | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> Forwarder:
        self._thread = threading.Thread(target=self._run, name="bibnet-forwarder", daemon=True)
        self._thread.start()
        return self

    def nudge(self) -> None:
        """Something was written to the outbox: forward it now rather than at the next tick."""
        self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything in the outbox now is in the central store; False on timeout or outage."""
        target = self.outbox.last_seq
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._progress:
            while self._forwarded_seq < target and not self._stop.is_set():
                if self.outbox.depth() == 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(min(remaining, 0.2))
                self._wake.set()
        return self._forwarded_seq >= target

    def stop(self, timeout: float = 10.0) -> None:
        """Forward what can be forwarded within `timeout`, then stop (the rest waits in the outbox)."""
        if self._thread is None:
            return
        if self.unreachable_since is None:
            self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None

    def state(self) -> ForwarderState:
        return ForwarderState(
            reachable=self.unreachable_since is None and self._central is not None,
            unreachable_since=self.unreachable_since,
            error=self.error,
            queued_events=self.outbox.pending_events(),
            depth=self.outbox.depth(),
            forwarded_rows=self.forwarded_rows,
            last_replay_seconds=self.last_replay_seconds,
        )

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            try:
                if self._central is None:
                    self._central = self._connect()
                    # what a forwarder killed after the central commit left behind: drop it, do not replay it
                    self.outbox.release(self._central.forwarded(self.key))
                    self._connected_at = time.monotonic()
                    self._reconnected()
                if self._gate is not None and not self._gate(self._connected_at):
                    self._wake.wait(0.2)
                    self._wake.clear()
                    continue
                moved = self._forward_some()
                now = self._clock()
                if now >= next_beat:
                    self._central.heartbeat(now)
                    next_beat = now + self.heartbeat_interval
                if not moved:
                    self._wake.wait(0.5)
                    self._wake.clear()
            except StoreUnreachableError as exc:
                self._failed(exc, quiet=True)
            except StoreError as exc:
                self._failed(exc, quiet=False)
            except Exception as exc:  # a bug here must not lose the outbox nor stop the collector
                log.exception("forwarder error")
                self._failed(exc, quiet=False)
        if self._central is not None:
            self._close_central()

    def _forward_some(self) -> bool:
        assert self._central is not None
        batch = self.outbox.claim(self.batch_rows)
        if batch is None:
            if self._replay_from is not None:
                self.last_replay_seconds = time.monotonic() - self._replay_from
                self._replay_from = None
                log.warning("outbox replayed into the central store in %.1f s", self.last_replay_seconds)
            with self._progress:
                self._forwarded_seq = self.outbox.last_seq
                self._progress.notify_all()
            return False
        self._central.forward(self.key, self.collector_id, batch)
        self.outbox.release(batch.seq)
        self.forwarded_rows += batch.rows
        with self._progress:
            self._forwarded_seq = batch.seq
            self._progress.notify_all()
        return True

    def _reconnected(self) -> None:
        if self.unreachable_since is not None:
            self.last_outage = (self.unreachable_since, self._clock())
            log.warning("central store reachable again; replaying %d queued events", self.outbox.pending_events())
            self._replay_from = time.monotonic()
        self.unreachable_since = None
        self.error = ""

    def _failed(self, exc: BaseException, *, quiet: bool) -> None:
        self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self.unreachable_since is None:
            self.unreachable_since = self._clock()
            log.warning("central store unreachable, queueing in %s: %s", self.outbox.path, self.error)
        self._close_central()
        self._replay_from = None
        self._stop.wait(self.retry)

    def _close_central(self) -> None:
        central, self._central = self._central, None
        if central is not None:
            try:
                central.close()
            except Exception as exc:  # a dead connection may fail to close; it is gone anyway
                log.debug("closing the central store: %s", exc)
