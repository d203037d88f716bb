"""The collector in a child process (`bibnet_ops.remote`), against the real simulator and a real SQLite store.

Events, poll health, re-polls and acknowledgements cross a real socket to a real `python -m` child; the child
is killed, started on a broken inventory, orphaned by a SIGKILLed parent and starved by a parent that stops
reading, and each time the dashboard's side must say what happened and nothing may hang or stay behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_tui_live import KEPT, REPO, SITES

from bibnet_ops.alerts import AlertLog, ReadOnlyError, access_policy
from bibnet_ops.events import Sample, StateChange
from bibnet_ops.inventory import Inventory, load_inventory
from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.remote import CollectorProcess, CollectorSpec, NotAvailableError
from bibnet_ops.remote._protocol import STOP_DEADLINE, Batch, Ready
from bibnet_ops.sim import Simulator
from bibnet_ops.store import SqliteStore
from bibnet_ops.tui.netstate import NetworkState


def slow_inventory(config: Path, interval: float = 60.0) -> Inventory:
    """A few checks per site polled once early (first spread 0.1 s) and then every `interval` seconds.

    A failure (a loaded machine can make a first reply late) is retried and recovered from within 0.2 s.
    """
    inv = load_inventory(config)
    checks = [dataclasses.replace(c, interval=interval, retries=1, retry_interval=0.2, recover_after=1, timeout=1.0)
              for c in inv.checks if f"{c.device_id}/{c.name}" in KEPT]
    return dataclasses.replace(inv, checks=checks)


@asynccontextmanager
async def simulated(tmp_path: Path) -> AsyncIterator[tuple[Simulator, Path]]:
    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True)
    async with sim:
        yield sim, sim.write_config(tmp_path / "config")


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


class Seen:
    """Everything a `CollectorProcess` delivered so far."""

    def __init__(self, source: CollectorProcess) -> None:
        self.source = source
        self.events: list[object] = []

    def pull(self) -> Seen:
        self.events += self.source.drain()
        return self

    def samples(self, site: str | None = None) -> list[Sample]:
        prefix = f"{site}/" if site is not None else ""
        return [e for e in self.pull().events if isinstance(e, Sample) and e.check_id.startswith(prefix)]


def all_settled(samples: list[Sample], inv: Inventory, quiet: float = 0.5) -> bool:
    """Every check's latest result is OK and none came in the last `quiet` seconds (no retry is pending)."""
    latest = {s.check_id: s for s in samples}
    return (latest.keys() == {c.id for c in inv.checks} and all(s.status == CheckStatus.OK for s in latest.values())
            and time.time() - max(s.time for s in latest.values()) > quiet)


def _active_acks(store: Path) -> dict[str, Any]:
    log = AlertLog(store, readonly=True)
    try:
        return log.active_acks(time.time())
    finally:
        log.close()


async def test_events_health_repoll_and_acks_cross_to_the_child(tmp_path: Path) -> None:
    async with simulated(tmp_path) as (_sim, config):
        inv = slow_inventory(config)
        store = tmp_path / "history.db"
        collector = CollectorProcess(inv, store=store, first_spread=0.1, ship_inventory=True).start()
        try:
            assert collector.store_path == store and collector.running
            seen = Seen(collector)
            await wait_for(lambda: {s.check_id for s in seen.samples()} == {c.id for c in inv.checks})
            assert collector.ready is not None and collector.ready.pid == collector.pid != os.getpid()
            assert collector.ready.checks == len(inv.checks) and collector.ready.alerting
            await wait_for(lambda: (h := collector.poll_health()) is not None and h.completed >= len(inv.checks))
            await wait_for(lambda: all_settled(seen.samples(), inv))
            # r: the checks of one site run again long before their 60 s interval, in the child.
            polled_at = time.time()
            assert collector.poll_now("bplp-16") and not collector.poll_now("no-such-site")
            await wait_for(lambda: any(s.time >= polled_at for s in seen.samples("bplp-16")), timeout=10)
            assert not any(s.time >= polled_at for s in seen.samples() if not s.check_id.startswith("bplp-16/"))
            # An ack is made by the child's AlertManager and recorded in its store.
            policy = access_policy(inv.settings)
            acks = await asyncio.wrap_future(
                collector.acknowledge(["bplp-16/catalogue/opac"], "on it", author="ali", policy=policy)
            )
            assert [(a.key, a.author, a.comment) for a in acks] == [("bplp-16/catalogue/opac", "ali", "on it")]
            assert _active_acks(store)["bplp-16/catalogue/opac"].author == "ali"
            active_acks = collector.active_acks()
            assert active_acks is not None
            assert set((await asyncio.wrap_future(active_acks)).keys()) == {"bplp-16/catalogue/opac"}
            # The manager's own refusal comes back as the same error a local manager raises.
            with pytest.raises(ReadOnlyError):
                await asyncio.wrap_future(collector.acknowledge(
                    ["bplp-13/catalogue/opac"], "no", policy=access_policy({}, read_only=True)
                ))
            ended = await asyncio.wrap_future(collector.unacknowledge(["bplp-16/catalogue/opac"], who="ali"))
            assert [a.key for a in ended] == ["bplp-16/catalogue/opac"] and not _active_acks(store)
        finally:
            await asyncio.to_thread(collector.stop)
        assert collector.collector_stopped() == "the dashboard exited"
        assert collector.proc is not None and collector.proc.returncode == 0
        # An orderly stop: the child's run is closed in the store, its transitions committed.
        db = SqliteStore(store, readonly=True)
        try:
            assert [(r.pid, r.stopped is not None) for r in db.runs(0, time.time() + 1)] == [(collector.pid, True)]
            assert {t.check_id for t in db.recent_transitions(limit=500)} >= {c.id for c in inv.checks}
        finally:
            db.close()


