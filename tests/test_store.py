"""The SQLite history store: schema, writer thread, rollups, retention, crash safety, maintenance windows."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bibnet_ops.events import SiteStatusChange, StateChange
from bibnet_ops.model import CheckStatus, Sample, SiteStatus
from bibnet_ops.store import (
    SCHEMA_VERSION,
    CheckInfo,
    MaintenanceSchedule,
    MaintenanceWindow,
    Retention,
    SchemaTooNewError,
    SqliteStore,
    StoreError,
    StoreWriter,
    Transition,
    in_maintenance,
    store_path,
    window_intervals,
)
from bibnet_ops.store._rollup import Agg, bucket_of, bucket_start

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC (01:00 in Algiers), a Thursday
CHECK = "bplp-31/scanner-1/pages"
KEEP = Retention(minute_days=None, hour_days=None, day_days=None)  # T0 is in the past


def _sample(t: float, status: CheckStatus = CheckStatus.OK, **kw: object) -> Sample:
    return Sample(check_id=CHECK, status=status, time=t, **kw)  # type: ignore[arg-type]


def test_schema_version_and_wal(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()
    # reopening an up-to-date store is a no-op
    SqliteStore(tmp_path / "h.db").close()


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "h.db").close()
    conn = sqlite3.connect(tmp_path / "h.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="upgrade bibnet-ops"):
        SqliteStore(tmp_path / "h.db")
    with pytest.raises(SchemaTooNewError):
        SqliteStore(tmp_path / "h.db", readonly=True)


def test_readonly_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        SqliteStore(tmp_path / "none.db", readonly=True)


def test_store_path_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store_path({"collector": {"store": "data/x.db"}}, tmp_path) == tmp_path / "data" / "x.db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert store_path({"collector": {}}, tmp_path) == tmp_path / "xdg" / "bibnet-ops" / "bibnet.db"


def test_agg_row_round_trip_is_compact_for_one_sample() -> None:
    one = Agg()
    one.add(CheckStatus.OK, 0.012, 42.5, None)
    row = one.to_row()
    assert row[3] is None and row[5] is None and row[10] is None  # min/max/last stand for themselves
    back = Agg.from_row(row)
    assert (back.lat_min, back.lat_max, back.v_last, back.v_min) == (12, 12, 42.5, 42.5)
    two = Agg.from_row(row)
    later = Agg()
    later.add(CheckStatus.CRITICAL, 0.030, 10.0, 3.0)
    two.merge(later)
    assert Agg.from_row(two.to_row()) == two
    assert (two.n, two.failures, two.lat_min, two.lat_max, two.v_last, two.delta) == (2, 1, 12, 30, 10.0, 3.0)


def test_day_buckets_are_local_days() -> None:
    # 23:30 UTC on 1 Jan is 00:30 on 2 Jan in Algiers (UTC+1)
    t = T0 + 23.5 * 3600
    assert bucket_of("day", t) == bucket_of("day", T0) + 1
    assert bucket_start("day", bucket_of("day", t)) == T0 + 23 * 3600


def test_writer_commits_transitions_rollups_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    info = CheckInfo(CHECK, "bplp-31", "scanner-1", "pages_per_hour", "scanner")
    with StoreWriter(path, checks=[info], flush_interval=0.05, retention=KEEP) as writer:
        for i in range(5):
            writer.handle(
                _sample(T0 + 60 * i + 1, latency=0.010 * (i + 1), value=100.0, values={"total": 1000.0 + 7 * i})
            )
        writer.handle(StateChange(CHECK, "bplp-31", T0 + 100, CheckStatus.OK, CheckStatus.CRITICAL, True, "down"))
        writer.handle(SiteStatusChange("bplp-31", T0 + 100, SiteStatus.UP, SiteStatus.DOWN, "scanner down"))
        writer.flush()
        reader = SqliteStore(path, readonly=True)
        trans = reader.transitions(T0, T0 + 3600)
        assert [(t.check_id, t.new, t.hard, t.reason) for t in trans] == [(CHECK, "CRITICAL", True, "down")]
        assert [s.new for s in reader.site_transitions(T0, T0 + 3600)] == ["DOWN"]
        assert reader.checks() == [info]
        reader.close()
    reader = SqliteStore(path, readonly=True)
    minutes = reader.rollups("minute", T0, T0 + 3600, [CHECK])
    assert [r.count for r in minutes] == [1] * 5
    assert minutes[2].latency_avg == pytest.approx(0.030)
    assert sum(r.delta or 0 for r in minutes) == 28.0  # first reading is the baseline
    (hour,) = reader.rollups("hour", T0, T0 + 3600, [CHECK])
    assert (hour.count, hour.delta, hour.latency_min, hour.latency_max) == (5, 28.0, 0.010, 0.050)
    (day,) = reader.rollups("day", T0 - 3600, T0 + 86400, [CHECK])
    assert day.count == 5 and day.start == T0 - 3600
    (run,) = reader.runs(T0 - 86400, time.time() + 60)
    assert run.stopped is not None and run.pid == os.getpid()
    reader.close()


def test_counter_baseline_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with StoreWriter(path, flush_interval=0.05, retention=KEEP) as writer:
        writer.handle(_sample(T0 + 1, values={"total": 500.0}))
    with StoreWriter(path, flush_interval=0.05, retention=KEEP) as writer:
        writer.handle(_sample(T0 + 3601, values={"total": 560.0}))
        writer.handle(_sample(T0 + 3661, values={"total": 5.0}))  # device restarted: counts from zero
    reader = SqliteStore(path, readonly=True)
    assert [r.delta for r in reader.rollups("minute", T0, T0 + 7200)] == [0.0, 60.0, 5.0]


def test_retention_deletes_in_small_batches(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.db", retention=Retention(minute_days=1, hour_days=2, day_days=None))
    store.register_checks(CheckInfo(f"s{i}/d/c", f"s{i}", "d") for i in range(30))
    rows = []
    for i in range(30):
        for minute in range(0, 4 * 1440, 60):
            agg = Agg()
            agg.add(CheckStatus.OK, 0.01, 1.0, None)
            rows.append(("minute", f"s{i}/d/c", bucket_of("minute", T0) + minute, agg))
            rows.append(("hour", f"s{i}/d/c", bucket_of("hour", T0) + minute // 60, agg))
    store.write_batch([], [], rows)
    now = T0 + 4 * 86400
    calls, deleted = 0, 0
    while (n := store.apply_retention(now, batch_checks=7)) is not None:
        calls += 1
        deleted += n
    assert calls == 10  # 30 checks in batches of 7, for two tiers
    assert (
        store.rollups("minute", 0, now * 2) and min(r.start for r in store.rollups("minute", 0, now * 2)) >= now - 86400
    )
    assert min(r.start for r in store.rollups("hour", 0, now * 2)) >= now - 2 * 86400
    assert deleted == 30 * (72 + 48)


def test_reader_works_while_writer_holds_the_file(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    writer = StoreWriter(path, flush_interval=0.02).start()
    try:
        for i in range(200):
            writer.handle(StateChange(CHECK, "bplp-31", T0 + i, CheckStatus.OK, CheckStatus.WARNING, i % 2 == 0))
            if i % 50 == 0:
                reader = SqliteStore(path, readonly=True)
                reader.recent_transitions(10)
                reader.close()
        writer.flush()
    finally:
        writer.close()
    reader = SqliteStore(path, readonly=True)
    assert len(reader.transitions(0, T0 + 1000, hard_only=False)) == 200
    assert [t.time for t in reader.recent_transitions(3)] == [T0 + 199, T0 + 198, T0 + 197]


_CRASH_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from bibnet_ops.events import StateChange
    from bibnet_ops.model import CheckStatus
    from bibnet_ops.store import StoreWriter

    def committed(n):
        print(f"committed {writer.committed_transitions}", flush=True)

    writer = StoreWriter(sys.argv[1], flush_interval=0.05, on_commit=committed).start()
    i = 0
    while True:  # polling loop: one transition every few ms until killed
        old, new = (CheckStatus.OK, CheckStatus.CRITICAL) if i % 2 == 0 else (CheckStatus.CRITICAL, CheckStatus.OK)
        writer.handle(StateChange(f"s/d{i % 7}/c", "s", 1.7e9 + i, old, new, True, f"n={i}"))
        i += 1
        time.sleep(0.002)
    """
)


