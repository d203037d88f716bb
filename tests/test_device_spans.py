"""Device spans: the store's per-device worst-of timeline gives the same reports as the transitions.

A report by device or kind reads the spans the writer keeps (one row per device outage) where it can,
and the check transitions elsewhere; both must give byte-identical reports, whatever order the
transitions arrive in, for stores of the current schema and for older ones migrated to it.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from bibnet_ops.inventory._model import CheckTemplate, Inventory, TemplateCheck
from bibnet_ops.model import CheckSpec, Device, Site
from bibnet_ops.reports import build_report, render_report
from bibnet_ops.store import SCHEMA_VERSION, MaintenanceWindow, Retention, SqliteStore, Transition
from bibnet_ops.store._schema import MIGRATIONS

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC, 01:00 in Algiers
DAY = 86400.0
TEMPLATES = {
    "ils-server": ("ils", ["opac", "sru", "tls"]),
    "router": ("router", ["ping"]),
    "book-scanner": ("scanner", ["uptime", "pages"]),
}
# each site has one device of each template; s2/scanner never reports a hard state
SITES = ["s1", "s2"]
STATES = ["OK", "WARNING", "CRITICAL", "CRITICAL", "UNKNOWN", "PENDING"]


def make_inventory(root: Path) -> Inventory:
    templates = {
        name: CheckTemplate(name, kind, "", tuple(TemplateCheck(c, "http", "") for c in checks))
        for name, (kind, checks) in TEMPLATES.items()
    }
    devices = tuple(Device(name.split("-")[0], name, "x") for name in TEMPLATES)
    sites = {sid: Site(sid, f"Bibliothèque {sid}", f"مكتبة {sid}", 16, "centre", devices=devices) for sid in SITES}
    checks = [
        CheckSpec(sid, d.id, c, "http", "x", template=d.template)
        for sid in SITES
        for d in devices
        for c in TEMPLATES[d.template][1]
    ]
    return Inventory(
        root=root, name="test", sites=sites, templates=templates, checks=checks, settings={"sla": {"target": 99.0}}
    )


def random_history(rng: random.Random, inventory: Inventory) -> list[Transition]:
    """Hard and soft changes of every check, many of a device's at the same millisecond, some before the
    reports' periods; plus a check the inventory no longer has (its device must be read from transitions)."""
    ids = [c.id for c in inventory.checks if not c.id.startswith("s2/book/")] + ["s2/router/extra"]
    out = []
    for check in ids:
        for _ in range(rng.randint(5, 40)):
            if rng.random() < 0.4:  # on a coarse grid: several checks of a device change together
                t = T0 + rng.randint(-2 * 4, 12 * 4) * 21600.0
            else:
                t = T0 + round(rng.uniform(-2 * DAY, 12 * DAY), 3)
            out.append(Transition(check, t, "OK", rng.choice(STATES), rng.random() < 0.7, f"{check} at {t}"))
    for device in {c.rsplit("/", 1)[0] for c in ids}:  # a common cause: every check of a device fails at once
        for _ in range(3):
            t = T0 + round(rng.uniform(-DAY, 11 * DAY), 3)
            out += [Transition(c, t, "OK", "CRITICAL", True, f"{c} cut") for c in ids if c.startswith(device + "/")]
    out += [Transition(f"s2/book/{c}", T0 + DAY, "OK", "CRITICAL", False, "soft only") for c in ("uptime", "pages")]
    return out


def write_out_of_order(store: SqliteStore, rng: random.Random, transitions: list[Transition]) -> None:
    """Batches in time order, except that a fifth of the transitions arrive a few batches late."""
    ordered = sorted(transitions, key=lambda tr: tr.time)
    batches: list[list[Transition]] = [[] for _ in range(12)]
    for i, tr in enumerate(ordered):
        k = i * len(batches) // len(ordered)
        batches[min(len(batches) - 1, k + (rng.randint(1, 4) if rng.random() < 0.2 else 0))].append(tr)
    for batch in batches:
        rng.shuffle(batch)
        store.write_batch(batch, [], [])


