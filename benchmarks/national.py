"""Benchmark: regional collectors writing to one central PostgreSQL, failover, and a store outage.

Every part is real: a PostgreSQL server (initdb into a temp dir, tests/_postgres.py), the simulator in a
child process (`bibnet-ops sim --sites N --write-config DIR --admin-port P`), and `bibnet-ops collect`
processes (`--collector-id cN --group national`), which split the group's sites through leases.

Phase `scale` (2,000 sites, 4 collectors): after the first round, every collector's lag p99 (from the health
each writes with its heartbeat), checks/s, outbox depth; the PostgreSQL server's CPU per 1,000 rows forwarded
and per transition; the database's size and its growth per hour of this load.
Phase `failover`: `kill -9` of one collector; seconds until another holds all its sites, and until each
of a sample of them has been polled again (its hour rollups in the central store grew).
Phase `outage` (300 sites, 1 collector, time compressed by `--compress`: check intervals divided by it, so
`--outage-seconds` of outage carries `compress` times as many polls and transitions; 30 sites flap to make
transitions): PostgreSQL stopped, then started; transitions queued in the outbox vs found once in the
central store, and the replay time.

    .venv/bin/python benchmarks/national.py [--sites 2000] [--collectors 4] [--seconds 120]
        [--phases scale,failover,outage] [--outage-sites 300] [--outage-seconds 300] [--compress 12]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from _postgres import PgServer, run_postgres  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def simulator(sites: int, directory: Path, compress: float = 1.0) -> Iterator[str]:
    """The simulator in a child process; yields its admin URL. Check intervals divided by `compress`."""
    admin = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bibnet_ops", "sim", "--sites", str(sites), "--always-open", "--seed", "1",
         "--write-config", str(directory), "--admin-port", str(admin)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("ready:"):
                print(f"sim {line.strip()}", flush=True)
                break
        else:
            raise SystemExit("the simulator did not become ready")
        checks = directory.parent / "checks"
        shutil.copytree(REPO / "checks", checks, dirs_exist_ok=True)
        for path in checks.glob("*.toml"):
            text = path.read_text(encoding="utf-8")
            for key in ("interval", "retry_interval"):
                text = re.sub(rf"(?m)^{key} = (\d+)",
                              lambda m, key=key: f"{key} = {max(1.0, int(m.group(1)) / compress):g}", text)
            path.write_text(text, encoding="utf-8")
        net = directory / "network.toml"
        text = re.sub(r"(?m)^templates = .*$", f'templates = "{checks}"', net.read_text(encoding="utf-8"))
        regions = re.findall(r"(?m)^\[regions\.([^\]]+)\]", text)
        net.write_text(text + f'\n[groups.national]\nregions = {json.dumps(regions)}\n', encoding="utf-8")
        yield f"http://127.0.0.1:{admin}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.stdout.close()


def admin_post(url: str, path: str, body: dict[str, Any]) -> None:
    """Steer the simulator (a busy 2,000-site simulator on a loaded machine may answer slowly: wait and retry)."""
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    for attempt in range(3):
        try:
            urllib.request.urlopen(req, timeout=60).read()
            return
        except OSError as exc:
            print(f"simulator admin {path}: {exc} (attempt {attempt + 1})", flush=True)
    raise SystemExit("the simulator's admin endpoint does not answer")


def start_collector(config: Path, dsn: str, cid: str, work: Path, delay: float = 20.0) -> subprocess.Popen[str]:
    log = open(work / f"{cid}.log", "a", encoding="utf-8")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "bibnet_ops", "--config", str(config), "collect", "--json", "--store", dsn,
         "--collector-id", cid, "--group", "national", "--failover-delay", str(delay),
         "--outbox", str(work / f"outbox-{cid}.db")],
        stdout=log, stderr=subprocess.STDOUT, text=True)
    log.close()
    return proc


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def q(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]
        except psycopg.errors.UndefinedTable:
            return []


def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def health(dsn: str) -> dict[str, dict[str, Any]]:
    return {r[0]: dict(r[1]) for r in q(dsn, "SELECT id, health FROM national_collectors WHERE stopped IS NULL")}


def server_cpu(server: PgServer) -> float:
    """CPU seconds of the PostgreSQL server and its backends so far."""
    pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
    main = psutil.Process(pid)
    total = 0.0
    for p in [main, *main.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def forwarded_rows(dsn: str) -> int:
    rows = q(dsn, "SELECT coalesce(sum((health->>'forwarded_rows')::bigint), 0) FROM national_collectors")
    return int(rows[0][0]) if rows else 0


def polled(dsn: str, sites: list[str]) -> dict[str, int]:
    rows = q(dsn, "SELECT c.site, sum((SELECT coalesce(sum(x), 0) FROM unnest(r.n) x)) FROM rollup_hour r "
                  "JOIN checks c ON c.id = r.check_id WHERE c.site = ANY(%s) GROUP BY c.site", sites)
    return {s: int(n) for s, n in rows}


def phase_scale_failover(args: argparse.Namespace, work: Path, phases: set[str]) -> None:
    with run_postgres() as server, simulator(args.sites, work / "config") as admin:
        dsn = server.dsn(server.create_database("national"))
        config = work / "config"
        procs = {f"c{i + 1}": start_collector(config, dsn, f"c{i + 1}", work) for i in range(args.collectors)}
        try:
            t0 = time.monotonic()
            until(lambda: len(q(dsn, "SELECT 1 FROM national_leases WHERE owner IS NOT NULL")) >= args.sites, 300,
                  "every site leased")
            split = dict(q(dsn, "SELECT owner, count(*) FROM national_leases GROUP BY owner"))
            print(f"leases: every site held after {time.monotonic() - t0:.1f} s; split {split}", flush=True)
            # the first round: the engine spreads first polls over 60 s; wait for it and a minute more
            time.sleep(max(0.0, 90 - (time.monotonic() - t0)))
            # 2 % of the sites flap (a 2-minute period) so that the central store also writes transitions
            all_sites = [s for (s,) in q(dsn, "SELECT site FROM national_leases ORDER BY site")]
            for site in random.Random(3).sample(all_sites, max(1, len(all_sites) // 50)):
                admin_post(admin, "/faults", {"site": site, "kind": "flapping", "period": 120})
            cpu0, rows0, trans0 = server_cpu(server), forwarded_rows(dsn), q(dsn, "SELECT count(*) FROM transitions")
            size0 = q(dsn, "SELECT pg_database_size(current_database())")[0][0]
            lags: dict[str, list[float]] = {c: [] for c in procs}
            depth: dict[str, int] = {c: 0 for c in procs}
            rate: dict[str, list[float]] = {c: [] for c in procs}
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                for cid, h in health(dsn).items():
                    if cid in lags:
                        lags[cid].append(float(h.get("lag_p99", 0.0)))
                        rate[cid].append(float(h.get("checks_per_second", 0.0)))
                        depth[cid] = max(depth[cid], int(h.get("outbox_depth", 0)))
                time.sleep(5)
            cpu = server_cpu(server) - cpu0
            rows = forwarded_rows(dsn) - rows0
            trans = q(dsn, "SELECT count(*) FROM transitions")[0][0] - trans0[0][0]
            size = q(dsn, "SELECT pg_database_size(current_database())")[0][0]
            print(f"steady {args.seconds} s after the first round ({args.sites} sites, {args.collectors} collectors):")
            for cid in procs:
                lp = lags[cid]
                print(f"  {cid}: lag p99 max {max(lp, default=0):.2f} s (last {lp[-1] if lp else 0:.2f}), "
                      f"checks/s {sum(rate[cid]) / max(1, len(rate[cid])):.1f}, outbox depth max {depth[cid]}",
                      flush=True)
            per_row = cpu / rows * 1000 if rows else 0.0
            print(f"  central store: {rows} rows forwarded ({trans} transitions), server CPU {cpu:.1f} s "
                  f"= {per_row:.2f} s per 1,000 rows, {cpu / max(1, trans) * 1000:.1f} ms per transition "
                  f"(rollups included); database {size / 2**20:.1f} MiB, +{(size - size0) / 2**20:.2f} MiB "
                  f"in {args.seconds} s", flush=True)
            if "failover" in phases:
                victim = "c1"
                mine = [s for (s,) in q(dsn, "SELECT site FROM national_leases WHERE owner = %s", victim)]
                sample = random.Random(1).sample(mine, min(20, len(mine)))
                before = polled(dsn, sample)
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait(10)
                killed = time.monotonic()
                taken = until(lambda: not q(dsn, "SELECT 1 FROM national_leases WHERE owner = %s OR owner IS NULL",
                                            victim), 120, "its sites taken")
                print(f"failover: kill -9 of {victim} ({len(mine)} sites): all leased by the others after "
                      f"{taken:.1f} s", flush=True)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    now = polled(dsn, sample)
                    done = [s for s in sample if now.get(s, 0) > before.get(s, 0)]
                    if len(done) == len(sample):
                        break
                    time.sleep(0.5)
                print(f"  {len(done)} of a sample of {len(sample)} of its sites polled again (and forwarded) "
                      f"{time.monotonic() - killed:.1f} s after the kill", flush=True)
        finally:
            stop(list(procs.values()))


def outbox_transitions(path: Path) -> list[tuple[str, float, str]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT body FROM events WHERE kind = 't' ORDER BY seq").fetchall()
    return [(b[0], round(b[1] * 1000), b[3]) for b in (json.loads(r[0]) for r in rows)]  # ms, as stored


def phase_outage(args: argparse.Namespace, work: Path) -> None:
    work = work / "outage"
    work.mkdir()
    with run_postgres() as server, simulator(args.outage_sites, work / "config", args.compress) as admin:
        dsn = server.dsn(server.create_database("outage"))
        proc = start_collector(work / "config", dsn, "sud", work)
        try:
            until(lambda: len(q(dsn, "SELECT 1 FROM national_leases WHERE owner = 'sud'")) >= args.outage_sites,
                  300, "its sites leased")
            time.sleep(70)  # the first round
            sites = [s for (s,) in q(dsn, "SELECT site FROM national_leases ORDER BY site")]
            before = len(q(dsn, "SELECT 1 FROM transitions"))
            server.stop()
            stopped = time.monotonic()
            for site in random.Random(2).sample(sites, 30):
                admin_post(admin, "/faults", {"site": site, "kind": "flapping", "period": 120 / args.compress})
            time.sleep(args.outage_seconds)
            queued = outbox_transitions(work / "outbox-sud.db")
            size = (work / "outbox-sud.db").stat().st_size + (work / "outbox-sud.db-wal").stat().st_size
            admin_post(admin, "/faults/clear", {})
            server.start()
            started = time.monotonic()
            until(lambda: not outbox_transitions(work / "outbox-sud.db"), 3600, "the outbox replayed")
            replay = time.monotonic() - started
            central = [(n, int(t), new) for n, t, new in q(
                dsn, "SELECT c.name, t.t, t.new FROM transitions t JOIN checks c ON c.id = t.check_id ORDER BY t.id")]
            found = set(central)
            lost = [t for t in queued if t not in found]
            dup = len(central) - len(found)
            outage = time.monotonic() - stopped - replay
            print(f"outage: PostgreSQL stopped {outage:.0f} s (= {outage * args.compress / 3600:.1f} h of polling at "
                  f"{args.compress:g}x), {args.outage_sites} sites: {len(queued)} transitions queued "
                  f"(outbox {size / 2**20:.1f} MiB), {len(lost)} lost, {dup} duplicated, replayed in {replay:.1f} s "
                  f"({len(central) - before} transitions in the central store since the outage began)", flush=True)
        finally:
            stop([proc])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--collectors", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--phases", default="scale,failover,outage")
    parser.add_argument("--outage-sites", type=int, default=300)
    parser.add_argument("--outage-seconds", type=float, default=300)
    parser.add_argument("--compress", type=float, default=12)
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bibnet-national-") as tmp:
        work = Path(tmp)
        if phases & {"scale", "failover"}:
            phase_scale_failover(args, work, phases)
        if "outage" in phases:
            phase_outage(args, work)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