async def test_a_killed_collector_is_reported_and_fails_what_waits_on_it(tmp_path: Path) -> None:
    async with simulated(tmp_path) as (_sim, config):
        inv = slow_inventory(config)
        collector = CollectorProcess(inv, store=tmp_path / "h.db", first_spread=0.1, ship_inventory=True).start()
        try:
            await wait_for(lambda: collector.ready is not None)
            assert collector.collector_stopped() is None
            assert collector.pid is not None
            os.kill(collector.pid, signal.SIGKILL)
            await wait_for(lambda: collector.collector_stopped() is not None, timeout=5)
            assert collector.collector_stopped() == "killed by SIGKILL"
            assert not collector.running and not collector.poll_now("bplp-16")
            assert collector.active_acks() is None  # the console then reads acks from the store
            with pytest.raises(NotAvailableError, match="killed by SIGKILL"):
                await asyncio.wrap_future(collector.acknowledge(["bplp-16/catalogue/opac"], "x"))
        finally:
            started = time.monotonic()
            await asyncio.to_thread(collector.stop)
            assert time.monotonic() - started < 2


async def test_stop_waits_for_history_still_being_committed(tmp_path: Path) -> None:
    """A child whose commit is held up (another writer holds the store) is waited for, not killed after 3 s."""
    async with simulated(tmp_path) as (_sim, config):
        inv = slow_inventory(config)
        store = tmp_path / "history.db"
        collector = CollectorProcess(inv, store=store, first_spread=0.1, ship_inventory=True).start()
        seen = Seen(collector)
        try:
            await wait_for(lambda: all_settled(seen.samples(), inv))
            polled_at = time.time()
            assert collector.poll_now("bplp-16")
            await wait_for(lambda: any(s.time >= polled_at for s in seen.samples("bplp-16")), timeout=10)
        finally:
            # `maintenance add` from another terminal, say: the child's last commit waits for this lock
            blocker = sqlite3.connect(store, timeout=10, isolation_level=None, check_same_thread=False)
            blocker.execute("BEGIN IMMEDIATE")
            release = threading.Timer(4.0, blocker.execute, args=("COMMIT",))
            release.start()
            slow: list[float] = []
            started = time.monotonic()
            await asyncio.to_thread(collector.stop, on_slow=lambda: slow.append(time.monotonic() - started))
            took = time.monotonic() - started
            release.join()
            blocker.close()
        assert collector.proc is not None and collector.proc.returncode == 0, collector.collector_stopped()
        assert 4.0 <= took < STOP_DEADLINE + 1.0 and len(slow) == 1 and slow[0] < 2.0, (took, slow)
        db = SqliteStore(store, readonly=True)
        try:
            assert [(r.pid, r.stopped is not None) for r in db.runs(0, time.time() + 1)] == [(collector.pid, True)]
        finally:
            db.close()


@pytest.mark.parametrize("broken", ["no-inventory", "store-is-a-directory"])
async def test_a_collector_that_cannot_start_says_why(tmp_path: Path, broken: str) -> None:
    shipped = load_inventory(REPO / "config")
    if broken == "no-inventory":
        inv, store, expected = dataclasses.replace(shipped, root=tmp_path / "gone"), tmp_path / "h.db", "not found"
    else:
        (tmp_path / "dir.db").mkdir()
        inv, store, expected = shipped, tmp_path / "dir.db", "dir.db"
    collector = CollectorProcess(inv, store=store).start()
    try:
        await wait_for(lambda: collector.collector_stopped() is not None)
        reason = collector.collector_stopped()
        assert reason is not None and expected in reason, reason
        assert collector.ready is None
    finally:
        await asyncio.to_thread(collector.stop)
    assert collector.proc is not None and collector.proc.returncode == 2


