"""Benchmark: one year of history for a national network, its size on disk and the time of reports.

Generates, straight into a real SQLite store, what a year of collecting leaves behind under the
retention policy (transitions for the whole year, daily rollups for the year, hourly rollups and
per-minute rollups for their retention windows), then times `build_report` for a month and a year
in CPU seconds (wall time and load average beside them: other processes make single runs noisy).

    .venv/bin/python benchmarks/history.py [--sites 2000] [--minute-hours 6] [--hour-days 14] [--keep PATH]
    .venv/bin/python benchmarks/history.py --sites 2000 --reuse PATH [--by kind] [--repeat 3]

Generating a national year takes minutes: `--keep PATH` keeps the store, `--reuse PATH` times the
reports against it again (a store of an older schema is migrated first, and that time printed).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bibnet_ops.inventory._model import CheckTemplate, Inventory, TemplateCheck
from bibnet_ops.model import CheckSpec, Device, Region, Site
from bibnet_ops.reports import build_report, render_report
from bibnet_ops.reports._calendar import local_day_bounds
from bibnet_ops.store import CheckInfo, Retention, SqliteStore
from bibnet_ops.store._rollup import Agg, bucket_of

YEAR = 2025
# device template -> (kind, [(check, metric)]): 11 checks per site
DEVICES = {
    "ils-server": ("ils", [("opac", "latency"), ("sru", "latency"), ("tls", "tls_days"), ("staff", "latency")]),
    "oai-sync": ("oai", [("identify", "latency"), ("sync", "sync_lag")]),
    "book-scanner": ("scanner", [("uptime", "uptime"), ("pages", "pages_per_hour")]),
    "switch": ("switch", [("ports", "interfaces_down"), ("errors", "errors_per_hour")]),
    "router": ("router", [("ping", "latency")]),
}
REGIONS = ["centre", "ouest", "est", "sud-est", "sud-ouest"]


def make_inventory(n_sites: int) -> Inventory:
    templates = {
        name: CheckTemplate(name, kind, "", tuple(TemplateCheck(c, "http", "", metric=m) for c, m in checks))
        for name, (kind, checks) in DEVICES.items()
    }
    sites: dict[str, Site] = {}
    checks: list[CheckSpec] = []
    for i in range(n_sites):
        sid = f"site-{i:04d}"
        devices = tuple(Device(name.split("-")[0], name, "x") for name in DEVICES)
        sites[sid] = Site(sid, f"Bibliothèque {i}", f"مكتبة {i}", 1 + i % 58, REGIONS[i % 5], devices=devices)
        for device in devices:
            for check, metric in DEVICES[device.template][1]:
                checks.append(CheckSpec(sid, device.id, check, "http", "x", template=device.template, metric=metric))
    regions = {r: Region(r, r.title(), "") for r in REGIONS}
    return Inventory(
        root=Path("."),
        name="bench",
        sites=sites,
        regions=regions,
        templates=templates,
        checks=checks,
        settings={"sla": {"target": 99.0, "pages_per_day": 1500}},
    )


def _ms(t: float) -> int:
    return round(t * 1000)


def generate(
    store: SqliteStore, inv: Inventory, minute_hours: float, hour_days: float, seed: int = 7
) -> dict[str, int]:
    """Fill the store; returns row counts per table."""
    rng = random.Random(seed)
    since, until = local_day_bounds(date(YEAR, 1, 1), date(YEAR, 12, 31), inv.timezone)
    kinds = {n: t.kind for n, t in inv.templates.items()}
    store.register_checks(CheckInfo(c.id, c.site_id, c.device_id, c.metric, kinds[c.template]) for c in inv.checks)
    ids = dict(store.conn.execute("SELECT name, id FROM checks").fetchall())
    counts = {"transitions": 0, "site_transitions": 0, "minute": 0, "hour": 0, "day": 0}
    conn = store.conn
    conn.execute("BEGIN")
    # collector runs: restarted every week, with a 20-minute gap
    t = since
    while t < until:
        end = min(t + 7 * 86400, until)
        conn.execute(
            "INSERT INTO runs (started, heartbeat, stopped, host, pid) VALUES (?, ?, ?, 'bench', 1)",
            (_ms(t), _ms(end), _ms(end)),
        )
        t = end + 1200
    # transitions: per check ~1 hard outage a month (mean 40 min), each preceded by soft retries,
    # plus some false alarms that stay soft
    rows = []
    for check in inv.checks:
        cid = ids[check.id]
        rows.append((cid, _ms(since - 60), "UNKNOWN", "OK", 1, 0, "first result"))
        t = since
        while True:
            t += rng.expovariate(1 / (30 * 86400))
            if t >= until:
                break
            for k in range(2):
                rows.append((cid, _ms(t + 15 * k), "OK", "CRITICAL", 0, 0, "connection refused (soft)"))
            rows.append((cid, _ms(t + 45), "OK", "CRITICAL", 1, 0, "connection refused"))
            t += 45 + rng.expovariate(1 / 2400)
            rows.append((cid, _ms(t), "CRITICAL", "OK", 1, 0, "HTTP 200 in 0.08 s"))
        for _ in range(rng.randint(2, 6)):
            t = rng.uniform(since, until)
            rows.append((cid, _ms(t), "OK", "WARNING", 0, 0, "slow reply (soft)"))
            rows.append((cid, _ms(t + 60), "WARNING", "OK", 0, 0, "recovered"))
    rows.sort(key=lambda r: r[1])
    conn.executemany(
        "INSERT INTO transitions (check_id, t, old, new, hard, flapping, reason) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
    )
    counts["transitions"] = len(rows)
    # site status: ~one outage every two months (mean 90 min), and a few unreachable spells
    srows: list[tuple[str, int, str, str, str, str | None]] = []
    site_list = list(inv.sites)
    for sid in site_list:
        srows.append((sid, _ms(since - 60), "UNKNOWN", "UP", "first status", None))
        t = since
        while True:
            t += rng.expovariate(1 / (60 * 86400))
            if t >= until:
                break
            new = "UNREACHABLE" if rng.random() < 0.2 else "DOWN"
            srows.append(
                (sid, _ms(t), "UP", new, "catalogue not answering", rng.choice(site_list) if new != "DOWN" else None)
            )
            t += rng.expovariate(1 / 5400)
            srows.append((sid, _ms(t), new, "UP", "recovered", None))
    srows.sort(key=lambda r: r[1])
    conn.executemany(
        "INSERT INTO site_transitions (site, t, old, new, reason, root_cause) VALUES (?, ?, ?, ?, ?, ?)", srows
    )
    counts["site_transitions"] = len(srows)
    conn.execute("COMMIT")
    # rollups, check by check in primary-key order: days for the year, hours and minutes for their windows
    first_day, last_day = bucket_of("day", since), bucket_of("day", until - 1)
    last_hour, last_minute = bucket_of("hour", until), bucket_of("minute", until)
    n_hours, n_minutes = int(hour_days * 24), int(minute_hours * 60)
    for n, check in enumerate(inv.checks):
        if n % 1000 == 0:
            conn.execute("BEGIN")
        cid = ids[check.id]
        base_lat = rng.randint(5, 200)
        if check.metric == "pages_per_hour":

            def value() -> float:
                return round(rng.uniform(0, 250), 2)
        elif check.metric == "sync_lag":

            def value() -> float:
                return float(rng.randint(60, 7200))
        else:

            def value() -> float:
                return round(rng.uniform(0.005, 0.4), 6)

        day_rows = []
        for day in range(first_day, last_day + 1):
            v = value()
            delta = float(rng.randint(0, 3000)) if check.metric == "pages_per_hour" else None
            agg = Agg(
                1440,
                rng.randint(0, 3),
                1440,
                base_lat // 2,
                base_lat * 1440,
                base_lat * 6,
                1440,
                v / 3,
                v * 1440,
                v * 2,
                v,
                delta,
            )
            day_rows.append((cid, day, *agg.to_row()))
        hour_rows = []
        for hour in range(last_hour - n_hours, last_hour):
            v = value()
            delta = float(rng.randint(0, 250)) if check.metric == "pages_per_hour" else None
            agg = Agg(60, 0, 60, base_lat // 2, base_lat * 60, base_lat * 3, 60, v / 2, v * 60, v * 1.5, v, delta)
            hour_rows.append((cid, hour, *agg.to_row()))
        minute_rows = []
        for minute in range(last_minute - n_minutes, last_minute):
            delta = float(rng.randint(0, 5)) if check.metric == "pages_per_hour" else None
            lat, v = base_lat + rng.randint(-3, 3), value()
            agg = Agg(1, 0, 1, lat, lat, lat, 1, v, v, v, v, delta)  # one sample a minute
            minute_rows.append((cid, minute, *agg.to_row()))
        for table, batch in (("rollup_day", day_rows), ("rollup_hour", hour_rows), ("rollup_minute", minute_rows)):
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * 14)})", batch)
        counts["day"] += len(day_rows)
        counts["hour"] += len(hour_rows)
        counts["minute"] += len(minute_rows)
        if n % 1000 == 999 or n == len(inv.checks) - 1:
            conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts


def table_sizes(store: SqliteStore) -> dict[str, int]:
    """Bytes per table and index (needs the dbstat virtual table; empty without it)."""
    try:
        rows = store.conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    except Exception:
        return {}
    return {name: int(size) for name, size in rows}


def time_reports(path: Path, inv: Inventory, groupings: list[str], repeat: int) -> None:
    """Time `build_report` (and the HTML rendering) for June and for the year, each grouping."""
    reader = SqliteStore(path, readonly=True)
    now = local_day_bounds(date(YEAR, 12, 31), date(YEAR, 12, 31), inv.timezone)[1] + 60
    for label, first, last in (
        ("month", date(YEAR, 6, 1), date(YEAR, 6, 30)),
        ("year", date(YEAR, 1, 1), date(YEAR, 12, 31)),
    ):
        for by in groupings:
            cpu = wall = float("inf")
            for _ in range(repeat):
                c0, w0 = time.process_time(), time.perf_counter()
                report = build_report(reader, inv, first, last, by=by, hours="opening", now=now)
                cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
            t1 = time.perf_counter()
            render_report(report, "html")
            rendered = time.perf_counter() - t1
            total = report.total
            pct = total.availability_pct if total else None
            print(
                f"report {label:<5} by {by:<6}: {cpu:6.2f} s CPU ({wall:5.2f} s wall, load {os.getloadavg()[0]:.1f}), "
                f"{rendered:5.2f} s to render html ({len(report.rows)} rows, {len(report.outages)} outages, "
                f"network {pct:.3f} %)"
            )
    reader.close()


def store_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--minute-hours", type=float, default=6.0, help="per-minute rollup retention (hours)")
    parser.add_argument("--hour-days", type=float, default=14.0, help="hourly rollup retention (days)")
    parser.add_argument("--keep", metavar="PATH", help="write the store here and keep it")
    parser.add_argument("--reuse", metavar="PATH", help="time the reports against a store kept with --keep")
    parser.add_argument("--by", default="site,region,kind", help="groupings to time (comma-separated)")
    parser.add_argument("--repeat", type=int, default=1, help="build each report N times, keep the best")
    args = parser.parse_args()
    inv = make_inventory(args.sites)
    groupings = args.by.split(",")
    if args.reuse:
        path = Path(args.reuse)
        started = time.process_time()
        store = SqliteStore(path)  # migrates (and builds derived tables of) a store of an older schema
        known = store.conn.execute("SELECT count(*) FROM checks").fetchone()[0]
        store.close()
        if known != len(inv.checks):
            sys.exit(f"{path} holds {known} checks, not the {len(inv.checks)} of --sites {args.sites}")
        print(f"opened {path} read-write in {time.process_time() - started:.1f} s CPU")
        print(f"store size on disk: {store_size(path) / 2**20:,.0f} MiB ({store_size(path) / 1e9:.2f} GB)")
        time_reports(path, inv, groupings, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "bench.db"
        path.unlink(missing_ok=True)
        retention = Retention(minute_days=args.minute_hours / 24, hour_days=args.hour_days, day_days=800)
        store = SqliteStore(path, retention=retention)
        started = time.perf_counter()
        counts = generate(store, inv, args.minute_hours, args.hour_days)
        print(f"generated {args.sites} sites, {len(inv.checks)} checks in {time.perf_counter() - started:.0f} s")
        # rows went in by plain SQL, around the writer: derive the device spans as a migration would
        started = time.process_time()
        counts["device_spans"] = store.rebuild_device_spans()
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"device spans built from the transitions in {time.process_time() - started:.1f} s CPU")
        for name, count in counts.items():
            print(f"  {name:<17} {count:>12,} rows")
        sizes = table_sizes(store)
        store.close()
        size = store_size(path)
        print(f"store size on disk: {size / 2**20:,.0f} MiB ({size / 1e9:.2f} GB)")
        for name, nbytes in list(sizes.items())[:12]:
            print(f"  {name:<26} {nbytes / 2**20:>8,.0f} MiB")
        time_reports(path, inv, groupings, args.repeat)


if __name__ == "__main__":
    main()
