"""The collector's outbox: durable, ordered, bounded by dropping minute rollups only, never reusing a number."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bibnet_ops.model import CheckStatus
from bibnet_ops.national import Outbox
from bibnet_ops.store import CheckInfo, SiteTransition, Transition
from bibnet_ops.store._rollup import Agg


def agg(n: int, failures: int = 0) -> Agg:
    a = Agg()
    for i in range(n):
        a.add(CheckStatus.CRITICAL if i < failures else CheckStatus.OK, 0.01 * (i + 1), float(i), None)
    return a


def test_batches_come_back_in_order_and_leave_once_released(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.register_checks([CheckInfo("s1/d/c", "s1", "d", "latency", "ils")])
    box.write_batch([Transition("s1/d/c", 10.0, "OK", "CRITICAL", False, "timeout")], [], [])
    box.write_batch([Transition("s1/d/c", 20.0, "OK", "CRITICAL", True, "timeout")],
                    [SiteTransition("s1", 20.0, "UP", "DOWN", "catalogue down")], [], [("s1/d/c", 20.0, True, 55.0)],
                    {"s1/d/c": 1234.0})
    assert box.pending_events() == 4 and box.depth() == 6
    batch = box.claim()
    assert batch is not None
    assert [c.check_id for c in batch.checks] == ["s1/d/c"]
    assert [(t.time, t.hard) for t in batch.transitions] == [(10.0, False), (20.0, True)]
    assert batch.site_transitions[0].new == "DOWN" and batch.flapping == [("s1/d/c", 20.0, True, 55.0)]
    assert batch.counters == {"s1/d/c": 1234.0}
    box.write_batch([Transition("s1/d/c", 30.0, "CRITICAL", "OK", True, "")], [], [])
    box.release(batch.seq)
    rest = box.claim()
    assert rest is not None and [t.time for t in rest.transitions] == [30.0] and rest.seq > batch.seq
    box.release(rest.seq)
    assert box.claim() is None and box.depth() == 0
    last = box.last_seq
    box.shutdown()
    # an empty outbox reopened never hands out a number already forwarded
    again = Outbox(tmp_path / "o.db")
    assert again.epoch == box.epoch
    again.write_batch([Transition("s1/d/c", 40.0, "OK", "WARNING", True, "")], [], [])
    nxt = again.claim()
    assert nxt is not None and nxt.seq > last


def test_small_batches_keep_the_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    for i in range(25):
        box.write_batch([Transition("s/d/c", float(i), "OK", "CRITICAL", True, str(i))], [], [])
    seen: list[float] = []
    while (batch := box.claim(limit=7)) is not None:
        assert len(batch.transitions) <= 7
        seen += [t.time for t in batch.transitions]
        box.release(batch.seq)
    assert seen == [float(i) for i in range(25)]


def test_hour_rollups_merge_in_place_but_never_into_a_claimed_row(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.write_batch([], [], [("hour", "s/d/c", 100, agg(3, 1))])
    box.write_batch([], [], [("hour", "s/d/c", 100, agg(2))])
    claimed = box.claim()
    assert claimed is not None and len(claimed.rollups) == 1 and claimed.rollups[0][3].n == 5
    assert claimed.rollups[0][3].failures == 1
    # written while the first row is being forwarded: a new row, so the forwarded part is not sent twice
    box.write_batch([], [], [("hour", "s/d/c", 100, agg(4))])
    box.release(claimed.seq)
    rest = box.claim()
    assert rest is not None and [r[3].n for r in rest.rollups] == [4]


def test_bound_drops_oldest_minutes_and_never_a_transition(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_minute_rows=1000)
    for minute in range(30):
        rollups = [("minute", f"s/d/c{i}", minute, agg(1)) for i in range(100)]
        rollups.append(("hour", "s/d/c0", 0, agg(1)))
        box.write_batch([Transition("s/d/c0", float(minute), "OK", "CRITICAL", True, "")], [], rollups)
    assert box.dropped_minute_rows == 2000
    batch = box.claim(limit=100_000)
    assert batch is not None
    minutes = sorted({r[2] for r in batch.rollups if r[0] == "minute"})
    assert minutes == list(range(20, 30))  # the 10 most recent minutes of 100 checks
    hours = [r for r in batch.rollups if r[0] == "hour"]
    assert len(hours) == 1 and hours[0][3].n == 30  # hour rollups are never dropped
    assert len(batch.transitions) == 30


def test_a_committed_transition_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    script = textwrap.dedent(f"""
        import sys, time
        from bibnet_ops.national import Outbox
        from bibnet_ops.store import Transition
        box = Outbox({str(path)!r})
        i = 0
        while True:
            box.write_batch([Transition("s/d/c", float(i), "OK", "CRITICAL", True, str(i))], [], [])
            print(i, flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ})
    assert proc.stdout is not None
    committed = -1
    deadline = time.monotonic() + 30
    while committed < 200 and time.monotonic() < deadline:
        committed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    assert committed >= 200
    batch = Outbox(path).claim(limit=1_000_000)
    assert batch is not None
    times = [int(t.time) for t in batch.transitions]
    # every transition it said was committed is there, in order, once
    assert times[: committed + 1] == list(range(committed + 1))
    assert times == list(range(len(times)))


def test_one_process_per_outbox(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    script = f"from bibnet_ops.national import Outbox; Outbox({str(tmp_path / 'o.db')!r})"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"outbox {tmp_path / 'o.db'} is in use by another collector process (pid {os.getpid()})" in proc.stderr
    box.shutdown()
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 0


def test_purge_drops_a_site_from_a_moment_on(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    for t in (100.0, 200.0, 300.0):
        box.write_batch([Transition("s1/d/c", t, "OK", "CRITICAL", True, ""),
                         Transition("s10/d/c", t, "OK", "CRITICAL", True, "")],
                        [SiteTransition("s1", t, "UP", "DOWN")],
                        [("minute", "s1/d/c", int(t // 60), agg(1)), ("hour", "s1/d/c", 0, agg(1))])
    assert box.purge_site("s1", 200.0) == 6  # two transitions, two site changes, two minutes
    batch = box.claim()
    assert batch is not None
    assert [(t.check_id, t.time) for t in batch.transitions] == [("s1/d/c", 100.0), ("s10/d/c", 100.0),
                                                                 ("s10/d/c", 200.0), ("s10/d/c", 300.0)]
    assert [s.time for s in batch.site_transitions] == [100.0]
    assert sorted((r[0], r[2]) for r in batch.rollups) == [("hour", 0), ("minute", 1)]
    assert box.states(["s1"]) == [] and len(box.states(["s10"])) == 1
