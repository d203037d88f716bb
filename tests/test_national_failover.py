"""Regional collectors as real processes sharing a group through leases in a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _postgres import SUPERPASS, SUPERUSER, PgServer

from bibnet_ops.inventory import load_inventory
from bibnet_ops.sim import Simulator
from bibnet_ops.sim._thread import SimulatorThread

REPO = Path(__file__).resolve().parent.parent
SITES = ["bna", "bplp-31", "bplp-13", "bplp-22", "bplp-46", "bplp-29"]


def fast_checks(target: Path) -> Path:
    """The shipped templates, polled every 2 s (retries every second) so a test sees several rounds."""
    shutil.copytree(REPO / "checks", target)
    for path in target.glob("*.toml"):
        text = re.sub(r"(?m)^retry_interval = \d+", "retry_interval = 1", path.read_text(encoding="utf-8"))
        path.write_text(re.sub(r"(?m)^interval = \d+", "interval = 2", text), encoding="utf-8")
    return target


@contextmanager
def network(tmp_path: Path) -> Iterator[tuple[Simulator, SimulatorThread, Path]]:
    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True)
    thread = SimulatorThread(sim)
    thread.start()
    try:
        config = sim.write_config(tmp_path / "config")
        checks = fast_checks(tmp_path / "checks")
        net = config / "network.toml"
        text = re.sub(r'(?m)^templates = .*$', f'templates = "{checks}"', net.read_text(encoding="utf-8"))
        regions = sorted({shipped.sites[s].region for s in SITES})
        text += f"\n[groups.nord]\nregions = {regions!r}\n".replace("'", '"')
        net.write_text(text, encoding="utf-8")
        yield sim, thread, config
    finally:
        thread.stop()


class Collectors:
    """`bibnet-ops collect` processes started by a test, stopped (or killed) at its end."""

    def __init__(self, config: Path, dsn: str, tmp: Path, sim: Simulator, thread: SimulatorThread) -> None:
        self.config, self.dsn, self.tmp = config, dsn, tmp
        self.sim, self.thread = sim, thread
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.every: list[subprocess.Popen[str]] = []

    def start(self, cid: str, *extra: str, delay: float = 6.0) -> subprocess.Popen[str]:
        log = open(self.tmp / f"{cid}.log", "a", encoding="utf-8")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "bibnet_ops", "--config", str(self.config), "collect", "--json",
             "--store", self.dsn, "--collector-id", cid, "--group", "nord", "--failover-delay", str(delay),
             "--outbox", str(self.tmp / f"outbox-{cid}.db"), *extra],
            stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        self.procs.setdefault(cid, proc)
        self.every.append(proc)
        return proc

    def fault(self, site: str, kind: str | None) -> None:
        """Inject a fault into the simulated site (None clears its faults)."""
        if kind is None:
            self.thread.call(self.sim.clear_fault, site=site)
        else:
            self.thread.call(self.sim.set_fault, site, kind)

    def kill(self, cid: str) -> None:
        self.procs[cid].send_signal(signal.SIGKILL)
        self.procs[cid].wait(10)

    def log(self, cid: str) -> str:
        return (self.tmp / f"{cid}.log").read_text(encoding="utf-8")

    def stop_all(self) -> None:
        for proc in self.every:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.every:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def events(log: str) -> list[dict[str, Any]]:
    """The JSON events a collector printed."""
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query; none while the first collector has not created the schema yet."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]
        except psycopg.errors.UndefinedTable:
            return []


def owners(dsn: str) -> dict[str, str | None]:
    return dict(query(dsn, "SELECT site, owner FROM national_leases"))  # type: ignore[arg-type]


def polls(dsn: str, site: str) -> int:
    """Samples the central store holds for a site's checks (hour rollups, forwarded every half second)."""
    rows = query(dsn, "SELECT coalesce(sum((SELECT sum(x) FROM unnest(r.n) x)), 0) FROM rollup_hour r "
                      "JOIN checks c ON c.id = r.check_id WHERE c.site = %s", site)
    return int(rows[0][0]) if rows else 0


def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture
def collectors(tmp_path: Path, pg_server: PgServer) -> Iterator[Collectors]:
    with network(tmp_path) as (sim, thread, config):
        group = Collectors(config, pg_server.dsn(pg_server.create_database()), tmp_path, sim, thread)
        try:
            yield group
        finally:
            group.stop_all()


