"""The asyncio scheduler: per-check intervals with jitter, concurrency bounds and enforced timeouts.

One loop keeps a heap of due times and starts one short-lived task per device with checks due: its due
checks poll together, first taking one slot of their site (`per_site_concurrency`), then one network-wide
slot (`concurrency`), so a site whose devices hang only ever holds its own few slots and never queues the
rest of the network behind it, and a device's checks start in the same loop turn even when slots are
scarce (their SNMP GETs can then share a request; the bounds count devices being polled). Each
probe runs under `asyncio.timeout(check.timeout + margin)`: a device that never answers becomes a
CRITICAL "no answer within N s" sample instead of a stuck task.

Jitter is drawn per device, not per check: the checks of one device poll on one grid (a random phase
of the device, whatever their intervals), so checks with the same interval fall due together and their
requests to the device can share a packet (the snmp probe coalesces GETs to one agent), while different
devices stay spread over the interval. The next poll of a check is scheduled when its result is in:
after a normal result at the grid point nearest `due + interval` (which brings a check back onto its
device's grid after retries or a poll-now), during a SOFT episode at `due + retry_interval`, as the
result handler decides; a check is never polled twice at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bibnet_ops.engine._health import PollHealth, PollStats
from bibnet_ops.model import CheckSpec, CheckStatus, Sample
from bibnet_ops.probes import run_probe

__all__ = ["TIMEOUT_MARGIN", "ResultHandler", "Scheduler", "guarded_probe", "poll_once"]

log = logging.getLogger(__name__)

# a device's phase is drawn over a day, so its remainder modulo any shorter interval is near uniform
_PHASE_RANGE = 86_400.0

TIMEOUT_MARGIN = 0.5
"""Seconds granted beyond `check.timeout` before the engine cuts a probe off itself."""

FIRST_POLLS_PER_SECOND = 1000.0
"""The first polls of a start (or of checks added at once) are spread over the time this rate needs, at least
`MIN_FIRST_WINDOW` and at most the scheduler's `first_spread`: 300 sites start in ~2.5 s, 2,000 in ~16 s,
instead of a fixed minute during which a restarted or taking-over collector is partly blind."""
MIN_FIRST_WINDOW = 2.0
"""Seconds over which even a few first polls are spread."""

MAX_POLL_TASKS = 2000
"""Device polls held as tasks at most (running or waiting for a slot); more due at once wait as plain lists."""

ResultHandler = Callable[[CheckSpec, Sample], float]
"""Called with each result in the event loop; returns the delay until the check's next poll."""


def _fmt_seconds(value: float) -> str:
    return f"{value:g}" if value >= 1 else f"{value:.2g}"


async def guarded_probe(check: CheckSpec, margin: float = TIMEOUT_MARGIN) -> tuple[Sample, bool]:
    """Run a check's probe under a hard deadline; return the sample and whether the deadline hit."""
    try:
        async with asyncio.timeout(check.timeout + margin):
            return await run_probe(check), False
    except TimeoutError:
        return Sample(
            check_id=check.id,
            status=CheckStatus.CRITICAL,
            reason=f"no answer within {_fmt_seconds(check.timeout)} s",
            time=time.time(),
        ), True


async def poll_once(
    checks: Iterable[CheckSpec],
    *,
    concurrency: int = 200,
    per_site_concurrency: int = 4,
    margin: float = TIMEOUT_MARGIN,
) -> list[Sample]:
    """Run each check once, concurrently within the same bounds as the scheduler; results in input order.

    As in the scheduler, the checks of one device run together on one site slot and one network slot.
    """
    checks = list(checks)
    global_slots = asyncio.Semaphore(max(1, concurrency))
    site_slots: dict[str, asyncio.Semaphore] = {}
    devices: dict[str, list[int]] = {}
    for index, check in enumerate(checks):
        devices.setdefault(check.device_key, []).append(index)
    samples: list[Sample | None] = [None] * len(checks)

    async def one(index: int) -> None:
        samples[index], _ = await guarded_probe(checks[index], margin)

    async def device(indexes: list[int]) -> None:
        site_id = checks[indexes[0]].site_id
        slots = site_slots.setdefault(site_id, asyncio.Semaphore(max(1, per_site_concurrency)))
        async with slots, global_slots:
            await asyncio.gather(*(one(i) for i in indexes))

    await asyncio.gather(*(device(indexes) for indexes in devices.values()))
    return [s for s in samples if s is not None]


