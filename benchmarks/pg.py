"""Benchmark: the PostgreSQL store with a year of 2,000 sites: its size, the year's reports, the writer's cost.

1. A year of history is generated into SQLite by `history.py`'s generator (or `--sqlite PATH` reuses one kept
   with `history.py --keep`), then copied into PostgreSQL with `bibnet-ops store import`'s code (COPY).
2. Size: `pg_database_size` less that of an empty database, and per table (heap + indexes + TOAST),
   after VACUUM ANALYZE.
3. Reports: `build_report` for June and for the year, by site, region and kind, from PostgreSQL and from
   the same history in SQLite, in CPU and wall seconds of this process (the server's CPU shows in the wall
   time), and whether both give the same bytes (html).
4. The writer's cost: `write_batch` with batches as the collector's writer makes them (transitions of
   several devices plus the hour/day rollups of the checks sampled since the last commit), per batch and
   per transition, from PostgreSQL and from SQLite.

    .venv/bin/python benchmarks/pg.py [--sites 2000] [--sqlite year.db] [--dsn URL] [--by site,region,kind]

Without `--dsn` a private PostgreSQL server is started in a temp dir (tests/_postgres.py) with the test
settings (fsync off): a production server with fsync on pays one WAL flush per commit more in step 4.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from history import YEAR, generate, make_inventory  # noqa: E402

from bibnet_ops.model import CheckStatus  # noqa: E402
from bibnet_ops.reports import build_report, render_report  # noqa: E402
from bibnet_ops.reports._calendar import local_day_bounds  # noqa: E402
from bibnet_ops.store import Retention, SqliteStore, Transition, import_sqlite, open_store  # noqa: E402
from bibnet_ops.store._rollup import Agg, bucket_of  # noqa: E402


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def pg_sizes(dsn: str) -> tuple[int, list[tuple[str, int]]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        empty = conn.execute("SELECT pg_database_size('template1')").fetchone()[0]  # type: ignore[index]
        tables = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace ORDER BY 2 DESC"
        ).fetchall()
    return int(total) - int(empty), [(str(n), int(s)) for n, s in tables]


class Timed:
    """A store whose method calls are timed (wall seconds per method), to see where a report waits."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.seconds: dict[str, float] = {}

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def timed(*args: object, **kwargs: object) -> object:
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

        return timed


def time_reports(stores: dict[str, object], inv: object, groupings: list[str]) -> None:
    now = local_day_bounds(date(YEAR, 12, 31), date(YEAR, 12, 31), "Africa/Algiers")[1] + 60
    for label, first, last in (("month", date(YEAR, 6, 1), date(YEAR, 6, 30)), ("year", date(YEAR, 1, 1),
                                                                                date(YEAR, 12, 31))):
        for by in groupings:
            rendered: dict[str, bytes | str] = {}
            for name, store in stores.items():
                timed = Timed(store)
                c0, w0 = time.process_time(), time.perf_counter()
                report = build_report(timed, inv, first, last, by=by, hours="opening", now=now)  # type: ignore[arg-type]
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                rendered[name] = render_report(report, "html")
                calls = ", ".join(f"{k} {v:.2f}" for k, v in sorted(timed.seconds.items(), key=lambda kv: -kv[1])[:4])
                print(f"report {label:<5} by {by:<6} from {name:<10}: {cpu:6.2f} s CPU, {wall:6.2f} s wall ({load()}); "
                      f"in the store: {calls}")
            same = len(set(rendered.values())) == 1
            print(f"  same html bytes from both stores: {'yes' if same else 'NO'}")


def writer_cost(
    store: object, checks: list[str], batches: int, seed: int = 11, changes: int = 10, sampled: int = 200
) -> tuple[float, float, int]:
    """Seconds (wall, CPU of this process) per batch, and transitions written, for batches like the writer's."""
    rng = random.Random(seed)
    t = time.time() + 86400 * 400  # after the generated year: nothing to merge with but its own rollups
    state = dict.fromkeys(checks, "OK")
    written = 0
    wall = cpu = 0.0
    for _ in range(batches):
        t += 0.5
        transitions = []
        for check in rng.sample(checks, changes):  # an outage of a few devices: ten checks change at once
            new = "CRITICAL" if state[check] == "OK" else "OK"
            transitions.append(Transition(check, t, state[check], new, rng.random() < 0.5, "connection refused"))
            if transitions[-1].hard:
                state[check] = new
        rollups = []
        for check in rng.sample(checks, sampled):  # ~200 checks sampled per 0.5 s at 22,000 checks a minute
            agg = Agg()
            agg.add(CheckStatus.OK, rng.uniform(0.01, 0.3), rng.uniform(0, 100), None)
            rollups += [("hour", check, bucket_of("hour", t), agg), ("day", check, bucket_of("day", t), agg)]
        c0, w0 = time.process_time(), time.perf_counter()
        store.write_batch(transitions, [], rollups)  # type: ignore[attr-defined]
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        written += len(transitions)
    return wall / batches, cpu / batches, written


