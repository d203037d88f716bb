"""Store-and-forward with real processes: PostgreSQL stopped, the collector killed during the outage, restarted,
the server back: every transition the outbox had committed reaches the central store once and in order."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from _postgres import run_postgres
from test_national_failover import SITES, Collectors, network, query, until


def outbox_transitions(path: Path) -> list[tuple[str, float, str]]:
    """(check, time, new state) of the transitions waiting in an outbox file, in outbox order."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT body FROM events WHERE kind = 't' ORDER BY seq").fetchall()
    return [(b[0], round(b[1] * 1000), b[3]) for b in (json.loads(r[0]) for r in rows)]  # ms, as stored


def central_transitions(dsn: str) -> list[tuple[str, float, str]]:
    rows = query(dsn, "SELECT c.name, t.t, t.new FROM transitions t JOIN checks c ON c.id = t.check_id ORDER BY t.id")
    return [(name, int(t), new) for name, t, new in rows]


def printed(log: str) -> list[tuple[str, str]]:
    """(check, new state) of the state changes a collector printed (--json)."""
    out = []
    for line in log.splitlines():
        if line.startswith("{") and '"event": "state"' in line:
            data = json.loads(line)
            out.append((data["check"], data["new"]))
    return out


def test_outage_kill_restart_replay_once_in_order(tmp_path: Path) -> None:
    with run_postgres() as server, network(tmp_path) as (sim, thread, config):
        dsn = server.dsn(server.create_database())
        group = Collectors(config, dsn, tmp_path, sim, thread)
        try:
            group.start("sud-1")
            until(lambda: len(query(dsn, "SELECT 1 FROM national_leases WHERE owner = 'sud-1'")) == len(SITES), 60,
                  "the collector to hold its sites")
            until(lambda: len(central_transitions(dsn)) > 0, 60, "first transitions in the central store")
            server.stop()
            # during the outage: a site goes down and comes back; the collector keeps polling and deciding
            thread.call(sim.set_fault, "bplp-31", "outage")
            until(lambda: ("bplp-31/catalogue/opac", "CRITICAL") in printed(group.log("sud-1")), 60,
                  "the outage seen while the central store is away")
            time.sleep(1.0)  # past the writer's half-second commit
            group.kill("sud-1")
            queued = outbox_transitions(tmp_path / "outbox-sud-1.db")
            assert ("bplp-31/catalogue/opac", "CRITICAL") in [(c, n) for c, _, n in queued]
            # restarted while the store is still away: it polls the sites it held, from its outbox's memory
            group.procs.pop("sud-1")
            group.start("sud-1")
            thread.call(sim.clear_fault, site="bplp-31")
            until(lambda: printed(group.log("sud-1")).count(("bplp-31/catalogue/opac", "OK")) >= 1, 60,
                  "the recovery seen by the restarted collector, store still away")
            server.start()
            until(lambda: not outbox_transitions(tmp_path / "outbox-sud-1.db"), 60, "the outbox replayed")
            group.stop_all()
            central = central_transitions(dsn)
            # every transition committed to the outbox before the kill is there, once, in the same order
            positions = [central.index(t) for t in queued]
            assert positions == sorted(positions)
            assert len(central) == len(set(central)), "a transition was written twice"
            assert ("bplp-31/catalogue/opac", "OK") in [(c, n) for c, _, n in central]
            # the console's latest state says the site is back
            state = query(dsn, "SELECT status FROM national_check_state WHERE check_name = 'bplp-31/catalogue/opac'")
            assert state == [("OK",)]
        finally:
            group.stop_all()
