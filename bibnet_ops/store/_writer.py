"""The engine's subscriber that records history: it enqueues events and a thread commits them in batches.

`StoreWriter.handle(event)` only appends to a queue, so the engine's loop never waits for the disk.
The writer thread commits every `flush_interval` seconds (transitions are therefore durable within
that delay), writes a heartbeat for the collector run every minute, and applies retention in small
batches between commits so that readers and the engine are never held behind a long delete.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bibnet_ops.events import Event, FlappingChange, SiteStatusChange, StateChange
from bibnet_ops.model import CheckSpec, Sample
from bibnet_ops.store._api import CheckInfo, HistoryStore, SiteTransition, Transition
from bibnet_ops.store._open import StoreLike, StoreTarget, open_store, resolve_store
from bibnet_ops.store._rollup import RollupAccumulator
from bibnet_ops.store._sqlite_retention import Retention

__all__ = ["StoreWriter", "check_infos"]

log = logging.getLogger(__name__)

_STOP = object()


class _Register(list[CheckInfo]):
    """Checks to register in the writer thread (a reload added or changed them)."""


def check_infos(checks: Iterable[CheckSpec], kinds: dict[str, str] | None = None) -> list[CheckInfo]:
    """CheckInfo for resolved checks; `kinds` maps a template name to its device kind (e.g. "scanner")."""
    kinds = kinds or {}
    return [CheckInfo(c.id, c.site_id, c.device_id, c.metric, kinds.get(c.template, c.template)) for c in checks]


class StoreWriter:
    """Subscribe `writer.handle` to the engine; `start()` before, `close()` after.

    Args:
        path: the store: a SQLite file (created with its directories if missing), a `postgresql://` URL or
            a StoreTarget (`resolve_store`); or a callable opening a HistoryStore (another backend, a test's).
        checks: what to register up front (ids, metric, device kind), so reports can group them.
        flush_interval: seconds between commits (the most a kill -9 can lose of the *uncommitted* queue).
        heartbeat_interval: seconds between collector-run heartbeats.
        retention_interval: seconds between retention passes.
        on_commit: called in the writer thread after each commit with the number of transitions in it.
    """

    def __init__(
        self,
        path: StoreLike | Callable[[], HistoryStore],
        *,
        checks: Iterable[CheckInfo] = (),
        timezone: str = "Africa/Algiers",
        retention: Retention | None = None,
        flush_interval: float = 0.5,
        heartbeat_interval: float = 60.0,
        retention_interval: float = 3600.0,
        on_commit: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._opener = path if callable(path) else None
        self.target: StoreTarget | None = None if callable(path) else resolve_store(path)
        self.path: Path | None = self.target.path if self.target is not None else None
        self._checks = list(checks)
        self._timezone = timezone
        self._retention = retention
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self.retention_interval = retention_interval
        self._on_commit = on_commit
        self._clock = clock
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.run_id = 0
        self.committed_transitions = 0
        self.dropped = 0
        self.commits = 0
        self.last_commit_seconds = 0.0  # how long the last batch took to commit (store write latency)

    # ------------------------------------------------------------------ engine side
    def handle(self, event: Event) -> None:
        """Engine subscriber: never blocks, never raises."""
        if self._thread is not None:
            self._queue.put(event)
        else:
            self.dropped += 1

    __call__ = handle

    @property
    def pending(self) -> int:
        """Events queued and not yet committed."""
        return self._queue.qsize()

    def register_checks(self, checks: Iterable[CheckInfo]) -> None:
        """Register checks added or changed by a reload, in order with the events (never blocks)."""
        if self._thread is not None:
            self._queue.put(_Register(checks))
        else:
            self._checks.extend(checks)

    def start(self) -> StoreWriter:
        """Open the store (raising StoreError here, not in the thread) and start the writer thread."""
        if self._opener is not None:
            store = self._opener()
        else:
            assert self.target is not None
            store = open_store(self.target, timezone=self._timezone, retention=self._retention)
        if self._checks:
            store.register_checks(self._checks)
        self._thread = threading.Thread(target=self._run, args=(store,), name="bibnet-store-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        return self

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything enqueued so far is committed."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, mark the collector run as stopped, and stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        if self._error is not None:
            raise self._error

    def __enter__(self) -> StoreWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writer thread
    def _run(self, store: HistoryStore) -> None:
        acc = RollupAccumulator(store.timezone)
        acc.seed_counters(store.counters())
        now = self._clock()
        self.run_id = store.start_run(now, socket.gethostname(), os.getpid())
        self._ready.set()
        next_beat = now + self.heartbeat_interval
        next_retention = now  # a pass right after start, then every retention_interval
        retention_active = False
        stopping = False
        try:
            while not stopping:
                transitions: list[Transition] = []
                sites: list[SiteTransition] = []
                flaps: list[tuple[str, float, bool, float]] = []
                waiters: list[threading.Event] = []
                deadline = time.monotonic() + self.flush_interval
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    if isinstance(item, threading.Event):
                        waiters.append(item)
                        break
                    if isinstance(item, _Register):
                        store.register_checks(item)
                        continue
                    self._collect(item, acc, transitions, sites, flaps)
                now = self._clock()
                counters = dict(acc.counters_changed)
                acc.counters_changed.clear()
                began = time.monotonic()
                store.write_batch(transitions, sites, acc.drain(now, everything=stopping), flaps, counters)
                self.last_commit_seconds = time.monotonic() - began
                self.commits += 1
                self.committed_transitions += len(transitions)
                if self._on_commit is not None:
                    self._on_commit(len(transitions))
                for waiter in waiters:
                    waiter.set()
                if now >= next_beat and not stopping:
                    store.heartbeat(self.run_id, now)
                    next_beat = now + self.heartbeat_interval
                if now >= next_retention:
                    retention_active, next_retention = True, now + self.retention_interval
                if retention_active and not stopping:
                    # one small batch per loop: the next commit never waits long behind a delete
                    retention_active = store.apply_retention(now) is not None
            store.heartbeat(self.run_id, self._clock(), stopped=True)
        except BaseException as exc:  # keep the error for close(); the engine must go on
            log.exception("history store writer stopped")
            self._error = exc
            self._ready.set()
        finally:
            store.close()

    @staticmethod
    def _collect(
        item: object,
        acc: RollupAccumulator,
        transitions: list[Transition],
        sites: list[SiteTransition],
        flaps: list[tuple[str, float, bool, float]],
    ) -> None:
        if isinstance(item, Sample):
            acc.add(item)
        elif isinstance(item, StateChange):
            transitions.append(
                Transition(
                    item.check_id, item.time, str(item.old), str(item.new), item.hard, item.reason, item.flapping
                )
            )
        elif isinstance(item, SiteStatusChange):
            sites.append(
                SiteTransition(item.site_id, item.time, str(item.old), str(item.new), item.reason, item.root_cause)
            )
        elif isinstance(item, FlappingChange):
            flaps.append((item.check_id, item.time, item.flapping, item.percent))