@dataclass(slots=True, eq=False)
class _Entry:
    spec: CheckSpec
    due: float = 0.0
    anchor: float = 0.0  # a time on the device's grid: normal polls fall on anchor + k * interval
    gen: int = 0
    running: bool = False
    rerun: bool = False
    removed: bool = False
    task: asyncio.Task[None] | None = None


class Scheduler:
    """Polls checks forever (until cancelled), handing every result to `on_result`.

    Args:
        checks: the checks to poll.
        on_result: the result handler; its return value is the delay until the next poll.
        concurrency: devices being polled at once network-wide (a device's due checks poll together).
        per_site_concurrency: devices being polled at once per site.
        timeout_margin: seconds beyond `check.timeout` before a probe is cut off.
        first_spread: the first polls (of a start, or of checks added at once) are spread over at most this
            many seconds, less when there are few (`FIRST_POLLS_PER_SECOND`); later ones over each check's
            whole interval.
        rng: the random source for jitter (seed it for reproducible tests).
    """

    def __init__(
        self,
        checks: Iterable[CheckSpec],
        on_result: ResultHandler,
        *,
        concurrency: int = 200,
        per_site_concurrency: int = 4,
        timeout_margin: float = TIMEOUT_MARGIN,
        first_spread: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self._entries: dict[str, _Entry] = {c.id: _Entry(c) for c in checks}
        self._on_result = on_result
        self._global = asyncio.Semaphore(max(1, concurrency))
        self._per_site = max(1, per_site_concurrency)
        self._site_slots: dict[str, asyncio.Semaphore] = {}
        self._margin = timeout_margin
        self._first_spread = first_spread
        self._rng = rng or random.Random()
        self._heap: list[tuple[float, int, int, _Entry]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._early: set[str] = set()
        self._phases: dict[str, float] = {}  # device key -> its random phase (see `run`)
        self._groups: dict[asyncio.Task[None], list[_Entry]] = {}
        # device polls beyond this many tasks (running or waiting for a slot) wait in the backlog, in order
        self._max_tasks = max(MAX_POLL_TASKS, 4 * max(1, concurrency))
        self._backlog: deque[list[tuple[_Entry, float]]] = deque()
        self._stopping = False
        self.stats = PollStats(started=0.0)

    @property
    def check_ids(self) -> list[str]:
        return list(self._entries)

    def running(self, check_id: str) -> bool:
        entry = self._entries.get(check_id)
        return entry is not None and entry.running

    def next_due(self, check_id: str) -> float | None:
        """Monotonic time of the check's next poll (None while it runs)."""
        entry = self._entries.get(check_id)
        return None if entry is None or entry.running else entry.due

    def health(self) -> PollHealth:
        now = self._loop.time() if self._loop is not None else time.monotonic()
        return self.stats.figures(now)

    def poll_now(self, check_ids: Iterable[str]) -> int:
        """Poll these checks at once (a running check is polled again as soon as it finishes).

        Safe to call from another thread; returns how many of the ids are known.
        """
        ids = [i for i in check_ids if i in self._entries]
        if self._loop is None:
            self._early.update(ids)
        elif self._thread is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._poll_now_local, ids)
        else:
            self._poll_now_local(ids)
        return len(ids)

    def _poll_now_local(self, ids: list[str]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for check_id in ids:
            entry = self._entries[check_id]
            if entry.running:
                entry.rerun = True
            elif entry.due > now:
                self._push(entry, now)
        self._wake.set()

    @staticmethod
    def _on_grid(entry: _Entry, wanted: float) -> float:
        """The point of the check's device grid within half an interval of `wanted` (not before it by more)."""
        interval = entry.spec.interval
        if interval <= 0:
            return wanted
        return entry.anchor + math.ceil((wanted - interval / 2 - entry.anchor) / interval) * interval

    def _phase(self, device_key: str) -> float:
        phase = self._phases.get(device_key)
        if phase is None:
            phase = self._phases[device_key] = self._rng.uniform(0.0, _PHASE_RANGE)
        return phase

    def _first_window(self, count: int) -> float:
        """Seconds over which the first polls of `count` checks started together are spread."""
        return min(self._first_spread, max(MIN_FIRST_WINDOW, count / FIRST_POLLS_PER_SECOND))

    def _schedule_first(self, entry: _Entry, now: float, window: float) -> None:
        """Put a check on its device's grid and schedule its first poll within `window` seconds."""
        spec = entry.spec
        phase = self._phase(spec.device_key)
        # one phase modulo nested intervals (30 s, 60 s, 300 s...) puts the device's polls on one grid, spread
        # over the whole interval; only the first poll comes sooner, within the first spread, so a collector
        # that just started shows every check soon without polling them all in that window ever after
        entry.anchor = now + (phase % spec.interval if spec.interval > 0 else 0.0)
        spread = min(spec.interval, window)
        first = now + (phase % spread if spread > 0 else 0.0)
        self._push(entry, now if spec.id in self._early else first)

    # Reconfiguration (on the loop's thread, or before `run`).

    def add(self, checks: Iterable[CheckSpec]) -> None:
        """Start polling new checks; their first polls are spread like a start's (devices keep their phase)."""
        new = [_Entry(c) for c in checks if c.id not in self._entries]
        for entry in new:
            self._entries[entry.spec.id] = entry
        if self._loop is None:
            return
        now = self._loop.time()
        window = self._first_window(len(new))
        for entry in new:
            self._schedule_first(entry, now, window)
        self._wake.set()

    def remove(self, check_ids: Iterable[str]) -> None:
        """Stop polling these checks: a queued poll is dropped, a device poll left with no check is cancelled."""
        touched: set[asyncio.Task[None]] = set()
        for check_id in check_ids:
            entry = self._entries.pop(check_id, None)
            if entry is None:
                continue
            entry.removed = True
            entry.gen += 1  # its heap entries are stale now
            self._early.discard(check_id)
            if entry.task is not None:
                touched.add(entry.task)
        for task in touched:
            if all(e.removed for e in self._groups.get(task, ())):
                task.cancel()
        live = {e.spec.device_key for e in self._entries.values()}
        for key in [k for k in self._phases if k not in live]:
            del self._phases[key]
        sites = {e.spec.site_id for e in self._entries.values()}
        for site_id in [s for s in self._site_slots if s not in sites]:
            del self._site_slots[site_id]  # a poll still holding it keeps its own reference

    def update(self, spec: CheckSpec) -> None:
        """Give a check new settings; a new interval re-places it on its device's grid (at once if shorter)."""
        entry = self._entries.get(spec.id)
        if entry is None:
            return
        old, entry.spec = entry.spec, spec
        if old.interval == spec.interval or self._loop is None:
            return
        now = self._loop.time()
        phase = self._phase(spec.device_key)
        entry.anchor = self.stats.started + (phase % spec.interval if spec.interval > 0 else 0.0)
        if not entry.running and entry.due > now + spec.interval:
            # a shorter interval applies now, not once the old one has run out
            self._push(entry, max(now, self._on_grid(entry, now + spec.interval / 2)))
            self._wake.set()

    def _push(self, entry: _Entry, due: float) -> None:
        entry.due = due
        entry.gen += 1
        heapq.heappush(self._heap, (due, next(self._seq), entry.gen, entry))

    async def run(self) -> None:
        """Poll until cancelled; on cancellation, cancel the polls in flight and wait for them."""
        loop = self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._stopping = False
        now = loop.time()
        self.stats = PollStats(started=now)
        window = self._first_window(len(self._entries))
        for entry in self._entries.values():
            self._schedule_first(entry, now, window)
        self._early.clear()
        heap = self._heap
        try:
            while True:
                self._wake.clear()
                now = loop.time()
                due_now: dict[str, list[tuple[_Entry, float]]] = {}
                while heap and heap[0][0] <= now:
                    due, _, gen, entry = heapq.heappop(heap)
                    if gen == entry.gen and not entry.running:
                        entry.running = True
                        due_now.setdefault(entry.spec.device_key, []).append((entry, due))
                for group in due_now.values():
                    self._dispatch(group)
                handle = loop.call_at(heap[0][0], self._wake.set) if heap else None
                try:
                    await self._wake.wait()
                finally:
                    if handle is not None:
                        handle.cancel()
        finally:
            self._stopping = True
            self.stats.queued -= sum(len(group) for group in self._backlog)
            self._backlog.clear()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _dispatch(self, group: list[tuple[_Entry, float]]) -> None:
        if len(self._tasks) >= self._max_tasks or self._backlog:
            # a start-up or takeover burst waits here as plain lists, not as thousands of suspended tasks
            self._backlog.append(group)
            self.stats.queued += len(group)
            return
        self._start(group)

    def _start(self, group: list[tuple[_Entry, float]]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._poll(group))
        self._tasks.add(task)
        self._groups[task] = [entry for entry, _ in group]
        for entry, _ in group:
            entry.task = task
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        for entry in self._groups.pop(task, ()):
            if entry.task is task:
                entry.task = None
        while self._backlog and len(self._tasks) < self._max_tasks and not self._stopping:
            waiting = self._backlog.popleft()
            self.stats.queued -= len(waiting)
            group = [(entry, due) for entry, due in waiting if not entry.removed]
            if group:
                self._start(group)

    async def _poll(self, group: list[tuple[_Entry, float]]) -> None:
        """Poll one device's due checks together, holding one site slot and one network slot."""
        assert self._loop is not None
        loop = self._loop
        site_id = group[0][0].spec.site_id
        stats = self.stats
        slots = self._site_slots.get(site_id)
        if slots is None:
            slots = self._site_slots[site_id] = asyncio.Semaphore(self._per_site)
        count = len(group)
        stats.queued += count
        queued = True
        try:
            async with slots, self._global:
                stats.queued -= count
                queued = False
                start = loop.time()
                for _, due in group:
                    stats.record_start(start, start - due)
                stats.in_flight += count
                if count == 1:
                    await self._probe(*group[0])
                else:
                    await asyncio.gather(*(self._probe(entry, due) for entry, due in group))
        finally:
            if queued:
                stats.queued -= count

    async def _probe(self, entry: _Entry, due: float) -> None:
        """Run one check's probe and schedule its next poll as soon as its own result is in."""
        assert self._loop is not None
        stats = self.stats
        spec = entry.spec
        try:
            sample, timed_out = await guarded_probe(spec, self._margin)
        finally:
            stats.in_flight -= 1
        now = self._loop.time()
        stats.record_done(now)
        if timed_out:
            stats.timeouts += 1
        entry.running = False
        if entry.removed:
            return  # removed by a reload while it ran: its result belongs to no check any more
        try:
            delay = self._on_result(spec, sample)
        except Exception:  # a subscriber's bug must not stop this check being polled
            log.exception("result handler failed for %s", spec.id)
            delay = spec.interval
        spec = entry.spec  # a reload may have changed its interval while it ran
        if entry.rerun:
            entry.rerun = False
            next_due = now
        elif delay == spec.interval:
            next_due = max(now, self._on_grid(entry, due + delay))
        else:
            next_due = max(now, due + max(0.0, delay))
        self._push(entry, next_due)
        if self._heap[0][3] is entry:  # the sleeping loop must recompute its wake-up
            self._wake.set()
