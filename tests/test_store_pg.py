"""The PostgreSQL history store against a real PostgreSQL server: same history, same reports, same API.

Every test gets an empty database of its own on the session's server (`pg_dsn`, tests/_postgres.py).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from test_report import SAT, SUN, at, make_inventory

from bibnet_ops.alerts import AlertLog
from bibnet_ops.events import SiteStatusChange, StateChange
from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.reports import build_report, render_report
from bibnet_ops.store import (
    CheckInfo,
    HistoryReader,
    HistoryStore,
    MaintenanceSchedule,
    MaintenanceWindow,
    PgStore,
    SchemaTooNewError,
    SiteTransition,
    SqliteStore,
    StoreError,
    StoreUnreachableError,
    StoreWriter,
    Transition,
    open_store,
    redact_dsn,
    resolve_store,
)
from bibnet_ops.store._rollup import Agg, bucket_of

GROUPINGS = ("site", "region", "kind", "device", "check")
FORMATS = ("csv", "json", "md", "html")


def _agg(rng: random.Random, value: float | None = None, delta: float | None = None, n: int = 1) -> Agg:
    agg = Agg()
    for _ in range(n):
        status = CheckStatus.CRITICAL if rng.random() < 0.1 else CheckStatus.OK
        agg.add(status, rng.uniform(0.001, 0.9), value if value is not None else rng.uniform(0, 500), delta)
    return agg


def fill(store: HistoryStore, seed: int = 3) -> None:
    """Ten days of a small network's history, written through the store's API as the writer does."""
    rng = random.Random(seed)
    inv = make_inventory(Path("."))
    store.register_checks(CheckInfo(c.id, c.site_id, c.device_id, c.metric, "scanner" if "scanner" in c.id else "oai")
                          for c in inv.checks)
    run = store.start_run(at(1, "00:00"), "oran-1", 100)
    store.heartbeat(run, at(3, "13:00"), stopped=False)  # killed: known to run until its last heartbeat
    run = store.start_run(at(3, "14:30"), "oran-1", 101)
    store.heartbeat(run, at(12, "00:00"), stopped=True)
    checks = [c.id for c in inv.checks]
    start = at(1, "00:00")
    store.write_batch([Transition(c, start - 60, "UNKNOWN", "OK", True, "first result") for c in checks],
                      [SiteTransition(s, start - 60, "UNKNOWN", "UP", "first status") for s in inv.sites], [])
    state = dict.fromkeys(checks, "OK")
    site_state = dict.fromkeys(inv.sites, "UP")
    t = start
    while t < at(11, "00:00"):
        t += rng.uniform(600, 7200)
        t = round(t, 3)
        batch: list[Transition] = []
        # sometimes two checks change at the same millisecond (their order must survive the store)
        for check in rng.sample(checks, rng.choice((1, 1, 2))):
            new = rng.choice([s for s in ("OK", "CRITICAL", "WARNING", "UNKNOWN") if s != state[check]])
            hard = rng.random() < 0.7
            batch.append(Transition(check, t, state[check], new, hard, f"reason {rng.randint(0, 99)}",
                                    flapping=rng.random() < 0.05))
            if hard:
                state[check] = new
        sites = []
        if rng.random() < 0.3:
            site = rng.choice(list(inv.sites))
            new = rng.choice([s for s in ("UP", "DOWN", "UNREACHABLE", "DEGRADED") if s != site_state[site]])
            sites.append(SiteTransition(site, t, site_state[site], new, "site reason",
                                        rng.choice([None, "bplp-16"]) if new == "UNREACHABLE" else None))
            site_state[site] = new
        store.write_batch(batch, sites, [], flapping=[(batch[0].check_id, t, True, 33.3)] if rng.random() < 0.1 else [])
    rollups = []
    for day in range(bucket_of("day", at(1, "12:00")), bucket_of("day", at(11, "12:00"))):
        for sid in inv.sites:
            rollups.append(("day", f"{sid}/scanner-1/pages", day, _agg(rng, delta=float(rng.randint(0, 3000)))))
    for hour in range(bucket_of("hour", at(2, "00:00")), bucket_of("hour", at(6, "00:00"))):
        for sid in inv.sites:
            rollups.append(("hour", f"{sid}/oai/sync", hour, _agg(rng, value=float(rng.randint(60, 7200)), n=3)))
    store.write_batch([], [], rollups)
    store.write_batch([], [], rollups[:5])  # merged into the buckets already there
    store.add_maintenance(MaintenanceWindow(0, "site", "bplp-16", at(4, "09:00"), at(4, "11:00"), "onduleur"),
                          "amina", at(2, "12:00"))
    wid = store.add_maintenance(MaintenanceWindow(0, "region", "ouest", at(1, "00:00"), None, "sauvegarde",
                                                  exclude_from_sla=False, days=("fri", "sat"), local_start="22:00",
                                                  local_end="02:00"), "karim", at(1, "00:00"))
    store.end_maintenance(wid, "karim", at(9, "00:00"))


@pytest.fixture
def both(tmp_path: Path, pg_dsn: str) -> tuple[HistoryStore, HistoryStore]:
    """The same history written into a SQLite file and into PostgreSQL."""
    lite, pg = open_store(tmp_path / "h.db"), open_store(pg_dsn)
    for store in (lite, pg):
        fill(store)
        store.close()
    return open_store(tmp_path / "h.db", readonly=True), open_store(pg_dsn, readonly=True)


def test_reports_are_the_same_bytes_from_either_store(tmp_path: Path, both: tuple[HistoryStore, HistoryStore]) -> None:
    lite, pg = both
    assert isinstance(pg, PgStore) and isinstance(lite, SqliteStore)
    inv = make_inventory(tmp_path)
    compared = 0
    for by in GROUPINGS:
        for hours in ("opening", "24x7"):
            reports = [build_report(s, inv, SAT, SUN.replace(day=10), by=by, hours=hours, now=at(10, "18:00"))
                       for s in (lite, pg)]
            assert reports[0].rows, f"no rows by {by}"
            for fmt in FORMATS:
                a, b = (render_report(r, fmt) for r in reports)
                assert a == b, f"report by {by}, {hours}, {fmt} differs between SQLite and PostgreSQL"
                compared += 1
    assert compared == len(GROUPINGS) * 2 * len(FORMATS)
    # the history is not trivial: outages, maintenance, a collector gap and pages all show
    report = build_report(pg, inv, SAT, SUN.replace(day=10), by="site", hours="24x7", now=at(10, "18:00"))
    assert report.outages and report.maintenance and report.unknown_periods
    assert report.total is not None and report.total.pages


def test_every_read_gives_the_same_answer(both: tuple[HistoryStore, HistoryStore]) -> None:
    lite, pg = both
    since, until = at(3, "00:00"), at(8, "00:00")
    assert pg.checks() == lite.checks()
    assert pg.transitions(since, until, hard_only=False) == lite.transitions(since, until, hard_only=False)
    some = [c.check_id for c in lite.checks()][:3]
    assert pg.transitions(since, until, some) == lite.transitions(since, until, some)
    assert pg.hard_changes(since, until) == lite.hard_changes(since, until)
    assert list(pg.hard_changes(since, until)) == list(lite.hard_changes(since, until))
    assert pg.site_transitions(since, until) == lite.site_transitions(since, until)
    assert pg.site_transitions(since, until, ["bplp-31"]) == lite.site_transitions(since, until, ["bplp-31"])
    assert pg.device_spans(since, until) == lite.device_spans(since, until) is not None
    for tier in ("hour", "day"):
        assert pg.rollups(tier, since, until) == lite.rollups(tier, since, until)
        ids = [c.check_id for c in lite.checks()]
        assert pg.delta_sums(tier, since, until, ids) == lite.delta_sums(tier, since, until, ids)
        assert pg.bucket_maxima(tier, since, until, ids) == lite.bucket_maxima(tier, since, until, ids)
        assert pg.bucket_counts(tier, since, until, ids) == lite.bucket_counts(tier, since, until, ids)
        assert pg.bucket_top(tier, since, until, ids, 7) == lite.bucket_top(tier, since, until, ids, 7)
        assert pg.oldest_bucket(tier, ids) == lite.oldest_bucket(tier, ids)
    assert pg.runs(since, until) == lite.runs(since, until)
    assert pg.maintenance_windows() == lite.maintenance_windows()
    assert pg.audit_log() == lite.audit_log()
    assert pg.recent_transitions(20) == lite.recent_transitions(20)
    assert pg.recent_site_transitions(20, "bplp-16") == lite.recent_site_transitions(20, "bplp-16")
    assert pg.counters() == lite.counters()


def test_writer_thread_records_engine_events_in_postgres(pg_dsn: str) -> None:
    now = time.time()
    with StoreWriter(pg_dsn, checks=[CheckInfo("s1/r/ping", "s1", "r", "latency", "router")],
                     flush_interval=0.05) as writer:
        writer.handle(StateChange("s1/r/ping", "s1", now - 2, CheckStatus.OK, CheckStatus.CRITICAL, True,
                                  "timeout after 2 s", 3, 3))
        writer.handle(SiteStatusChange("s1", now - 2, SiteStatus.UP, SiteStatus.DOWN, "router down"))
        writer.flush()
        assert str(writer.target) == pg_dsn.replace("test-superuser-secret", "***")
    reader = HistoryReader(pg_dsn)
    events = reader.recent_events(10)
    assert sorted((e.subject, e.new, e.reason) for e in events) == [
        ("s1", "DOWN", "router down"), ("s1/r/ping", "CRITICAL", "timeout after 2 s")
    ]
    store = open_store(pg_dsn, readonly=True)
    try:
        (run,) = store.runs(now - 60, now + 60)
        assert run.stopped is not None  # closed cleanly
        spans = store.device_spans(now - 60, now + 60)
        assert spans is not None and spans.spans["s1/r"][-1][2:] == ("down", "timeout after 2 s")
    finally:
        store.close()


def test_maintenance_schedule_and_alert_log_on_postgres(pg_dsn: str) -> None:
    now = time.time()
    store = open_store(pg_dsn)
    store.add_maintenance(MaintenanceWindow(0, "region", "ouest", now - 60, now + 3600, "fibre"), "amina", now)
    store.close()
    schedule = MaintenanceSchedule(pg_dsn, {"bplp-31": "ouest", "bplp-16": "centre"})
    assert schedule.active("bplp-31") is not None and schedule.active("bplp-16") is None
    log = AlertLog(pg_dsn)
    alert = log.open_alert("site:bplp-31", "bplp-31", None, "DOWN", now - 5, now, "router down", ["bplp-32"])
    delivery = log.add_delivery(alert, "ops-mail", "email", now)
    log.finish_delivery(delivery, "sent", 1, now + 1)
    (ack,) = log.add_acks(["site:bplp-31"], "karim", "on site", now, sticky=True)
    (again,) = log.add_acks(["site:bplp-31"], "amina", "taking over", now + 1)
    assert again.id != ack.id and log.active_acks(now + 2)["site:bplp-31"].author == "amina"
    log.end_acks(["site:bplp-31"], "amina", now + 3)
    log.close_alert(alert, now + 4)
    log.close()
    reader = AlertLog(pg_dsn, readonly=True)
    try:
        (record,) = reader.alerts()
        assert record.closed_at == pytest.approx(now + 4, abs=0.001) and record.affected == ("bplp-32",)
        assert [d.outcome for d in reader.deliveries(alert)] == ["sent"]
        assert reader.active_acks(now + 5) == {}
        assert [a.action for a in reader.audit_log()] == ["unack", "ack", "ack"]
        with pytest.raises(StoreError, match="read-only"):
            reader.add_acks(["site:bplp-16"], "x", "y", now)
    finally:
        reader.close()


def test_a_store_of_a_newer_schema_is_refused(pg_server, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    open_store(pg_dsn).close()
    pg_server.sql("INSERT INTO schema_version VALUES (42, 0)", pg_dsn.rsplit("/", 1)[1])
    for readonly in (False, True):
        with pytest.raises(SchemaTooNewError, match=r"has schema version 42, but this bibnet-ops only knows up to"):
            open_store(pg_dsn, readonly=readonly)


def test_errors_name_the_store_without_its_password(pg_server, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    secret = pg_dsn.split(":")[2].split("@")[0]
    wrong = pg_dsn.replace(secret, "not-the-password")
    with pytest.raises(StoreError) as refused:
        open_store(wrong)
    assert "password authentication failed" in str(refused.value) and "not-the-password" not in str(refused.value)
    assert not isinstance(refused.value, StoreUnreachableError)
    with pytest.raises(StoreUnreachableError, match="nothing listening there"):
        open_store(f"postgresql://ops:{secret}@127.0.0.1:1/bibnet")
    with pytest.raises(StoreError, match="not a bibnet-ops history store"):
        open_store(pg_server.dsn(pg_server.create_database()), readonly=True)
    assert redact_dsn("postgresql://ops:s3cr%40t@db:5432/bib?sslmode=require") == \
        "postgresql://ops:***@db:5432/bib?sslmode=require"
    assert redact_dsn("host=db password='a b' user=ops") == "host=db password=*** user=ops"
    target = resolve_store(pg_dsn)
    assert secret not in str(target) and secret not in repr(target)


def test_store_password_reference_from_the_config(pg_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from _postgres import SUPERPASS

    url = pg_server.dsn(pg_server.create_database(), password=None)
    settings = {"collector": {"store": url, "store_password": "env:BIBNET_TEST_PGPASS"}}
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("BIBNET_TEST_PGPASS", SUPERPASS)
    target = resolve_store(None, settings, "/etc/bibnet")
    assert target.is_postgres and target.password is not None
    open_store(target).close()
    monkeypatch.delenv("BIBNET_TEST_PGPASS")
    with pytest.raises(StoreError, match="store_password: environment variable BIBNET_TEST_PGPASS is not set"):
        open_store(resolve_store(None, settings, "/etc/bibnet"))
    monkeypatch.setenv("PGPASSWORD", SUPERPASS)  # libpq's own source, without any reference
    open_store(url, readonly=True).close()


def test_retention_deletes_old_rows_and_keeps_each_checks_state(pg_dsn: str) -> None:
    from bibnet_ops.store import Retention

    now = at(20, "00:00")
    store = open_store(pg_dsn, retention=Retention(minute_days=1, hour_days=2, day_days=5, transitions_days=3))
    fill(store)
    before = store.hard_changes(at(1, "00:00"), now)
    while store.apply_retention(now) is not None:
        pass
    assert store.rollups("day", 0, now) == [] and store.rollups("hour", 0, now) == []
    after = store.transitions(at(16, "00:00"), now)
    # each check keeps its last hard transition: its state after the cutoff
    assert {t.check_id: t.new for t in after} == {c: changes[-1][1] for c, changes in before.items()}
    assert store.device_spans(at(1, "00:00"), now) is None  # the spans no longer match deleted transitions
    store.close()


def test_retention_cuts_packed_rollups_where_sqlite_does(tmp_path: Path, pg_dsn: str) -> None:
    from bibnet_ops.store import Retention

    # cutoffs inside the rollup chunks: 3.5 days of hours, 3.3 days of days
    retention = Retention(minute_days=1, hour_days=3.5, day_days=3.3)
    now = at(7, "10:00")
    stores = [open_store(tmp_path / "r.db", retention=retention), open_store(pg_dsn, retention=retention)]
    for store in stores:
        fill(store)
        while store.apply_retention(now) is not None:
            pass
    lite, pg = stores
    ids = [c.check_id for c in lite.checks()]
    for tier in ("hour", "day"):
        kept = lite.rollups(tier, 0, at(20, "00:00"))
        assert kept and kept[0].start >= now - 3.5 * 86400 - 86400
        assert pg.rollups(tier, 0, at(20, "00:00")) == kept
        assert pg.oldest_bucket(tier, ids) == lite.oldest_bucket(tier, ids) == min(r.start for r in kept)
        assert pg.delta_sums(tier, 0, now, ids) == lite.delta_sums(tier, 0, now, ids)
    for store in stores:
        store.close()


def test_chunk_encoding_round_trips_every_kind_of_value() -> None:
    from bibnet_ops.store._pg_rollups import decode_chunk, encode_chunk

    rows = {
        0: (1, 0, None, None, 12, None, None, None, 5000.0, None, None, None),
        3: (1440, 3, 1400, 1, 10**12, 99999, 7, -2.0e12, 123456789.0, 9.0e15, -1.0, 1234.5),
        59: (2, 2, 0, None, None, None, 0, None, None, None, None, 0.0),
    }
    n, peak, delta, aggs = encode_chunk(rows, 60)
    assert peak[3] == 9.0e15 and peak[0] == 5000.0 and peak[59] is None and delta is not None
    assert decode_chunk(n, delta, aggs) == rows


def test_a_sqlite_history_imported_into_postgres_reads_the_same(tmp_path: Path, pg_dsn: str) -> None:
    from bibnet_ops.store import import_sqlite

    lite = open_store(tmp_path / "region.db")
    fill(lite, seed=9)
    lite.close()
    counts = import_sqlite(tmp_path / "region.db", pg_dsn)
    assert counts["rollup_day"] == 20 and counts["rollup_hour"] == 192 and counts["transitions"] > 100
    lite, pg = open_store(tmp_path / "region.db", readonly=True), open_store(pg_dsn)
    since, until = at(1, "00:00"), at(12, "00:00")
    assert pg.rollups("hour", since, until) == lite.rollups("hour", since, until)
    assert pg.transitions(since, until, hard_only=False) == lite.transitions(since, until, hard_only=False)
    assert pg.device_spans(since, until) == lite.device_spans(since, until)
    inv = make_inventory(tmp_path)
    a, b = (render_report(build_report(s, inv, SAT, SUN, by="kind", now=at(10, "18:00")), "csv") for s in (lite, pg))
    assert a == b
    # the store goes on from there: new ids follow the imported ones
    pg.add_maintenance(MaintenanceWindow(0, "all", "", until, until + 60, "test"), "me", until)
    assert [w.id for w in pg.maintenance_windows()] == [1, 2, 3]
    with pytest.raises(StoreError, match="already holds history"):
        import_sqlite(tmp_path / "region.db", pg_dsn)
    lite.close()
    pg.close()


def test_a_store_in_its_own_schema_through_the_url_options(pg_server, pg_dsn: str) -> None:  # type: ignore[no-untyped-def]
    pg_server.sql("CREATE SCHEMA bibnet", pg_dsn.rsplit("/", 1)[1])
    url = pg_dsn + "?options=-csearch_path%3Dbibnet"
    store = open_store(url)
    store.write_batch([Transition("a/r/ping", 1000.0, "OK", "CRITICAL", True, "down")], [], [])
    store.close()
    reader = open_store(url, readonly=True)
    assert [t.new for t in reader.transitions(0, 2000)] == ["CRITICAL"]
    reader.close()
    tables = pg_server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'bibnet'", pg_dsn.rsplit("/", 1)[1])
    assert tables[0][0] >= 18


def test_several_collectors_write_one_store_at_once(pg_dsn: str) -> None:
    import threading

    open_store(pg_dsn).close()  # schema created once, before the collectors start
    errors: list[BaseException] = []

    def collector(region: int) -> None:
        try:
            checks = [CheckInfo(f"s{region}-{i}/r/ping", f"s{region}-{i}", "r", "latency", "router") for i in range(20)]
            shared = [CheckInfo("hub/r/ping", "hub", "r", "latency", "router")]  # every collector registers it
            store = open_store(pg_dsn)
            store.register_checks(checks + shared)
            rng = random.Random(region)
            for k in range(30):
                t = 1000.0 + k
                batch = [Transition(c.check_id, t, "OK", "CRITICAL" if k % 2 else "OK", True, "x")
                         for c in rng.sample(checks, 5)]
                store.write_batch(batch, [], [("hour", c.check_id, 0, _agg(rng)) for c in checks[:10]])
            store.close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=collector, args=(r,)) for r in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    reader = open_store(pg_dsn, readonly=True)
    assert len(reader.checks()) == 81
    assert len(reader.transitions(0, 5000, hard_only=False)) == 4 * 30 * 5
    assert sum(r.count for r in reader.rollups("hour", 0, 3600)) == 4 * 30 * 10
    spans = reader.device_spans(0, 5000)
    assert spans is not None and len(spans.known) == 80
    reader.close()
