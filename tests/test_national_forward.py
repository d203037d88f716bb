"""The forwarder against a real PostgreSQL server: in order, exactly once, through outages and kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _postgres import PgServer, run_postgres

from bibnet_ops.national import Forwarder, Outbox, PgCentral
from bibnet_ops.store import CheckInfo, StoreTarget, Transition, open_store


def central(dsn: str) -> PgCentral:
    return PgCentral(open_store(StoreTarget(dsn)), "test", os.getpid())  # type: ignore[arg-type]


def central_times(dsn: str, check: str = "s/d/c") -> list[float]:
    store = open_store(StoreTarget(dsn), readonly=True)
    try:
        return [t.time for t in store.transitions(0, 1e12, [check], hard_only=False)]
    finally:
        store.close()


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_forwarded_in_order_and_recorded_in_the_latest_state(tmp_path: Path, pg_dsn: str) -> None:
    box = Outbox(tmp_path / "o.db")
    box.register_checks([CheckInfo("s/d/c", "s", "d", "latency", "ils")])
    box.start_run(100.0, "h", 1)
    for i in range(12):
        box.write_batch([Transition("s/d/c", 100.0 + i, "OK" if i % 2 else "CRITICAL",
                                    "CRITICAL" if i % 2 else "OK", True, f"r{i}")], [], [])
    fwd = Forwarder(box, lambda: central(pg_dsn), collector_id="oran-1", batch_rows=5).start()
    try:
        assert fwd.flush(20)
        assert box.depth() == 0
    finally:
        fwd.stop()
    assert central_times(pg_dsn) == [100.0 + i for i in range(12)]
    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT status, hard, reason, collector FROM national_check_state "
                           "WHERE check_name = 's/d/c'").fetchone()
        assert row == ("CRITICAL", True, "r11", "oran-1")
        (seq,) = conn.execute("SELECT seq FROM national_forwarded").fetchone()
        assert seq == box.last_seq


def test_outage_queues_and_replays_once(tmp_path: Path) -> None:
    with run_postgres() as server:
        dsn = server.dsn(server.create_database())
        box = Outbox(tmp_path / "o.db")
        fwd = Forwarder(box, lambda: central(dsn), collector_id="oran-1", retry=0.2).start()
        box.write_batch([Transition("s/d/c", 1.0, "OK", "CRITICAL", True, "a")], [], [])
        fwd.nudge()
        assert fwd.flush(20)
        server.stop()
        for i in range(2, 50):
            box.write_batch([Transition("s/d/c", float(i), "OK", "CRITICAL", True, str(i))], [], [])
            fwd.nudge()
        wait_for(lambda: fwd.state().unreachable_since is not None)
        state = fwd.state()
        assert not state.reachable and state.queued_events == 48 and state.error
        server.start()
        wait_for(lambda: box.pending_events() == 0, 30)
        assert fwd.state().reachable and fwd.last_replay_seconds is not None and fwd.last_outage is not None
        fwd.stop()
        assert central_times(dsn) == [float(i) for i in range(1, 50)]


def test_kill_9_after_the_central_commit_does_not_duplicate(tmp_path: Path, pg_server: PgServer) -> None:
    """A forwarder killed between the central commit and the outbox delete: the restart skips the batch."""
    dsn = pg_server.dsn(pg_server.create_database())
    path = tmp_path / "o.db"
    box = Outbox(path)
    for i in range(40):
        box.write_batch([Transition("s/d/c", float(i), "OK", "CRITICAL", True, str(i))], [], [])
    box.shutdown()
    # a forwarder process that dies right after its first central commit, before deleting anything
    script = textwrap.dedent(f"""
        import os, signal
        from bibnet_ops.national import Outbox, PgCentral
        from bibnet_ops.store import StoreTarget, open_store
        box = Outbox({str(path)!r})
        c = PgCentral(open_store(StoreTarget({dsn!r})))
        batch = box.claim(limit=15)
        c.forward("oran-1:" + box.epoch, "oran-1", batch)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert central_times(dsn) == [float(i) for i in range(15)]
    box = Outbox(path)
    assert box.pending_events() == 40  # nothing was deleted locally
    fwd = Forwarder(box, lambda: central(dsn), collector_id="oran-1").start()
    try:
        assert fwd.flush(20)
    finally:
        fwd.stop()
    assert central_times(dsn) == [float(i) for i in range(40)]


@pytest.mark.parametrize("bad", ["postgresql://nobody:wrong@127.0.0.1:{port}/postgres"])
def test_a_refused_password_keeps_everything_queued(tmp_path: Path, pg_server: PgServer, bad: str) -> None:
    box = Outbox(tmp_path / "o.db")
    box.write_batch([Transition("s/d/c", 1.0, "OK", "CRITICAL", True, "a")], [], [])
    dsn = bad.format(port=pg_server.port)
    fwd = Forwarder(box, lambda: central(dsn), collector_id="x", retry=0.1).start()
    try:
        wait_for(lambda: fwd.state().error != "")
        state = fwd.state()
        assert "password authentication failed" in state.error and "wrong" not in state.error
        assert state.queued_events == 1
    finally:
        fwd.stop()