ORPHAN_PARENT = """
import sys, time
from pathlib import Path
from bibnet_ops.inventory import load_inventory
from bibnet_ops.remote import CollectorProcess
collector = CollectorProcess(load_inventory(sys.argv[1]), store=Path(sys.argv[2]), first_spread=0.1).start()
while collector.ready is None and collector.collector_stopped() is None:
    time.sleep(0.05)
print(collector.pid, collector.collector_stopped(), flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_the_collector_exits_when_its_dashboard_is_killed_outright(tmp_path: Path) -> None:
    async with simulated(tmp_path) as (_sim, config):
        parent = subprocess.Popen(
            [sys.executable, "-c", ORPHAN_PARENT, str(config), str(tmp_path / "h.db")],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert parent.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 30)
            pid_text, stopped = line.split(maxsplit=1)
            assert stopped.strip() == "None", line
            child = int(pid_text)
            assert not _gone(child) and psutil.Process(child).ppid() == parent.pid
            parent.send_signal(signal.SIGKILL)
            parent.wait(5)
            killed = time.monotonic()
            await wait_for(lambda: _gone(child), timeout=5)
            assert time.monotonic() - killed < 3
        finally:
            if parent.poll() is None:
                parent.kill()
                parent.wait()
            if parent.stdout is not None:
                parent.stdout.close()


async def test_a_dashboard_that_stops_reading_never_blocks_polling(tmp_path: Path) -> None:
    """The child's sends block on a small socket buffer: it drops the oldest events, keeps polling, resyncs."""
    async with simulated(tmp_path) as (sim, config):
        inv = slow_inventory(config, interval=0.2)
        mine, theirs = socket.socketpair()
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        mine.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        child = subprocess.Popen(
            [sys.executable, "-m", "bibnet_ops.remote._child", str(theirs.fileno()), str(os.getpid())],
            pass_fds=(theirs.fileno(),), env=env, stderr=subprocess.DEVNULL,
        )
        theirs.close()
        conn = Connection(mine.detach())
        try:
            conn.send(CollectorSpec(inventory=inv, store=False, alerts=False, first_spread=0.1, queue_limit=30))
            messages: list[Any] = []

            def read(seconds: float) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    if conn.poll(0.05):
                        messages.append(conn.recv())

            state = NetworkState(inv)
            async with asyncio.timeout(30):
                while state.site_status("bplp-16") != SiteStatus.UP:
                    applied = len(messages)
                    await asyncio.to_thread(read, 0.5)
                    state.apply_many(e for m in messages[applied:] if isinstance(m, Batch) for e in m.events)
            assert any(isinstance(m, Ready) for m in messages)
            # The dashboard stops reading for 4 s (as if suspended with ctrl+z) while bplp-16 goes down...
            sim.set_fault("bplp-16", "outage")
            await asyncio.sleep(4.0)
            read_from = len(messages)
            await asyncio.to_thread(read, 3.0)
            later = [m for m in messages[read_from:] if isinstance(m, Batch)]
            # ...the engine kept polling (15 checks every 0.2 s), dropping the oldest events beyond 30 queued...
            dropped_before = max(m.dropped for m in messages[:read_from] if isinstance(m, Batch))
            assert later[-1].dropped - dropped_before > 100
            # ...among them bplp-16's state changes, so it sent every state afresh (old == new: the dashboard's
            # picture is set right without lines in its feed of changes).
            resync = {e.check_id for b in later for e in b.events if isinstance(e, StateChange) and e.old == e.new}
            assert resync == {c.id for c in inv.checks}
            state.apply_many(e for b in later for e in b.events)
            assert state.site_status("bplp-16") == SiteStatus.DOWN
            assert state.checks["bplp-16/catalogue/opac"].status == CheckStatus.CRITICAL
        finally:
            conn.close()
            child.wait(5)
        assert child.returncode == 0


async def test_a_screen_that_falls_behind_gets_every_state_again(tmp_path: Path) -> None:
    """The dashboard's own buffer is bounded too: past it the oldest go, and the next drain asks for a resync."""
    async with simulated(tmp_path) as (sim, config):
        inv = slow_inventory(config, interval=0.2)
        collector = CollectorProcess(inv, store=False, alerts=False, first_spread=0.1, ship_inventory=True, limit=20)
        collector.start()
        try:
            seen = Seen(collector)
            await wait_for(lambda: all_settled(seen.samples(), inv, quiet=0.0))
            sim.set_fault("bplp-16", "outage")
            await wait_for(lambda: collector.dropped_here > 100)  # the screen does not drain meanwhile
            first = collector.drain()
            assert collector.limit == 2 * (len(inv.checks) + len(inv.sites))  # two whole snapshots at least
            assert len(first) == collector.limit and collector.dropped_there == 0  # dropped here, not in the child
            later: list[object] = []
            await wait_for(lambda: later.extend(collector.drain()) or {
                e.check_id for e in later if isinstance(e, StateChange) and e.old == e.new
            } == {c.id for c in inv.checks})
            state = NetworkState(inv)
            state.apply_many([*seen.events, *first, *later])
            assert state.checks["bplp-16/catalogue/opac"].status == CheckStatus.CRITICAL
        finally:
            await asyncio.to_thread(collector.stop)