def writer_shapes(inv: object, batches: int) -> None:
    """The writer's cost by batch shape, into new stores holding the inventory's checks."""
    from _postgres import run_postgres

    from bibnet_ops.store import CheckInfo

    checks = [c.id for c in inv.checks]  # type: ignore[attr-defined]
    infos = [CheckInfo(c.id, c.site_id, c.device_id, c.metric, "") for c in inv.checks]  # type: ignore[attr-defined]
    with run_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        dsn = server.dsn(server.create_database("writer"))
        openers = (("PostgreSQL", lambda: open_store(dsn)), ("SQLite", lambda: SqliteStore(Path(tmp) / "w.db")))
        for name, opener in openers:
            store = opener()
            store.register_checks(infos)
            for label, changes, sampled in (("10 transitions", 10, 0), ("100 transitions", 100, 0),
                                            ("200 checks' rollups", 0, 200), ("10 transitions + 200 rollups", 10, 200)):
                wall, cpu, _ = writer_cost(store, checks, batches, changes=changes, sampled=sampled)
                per = f", {wall / changes * 1000:.2f} ms per transition" if changes else ""
                print(f"writer into {name:<10} batches of {label:<28}: {wall * 1000:6.1f} ms wall, "
                      f"{cpu * 1000:5.1f} ms CPU per batch{per} ({load()})")
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--sqlite", metavar="PATH",
                        help="the year's SQLite store: reused if it exists (e.g. `history.py --keep`), else generated "
                             "there and kept (default: generated in a temp dir)")
    parser.add_argument("--dsn", metavar="URL", help="an empty PostgreSQL database (else a private server)")
    parser.add_argument("--by", default="site,region,kind")
    parser.add_argument("--batches", type=int, default=200, help="write_batch calls timed for the writer's cost")
    parser.add_argument("--writer-only", action="store_true",
                        help="only the writer's cost, into new stores, by batch shape (transitions, rollups)")
    args = parser.parse_args()
    inv = make_inventory(args.sites)
    if args.writer_only:
        writer_shapes(inv, args.batches)
        return
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        path = Path(args.sqlite) if args.sqlite else tmp / "year.db"
        if not path.exists():
            store = SqliteStore(path, retention=Retention(minute_days=3 / 24, hour_days=7, day_days=800))
            started = time.perf_counter()
            generate(store, inv, 3.0, 7.0)
            store.rebuild_device_spans()
            store.close()
            print(f"generated {args.sites} sites into SQLite in {time.perf_counter() - started:.0f} s")
        dsn = args.dsn
        if dsn is None:
            from _postgres import run_postgres

            server = stack.enter_context(run_postgres())
            dsn = server.dsn(server.create_database("bench"))
            print(f"private PostgreSQL {server.bindir.parent.name} on 127.0.0.1:{server.port} (fsync off)")
        started = time.perf_counter()
        counts = import_sqlite(path, dsn)
        print(f"copied {sum(counts.values()):,} rows into PostgreSQL in {time.perf_counter() - started:.0f} s "
              f"({load()})")
        size, tables = pg_sizes(dsn)
        lite_size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        print(f"PostgreSQL store size: {size / 2**20:,.0f} MiB ({size / 1e9:.2f} GB); "
              f"the same history in SQLite: {lite_size / 2**20:,.0f} MiB")
        for name, nbytes in tables[:10]:
            print(f"  {name:<18} {nbytes / 2**20:>8,.0f} MiB  ({counts.get(name, 0):,} rows)")
        pg = open_store(dsn, readonly=True)
        lite = SqliteStore(path, readonly=True)
        time_reports({"PostgreSQL": pg, "SQLite": lite}, inv, args.by.split(","))
        pg.close()
        lite.close()
        checks = [c.id for c in inv.checks]
        # PostgreSQL: into the year's store; SQLite: into a new file with the same checks (a kept --sqlite store
        # is left as it was)
        fresh = tmp / "writer.db"
        lite = SqliteStore(fresh)
        lite.register_checks(pg_checks := open_store(dsn, readonly=True).checks())
        lite.close()
        del pg_checks
        for name, opener in (("PostgreSQL", lambda: open_store(dsn)), ("SQLite", lambda: SqliteStore(fresh))):
            store = opener()
            wall, cpu, written = writer_cost(store, checks, args.batches)
            store.close()
            per = written / args.batches
            print(f"writer into {name:<10}: {wall * 1000:6.1f} ms wall, {cpu * 1000:5.1f} ms CPU per batch of "
                  f"{per:.0f} transitions + 400 rollups = {wall / per * 1000:.2f} ms per transition ({load()})")


if __name__ == "__main__":
    main()