def test_kill_9_hands_the_sites_to_the_other_collector_within_the_failover_delay(collectors: Collectors) -> None:
    dsn = collectors.dsn
    collectors.start("a")
    until(lambda: len(owners(dsn)) == len(SITES) and all(o == "a" for o in owners(dsn).values()), 60,
          "collector a to hold every site")
    collectors.start("b")
    # b joins: the sites are rebalanced, each site held by exactly one of them
    until(lambda: set(owners(dsn).values()) == {"a", "b"}, 60, "the group to be split between a and b")
    split = owners(dsn)
    mine = sorted(s for s, o in split.items() if o == "a")
    assert mine and len(mine) < len(SITES)
    until(lambda: all(polls(dsn, s) > 0 for s in SITES), 60, "every site polled")
    # one of a's sites is down (HARD) when a dies: b must continue the outage, not recover it or raise it again
    down = mine[0]
    opac = f"{down}/catalogue/opac"
    collectors.fault(down, "outage")
    until(lambda: query(dsn, "SELECT status, hard FROM national_check_state WHERE check_name = %s", opac)
          == [("CRITICAL", True)], 60, "the outage in the central store")
    before = {s: polls(dsn, s) for s in mine}
    collectors.kill("a")
    killed = time.monotonic()
    taken = until(lambda: all(o == "b" for o in owners(dsn).values()), 30, "b to take a's sites")
    until(lambda: all(polls(dsn, s) > before[s] for s in mine), 30, "a's sites polled by b")
    elapsed = time.monotonic() - killed
    # within the failover delay (6 s here), and polled (and forwarded) within a few seconds more on a busy machine
    assert taken <= 6.0 and elapsed <= 6.0 + 5.0, (taken, elapsed)
    assert "took" in collectors.log("b")
    time.sleep(3.0)  # b polls the down site a few times
    seen_by_b = [e for e in events(collectors.log("b")) if e.get("check") == opac]
    assert seen_by_b == [], seen_by_b  # no "OK" (false recovery), no second "CRITICAL" (duplicate problem)
    collectors.fault(down, None)
    until(lambda: any(e.get("check") == opac and e["new"] == "OK" for e in events(collectors.log("b"))), 30,
          "b to see the recovery")
    # no false recovery and no repeated problem: b continued a's states rather than starting from "OK"
    health = query(dsn, "SELECT health->>'takeovers' FROM national_collectors WHERE id = 'b'")[0][0]
    assert int(health) >= len(mine)


def test_a_collector_id_used_twice_is_refused(collectors: Collectors) -> None:
    dsn = collectors.dsn
    collectors.start("a")
    until(lambda: any(o == "a" for o in owners(dsn).values()), 60, "collector a to hold its sites")
    second = collectors.start("a", delay=6.0)
    assert second.wait(60) == 2
    log = collectors.log("a")
    assert "error: collector id 'a' is already in use by a running collector on" in log
    assert f"(pid {collectors.procs['a'].pid}, last heartbeat" in log
    assert collectors.procs["a"].poll() is None  # the first one runs on


def test_a_collector_cut_off_from_the_store_leaves_the_history_of_the_sites_taken_over(
        tmp_path: Path, pg_server: PgServer) -> None:
    """Collector a loses its link to PostgreSQL but not to its sites: b takes them over, a keeps polling into its
    outbox; when a's link is back, what a saw of them after b took them is dropped: one writer per site."""
    from _tcpproxy import TcpRelay

    dbname = pg_server.create_database()
    relay = TcpRelay((pg_server.host, pg_server.port))
    with network(tmp_path) as (sim, thread, config):
        direct = pg_server.dsn(dbname)
        group = Collectors(config, direct, tmp_path, sim, thread)
        try:
            group.dsn = f"postgresql://{SUPERUSER}:{SUPERPASS}@127.0.0.1:{relay.port}/{dbname}"
            group.start("a")
            group.dsn = direct
            until(lambda: len(owners(direct)) == len(SITES) and set(owners(direct).values()) == {"a"}, 60, "a")
            group.start("b")
            until(lambda: set(owners(direct).values()) == {"a", "b"}, 60, "the split")
            site = sorted(s for s, o in owners(direct).items() if o == "a")[0]
            opac = f"{site}/catalogue/opac"
            relay.cut()
            cut_at = time.time()
            until(lambda: owners(direct)[site] == "b", 30, "b to take the site of the cut-off collector")
            group.fault(site, "outage")
            # both poll it: a into its outbox, b into the central store
            until(lambda: any(e.get("check") == opac and e["hard"] for e in events(group.log("a"))), 60, "a sees it")
            until(lambda: query(direct, "SELECT status, hard FROM national_check_state WHERE check_name = %s", opac)
                  == [("CRITICAL", True)], 60, "b's outage in the central store")
            relay.restore()
            until(lambda: "queued row(s) of it dropped" in group.log("a"), 60, "a to drop its copy")
            group.stop_all()
            rows = query(direct, "SELECT t.t, t.new, t.hard FROM transitions t JOIN checks c ON c.id = t.check_id "
                                 "WHERE c.name = %s AND t.t >= %s ORDER BY t.t", opac, int(cut_at * 1000))
            hard_critical = [r for r in rows if r[1] == "CRITICAL" and r[2]]
            assert len(hard_critical) == 1, rows  # b's, not a's as well
        finally:
            group.stop_all()
            relay.close()


def test_a_reload_narrows_the_share_and_frees_the_sites_left(collectors: Collectors) -> None:
    dsn = collectors.dsn
    proc = collectors.start("a")
    until(lambda: len(owners(dsn)) == len(SITES) and set(owners(dsn).values()) == {"a"}, 60, "a to hold every site")
    net = collectors.config / "network.toml"
    text = net.read_text(encoding="utf-8")
    net.write_text(re.sub(r"(?s)\[groups\.nord\].*", '[groups.nord]\nsites = ["bna", "bplp-31"]\n', text),
                   encoding="utf-8")
    proc.send_signal(signal.SIGHUP)
    until(lambda: {s for s, o in owners(dsn).items() if o == "a"} == {"bna", "bplp-31"}, 30,
          "a to free the sites that left its share")
    assert "reloaded" in collectors.log("a")
    left = [s for s in SITES if s not in ("bna", "bplp-31")]
    before = {s: polls(dsn, s) for s in left}
    time.sleep(4)  # two rounds of 2 s checks: none of the sites left is polled any more
    assert {s: polls(dsn, s) for s in left} == before