def fill(store: SqliteStore, seed: int, inventory: Inventory) -> None:
    rng = random.Random(seed)
    run = store.start_run(T0 - 3 * DAY, "host", 1)
    store.heartbeat(run, T0 + 5 * DAY, stopped=True)
    run = store.start_run(T0 + 5 * DAY + 7200, "host", 2)
    store.heartbeat(run, T0 + 12 * DAY)  # killed: its heartbeat bounds it
    window = MaintenanceWindow(0, "site", "s1", T0 + 2 * DAY + 3600, T0 + 2 * DAY + 5 * 3600, reason="onduleur")
    store.add_maintenance(window, "amina", T0)
    write_out_of_order(store, rng, random_history(rng, inventory))


def as_version_2(path: Path, dest: Path) -> None:
    """The same history in a store of schema version 2 (before device spans), as an older bibnet-ops left it."""
    conn = sqlite3.connect(dest, isolation_level=None)
    for script in MIGRATIONS[:2]:
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("ATTACH DATABASE ? AS src", (str(path),))
    conn.execute("INSERT INTO meta SELECT * FROM src.meta WHERE key = 'timezone'")
    for table in ("checks", "transitions", "runs", "maintenance", "audit"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    conn.execute("DETACH DATABASE src")
    conn.close()


def spans_of(store: SqliteStore) -> list[tuple[object, ...]]:
    return store.conn.execute(
        "SELECT d.site, d.device, s.start, s.stop, s.category, s.reason FROM device_spans s "
        "JOIN devices d ON d.id = s.device_id ORDER BY d.site, d.device, s.start"
    ).fetchall()


PERIODS = [
    (date(2026, 1, 1), date(2026, 1, 10), T0 + 20 * DAY),
    (date(2026, 1, 3), date(2026, 1, 3), T0 + 20 * DAY),
    (date(2026, 1, 2), date(2026, 1, 31), T0 + 9.5 * DAY + 0.0004),  # "now" between two milliseconds
    (date(2026, 1, 5), date(2026, 1, 12), T0 + 8 * DAY + 21600.0),  # "now" on a change of the grid
]


def reports(store: SqliteStore, inventory: Inventory) -> list[str]:
    out = []
    for first, last, now in PERIODS:
        for by in ("device", "kind"):
            for hours in ("opening", "24x7"):
                report = build_report(store, inventory, first, last, by=by, hours=hours, now=now)
                out.append(str(render_report(report, "json")))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spans_give_the_reports_the_transitions_give(tmp_path: Path, seed: int) -> None:
    inventory = make_inventory(tmp_path)
    store = SqliteStore(tmp_path / "h.db")
    fill(store, seed, inventory)
    as_version_2(tmp_path / "h.db", tmp_path / "v2.db")
    current, older = SqliteStore(tmp_path / "h.db", readonly=True), SqliteStore(tmp_path / "v2.db", readonly=True)
    spans = current.device_spans(T0, T0 + 20 * DAY)
    assert spans is not None and older.device_spans(T0, T0 + 20 * DAY) is None
    # the history has what the comparison must cover: outages started by several checks at once,
    # a device the inventory lacks a check of, one that never had a hard state
    assert any(reason is None and category == 0 for *_, category, reason in spans_of(store))
    assert "s2/router/extra" in spans.checks["s2/router"] and "s2/book" not in spans.known
    by_spans, by_transitions = reports(current, inventory), reports(older, inventory)
    assert any('"outages": [\n    {' in r for r in by_spans)
    for mine, theirs in zip(by_spans, by_transitions, strict=True):
        assert mine == theirs
    # kept as transitions arrived out of order = derived from all of them at once (the migration)
    store.close()
    current.close()
    older.close()
    migrated = SqliteStore(tmp_path / "v2.db")
    assert migrated.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    kept = SqliteStore(tmp_path / "h.db")
    assert spans_of(migrated) == spans_of(kept) and len(spans_of(kept)) > 20
    assert reports(migrated, inventory) == by_transitions
    migrated.close()
    kept.close()


def test_a_device_outage_is_one_row_with_the_reason_that_began_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.db")
    a, b = "s1/ils/opac", "s1/ils/sru"
    store.write_batch(
        [Transition(a, T0, "UNKNOWN", "OK", True, "first"), Transition(b, T0, "UNKNOWN", "OK", True)], [], []
    )
    store.write_batch([Transition(a, T0 + 60, "OK", "CRITICAL", True, "HTTP 503")], [], [])
    store.write_batch([Transition(b, T0 + 90, "OK", "CRITICAL", True, "timeout")], [], [])
    store.write_batch([Transition(a, T0 + 120, "CRITICAL", "OK", True, "back")], [], [])
    # arriving late: b was back before a went down again, then both fail at the same moment
    store.write_batch([Transition(b, T0 + 100, "CRITICAL", "OK", True, "back")], [], [])
    store.write_batch(
        [Transition(a, T0 + 300, "OK", "CRITICAL", True, "x"), Transition(b, T0 + 300, "OK", "CRITICAL", True, "y")],
        [],
        [],
    )
    ms = int(T0 * 1000)
    assert spans_of(store) == [
        ("s1", "ils", -(2**62), ms, 1, None),  # unknown before the first result
        ("s1", "ils", ms + 60_000, ms + 120_000, 0, "HTTP 503"),
        ("s1", "ils", ms + 300_000, None, 0, None),  # two checks began it: the report decides whose reason
    ]
    store.close()


def test_transition_retention_keeps_each_checks_state(tmp_path: Path) -> None:
    inventory = make_inventory(tmp_path)
    store = SqliteStore(tmp_path / "h.db", retention=Retention(None, None, None, transitions_days=15))
    fill(store, 4, inventory)
    late = (date(2026, 1, 7), date(2026, 1, 12), T0 + 12 * DAY)
    before = [
        str(render_report(build_report(store, inventory, *late[:2], by=by, now=late[2]), "json"))
        for by in ("device", "kind")
    ]
    total = store.conn.execute("SELECT count(*) FROM transitions").fetchone()[0]
    while store.apply_retention(T0 + 20 * DAY) is not None:  # cutoff: T0 + 5 days
        pass
    left = store.conn.execute("SELECT count(*) FROM transitions WHERE t < ?", (int((T0 + 5 * DAY) * 1000),)).fetchone()
    assert 0 < left[0] < total // 3  # the last hard change of each check before the cutoff stays
    # after the cutoff the figures do not change, from the spans or from the transitions left
    as_version_2(tmp_path / "h.db", tmp_path / "v2.db")
    older = SqliteStore(tmp_path / "v2.db", readonly=True)
    for reader in (store, older):
        after = [
            str(render_report(build_report(reader, inventory, *late[:2], by=by, now=late[2]), "json"))
            for by in ("device", "kind")
        ]
        assert after == before
    # before it, the transitions are gone: reports read what is left of them, not the spans
    assert store.device_spans(T0 + 6 * DAY, T0 + 12 * DAY) is not None
    assert store.device_spans(T0, T0 + 12 * DAY) is None
    older.close()
    store.close()


def test_a_rebuild_elsewhere_leaves_the_writers_devices_valid(tmp_path: Path) -> None:
    # a bulk import's rebuild in another connection must not pull device ids from under the collector's
    inventory = make_inventory(tmp_path)
    writer = SqliteStore(tmp_path / "h.db")
    fill(writer, 5, inventory)
    other = SqliteStore(tmp_path / "h.db")
    other.rebuild_device_spans()
    other.close()
    late = T0 + 13 * DAY
    writer.write_batch([Transition("s1/router/ping", late, "CRITICAL", "OK", True, "back")], [], [])
    writer.write_batch([Transition("s1/router/ping", late + 60, "OK", "CRITICAL", True, "cable")], [], [])
    kept = spans_of(writer)
    writer.rebuild_device_spans()
    assert spans_of(writer) == kept and ("s1", "router", int(late * 1000) + 60_000, None, 0, "cable") in kept
    writer.close()