def test_kill_9_loses_no_committed_transition(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_SCRIPT, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    committed = 0
    for line in proc.stdout:
        committed = int(line.split()[1])
        if committed >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert committed >= 300
    store = SqliteStore(path)  # recovers the WAL as a normal open does
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = store.transitions(0, 2e9, hard_only=False)
    assert len(stored) >= committed
    # every transition the writer reported committed is there, in order, none missing in between
    assert [t.reason for t in stored[:committed]] == [f"n={i}" for i in range(committed)]
    (run,) = store.runs(0, 2e9)
    assert run.stopped is None  # a killed collector leaves its run open: its heartbeat bounds it
    # the device's spans were committed with the transitions: the same as deriving them afresh
    spans = "SELECT start, stop, category, reason FROM device_spans ORDER BY device_id, start"
    kept = store.conn.execute(spans).fetchall()
    assert len(kept) > committed // 4
    store.rebuild_device_spans()
    assert store.conn.execute(spans).fetchall() == kept
    store.close()


def test_maintenance_add_end_audit_and_lookup(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = SqliteStore(path)
    one_off = MaintenanceWindow(0, "site", "bplp-31", T0, T0 + 7200, reason="UPS swap")
    fridays = MaintenanceWindow(
        0,
        "region",
        "ouest",
        T0,
        None,
        reason="weekly backup",
        days=("fri",),
        local_start="08:00",
        local_end="12:00",
        exclude_from_sla=False,
    )
    wid = store.add_maintenance(one_off, "amina", now=T0 - 60)
    rid = store.add_maintenance(fridays, "amina", now=T0 - 60)
    assert in_maintenance(path, "bplp-31", T0 + 60) is not None
    assert in_maintenance(path, "bplp-16", T0 + 60) is None
    friday_9am = T0 + 86400 + 8 * 3600  # Friday 2 Jan 09:00 Algiers
    assert in_maintenance(path, "bplp-16", friday_9am, region="ouest").id == rid  # type: ignore[union-attr]
    assert in_maintenance(path, "bplp-16", friday_9am + 4 * 3600, region="ouest") is None
    schedule = MaintenanceSchedule(path, regions={"bplp-16": "ouest"})
    assert schedule.active("bplp-16", friday_9am) is not None
    ended = store.end_maintenance(wid, "karim", now=T0 + 1800)
    assert ended.end == T0 + 1800 and ended.ended_by == "karim"
    with pytest.raises(StoreError, match="already ended"):
        store.end_maintenance(wid, "karim", now=T0 + 1900)
    audit = store.audit_log()
    assert [(a.action, a.who, a.window_id) for a in audit] == [
        ("end", "karim", wid),
        ("add", "amina", rid),
        ("add", "amina", wid),
    ]
    assert audit[2].details["reason"] == "UPS swap"
    # two weeks of Fridays, 4 h each
    week2 = window_intervals(store.maintenance_windows()[1], T0, T0 + 14 * 86400)
    assert [(e - s) / 3600 for s, e in week2] == [4.0, 4.0]
    store.close()


def test_history_reader_for_the_dashboard(tmp_path: Path) -> None:
    from bibnet_ops.inventory._model import Inventory
    from bibnet_ops.model import Site
    from bibnet_ops.store import HistoryReader

    path = tmp_path / "h.db"
    now = time.time()
    with StoreWriter(path, flush_interval=0.02) as writer:
        for i in range(30):
            writer.handle(Sample(CHECK, CheckStatus.OK, latency=0.001 * i, value=float(i), time=now - 3600 + 120 * i))
        writer.handle(SiteStatusChange("bplp-31", now - 7200, SiteStatus.UP, SiteStatus.UP))
        writer.handle(SiteStatusChange("bplp-31", now - 1800, SiteStatus.UP, SiteStatus.DOWN, "router"))
        writer.handle(StateChange(CHECK, "bplp-31", now - 1700, CheckStatus.OK, CheckStatus.CRITICAL, False))
    reader = HistoryReader(path)
    line = reader.sparkline(CHECK, now - 3660, now - 60, points=30, field="value")
    assert len(line) == 30 and line[0] == 0.0 and line[29] == 29.0
    events = reader.recent_events(10, site_id="bplp-31")
    assert [(e.subject, e.new, e.site) for e in events[:2]] == [(CHECK, "CRITICAL", False), ("bplp-31", "DOWN", True)]
    inv = Inventory(root=tmp_path, sites={"bplp-31": Site("bplp-31", "Oran")})
    uptime = reader.site_uptime(inv, "bplp-31", hours=1, now=now)
    # the writer ran only a moment ago: the hour before it is unknown, not up
    assert uptime.unknown_min > 55 and uptime.outages <= 1


def test_hard_changes_are_the_hard_transitions_per_check(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.db")
    store.register_checks([CheckInfo("s/d/a", "s", "d"), CheckInfo("s/d/b", "s", "d")])
    rows = [
        Transition("s/d/a", 50.0, "UNKNOWN", "OK", True, "first"),
        Transition("s/d/a", 90.0, "OK", "CRITICAL", True, "before"),
        Transition("s/d/a", 100.0, "CRITICAL", "OK", True, "at since"),
        Transition("s/d/a", 150.5, "OK", "CRITICAL", False, "soft"),
        Transition("s/d/a", 160.25, "OK", "CRITICAL", True, "hard"),
        Transition("s/d/b", 160.25, "UNKNOWN", "WARNING", True, "b"),
        Transition("s/d/a", 160.25, "CRITICAL", "OK", True, "same time"),
        Transition("s/d/a", 300.0, "OK", "CRITICAL", True, "after"),
    ]
    store.write_batch(rows, [], [])
    changes = store.hard_changes(100.0, 300.0)
    expected: dict[str, list[tuple[float, str, str]]] = {}
    for tr in store.transitions(100.0, 300.0, hard_only=True):
        expected.setdefault(tr.check_id, []).append((tr.time, tr.new, tr.reason))
    assert changes == expected
    assert changes["s/d/a"] == [(90.0, "CRITICAL", "before"), (100.0, "OK", "at since"),
                                (160.25, "CRITICAL", "hard"), (160.25, "OK", "same time")]
    assert store.hard_changes(100.0, 300.0, ["s/d/b"]) == {"s/d/b": [(160.25, "WARNING", "b")]}
    store.close()


def test_bucket_top_is_the_largest_bucket_maxima(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.db", retention=KEEP)
    rows = []
    for i, check in enumerate(("a/oai/sync", "b/oai/sync", "c/oai/sync")):
        for hour in range(40):
            for value in (float((hour * 37 + i * 11) % 53), 0.5 * hour):
                agg = Agg()
                agg.add(CheckStatus.OK, 0.01, value, None)
                rows.append(("hour", check, bucket_of("hour", T0) + hour, agg))
    store.write_batch([], [], rows)
    since, until = T0 + 3 * 3600, T0 + 30 * 3600  # 27 buckets of each check
    maxima = store.bucket_maxima("hour", since, until, ["a/oai/sync", "c/oai/sync"])
    assert store.bucket_counts("hour", since, until, ["a/oai/sync", "c/oai/sync", "x"]) == {
        "a/oai/sync": 27,
        "c/oai/sync": 27,
    }
    values = sorted(v for vs in maxima.values() for v in vs)
    assert store.bucket_top("hour", since, until, ["a/oai/sync", "c/oai/sync"], 5) == values[::-1][:5]
    assert store.bucket_top("hour", since, until, ["c/oai/sync"], 3) == sorted(maxima["c/oai/sync"])[::-1][:3]
    store.close()
