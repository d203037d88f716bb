"""Benchmark: a collector's cold start at national size, and a takeover of many sites at once.

Starts `bibnet-ops sim --sites N+T` as a child process, then a collector process (the `Collector` that
`bibnet-ops collect` runs: engine, SQLite history in a temp dir, alerting) on N of those sites; T sites
(leaves of the site tree) are left out and handed to it at once `--takeover-at` seconds after its start
with `Collector.reload` (what a failover takeover or a reload adding sites does). The collector process
prints its figures every second; this one prints, from them:

- when the first round was done (every check has a result), counting from the collector process's start
  (interpreter start-up and inventory loading included), and the simulator's CPU meanwhile;
- scheduling lag p50/p99 of the polls started from `--lag-from` seconds after start;
- the collector's RSS (peak and at the end), CPU per 10-s window, checks per second;
- how long after the takeover every added check had its first result.

    .venv/bin/python benchmarks/startup.py [--sites 2000] [--takeover 500] [--seconds 120] [--first-spread 10]
    .venv/bin/python benchmarks/startup.py --per-kind --sites 200     # CPU per check, first and next round
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent


def rss_mib() -> float:
    """This process's resident memory now, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def split_inventory(inventory: Any, takeover: int) -> tuple[Any, set[str]]:
    """The inventory without `takeover` leaf sites (no site depends on them), and those sites' ids."""
    parents = {s.parent for s in inventory.sites.values() if s.parent}
    leaves = [sid for sid in sorted(inventory.sites) if sid not in parents]
    later = set(leaves[-takeover:]) if takeover > 0 else set()
    sites = {sid: s for sid, s in inventory.sites.items() if sid not in later}
    checks = [c for c in inventory.checks if c.site_id not in later]
    return dataclasses.replace(inventory, sites=sites, checks=checks), later


def memory_by_place(top: int = 25) -> list[tuple[str, float]]:
    """Traced Python memory now, grouped by package (ours by module), largest first, in MiB."""
    import tracemalloc

    groups: dict[str, int] = {}
    for stat in tracemalloc.take_snapshot().statistics("filename"):
        name = stat.traceback[0].filename
        if "/bibnet_ops/" in name:
            place = "bibnet_ops/" + name.split("/bibnet_ops/", 1)[1]
        elif "site-packages/" in name:
            place = name.split("site-packages/", 1)[1].split("/", 1)[0]
        else:
            place = "stdlib " + name.rsplit("/", 1)[-1]
        groups[place] = groups.get(place, 0) + stat.size
    ranked = sorted(groups.items(), key=lambda item: -item[1])
    return [(place, size / 2**20) for place, size in ranked[:top]] + [("all traced", sum(groups.values()) / 2**20)]


async def child_main(args: argparse.Namespace) -> None:
    """The collector process: run the collector, print one JSON line of figures a second."""
    started = psutil.Process().create_time()
    if args.trace_memory:
        import tracemalloc

        tracemalloc.start()
    from bibnet_ops.collector import Collector
    from bibnet_ops.inventory import load_inventory
    from bibnet_ops.model import Sample

    full = load_inventory(Path(args.config))
    first, later = split_inventory(full, args.takeover)
    collector = Collector(first, store=Path(args.store), alerts=not args.no_alerts, first_spread=args.first_spread)
    seen: set[str] = set()
    added_seen: set[str] = set()
    first_ids = {c.id for c in first.checks}

    kinds = {c.id: f"{c.probe} {c.params.get('mode', '')}".strip() for c in full.checks}
    latencies: dict[str, list[float]] = {}
    failed: dict[str, int] = {}

    def note(event: object) -> None:
        if isinstance(event, Sample):
            (seen if event.check_id in first_ids else added_seen).add(event.check_id)
            kind = kinds.get(event.check_id, "?")
            latencies.setdefault(kind, []).append(event.latency or 0.0)
            if event.status.value != "OK":
                failed[kind] = failed.get(kind, 0) + 1

    collector.subscribe(note)
    runner = asyncio.create_task(collector.run())
    loop = asyncio.get_running_loop()
    scheduler = collector.engine._scheduler  # benchmark only: the lags with their times
    total, added_total = len(first.checks), len(full.checks) - len(first.checks)
    took_over: float | None = None
    cpu0 = time.process_time()
    while time.time() - started < args.seconds:
        await asyncio.sleep(1.0)
        now = time.time() - started
        if took_over is None and later and now >= args.takeover_at:
            collector.reload(full)
            took_over = now
        stats = scheduler.stats
        horizon = loop.time() - 1.0
        lags = [lag for at, lag in stats._lags if at >= horizon]
        print(json.dumps({
            "t": round(now, 2), "seen": len(seen),
            "total": total, "added_seen": len(added_seen), "added_total": added_total, "took_over": took_over,
            "lags": lags, "rss": rss_mib(), "cpu": time.process_time() - cpu0,
            "completed": stats.figures(loop.time()).completed, "queued": stats.queued,
        }), flush=True)
    if args.trace_memory:
        print(json.dumps({"memory": memory_by_place()}), flush=True)
    summary = {kind: [len(v), pct(v, 0.5), pct(v, 0.99), failed.get(kind, 0)] for kind, v in latencies.items()}
    print(json.dumps({"summary": summary}), flush=True)
    collector.stop()
    await runner


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def parent_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    from poll import start_sim

    with tempfile.TemporaryDirectory(prefix="bibnet-startup-") as tmp:
        sim = start_sim(args.sites + args.takeover, Path(tmp) / "config")
        sim_proc = psutil.Process(sim.pid)
        try:
            sim_cpu0 = sum(sim_proc.cpu_times()[:2])
            env = {**os.environ}
            child = subprocess.Popen(
                [sys.executable, __file__, "--child", "--config", str(Path(tmp) / "config"),
                 "--store", str(Path(tmp) / "history.db"), "--takeover", str(args.takeover),
                 "--takeover-at", str(args.takeover_at), "--seconds", str(args.seconds),
                 "--first-spread", str(args.first_spread), *(["--no-alerts"] if args.no_alerts else []),
                 *(["--trace-memory"] if args.trace_memory else [])],
                stdout=subprocess.PIPE, text=True, env=env, cwd=Path(tmp) / "config",
            )
            assert child.stdout is not None
            rows = []
            ready_at = None
            sim_cpu_ready = 0.0
            for line in child.stdout:
                row = json.loads(line)
                if "memory" in row:
                    print("traced Python memory by place (MiB):")
                    for place, size in row["memory"]:
                        print(f"  {size:7.1f}  {place}")
                    continue
                if "summary" in row:
                    for kind, (n, p50, p99, bad) in sorted(row["summary"].items()):
                        print(f"  {kind:<22} {n:6d} results, latency p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms,"
                              f" {bad} not OK")
                    continue
                row["sim_cpu"] = sum(sim_proc.cpu_times()[:2]) - sim_cpu0
                rows.append(row)
                if ready_at is None and row["seen"] >= row["total"]:
                    ready_at = row["t"]
                    sim_cpu_ready = sum(sim_proc.cpu_times()[:2]) - sim_cpu0
                if int(row["t"]) % 10 == 0 or ready_at == row["t"]:
                    print(f"t={row['t']:6.1f}s seen {row['seen']}/{row['total']} added {row['added_seen']}/"
                          f"{row['added_total']} rss {row['rss']:.0f} MiB cpu {row['cpu']:.1f}s "
                          f"queued {row['queued']} lag p99 {pct(row['lags'], 0.99):.2f}s sim cpu {row['sim_cpu']:.1f}s",
                          flush=True)
            child.wait()
        finally:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                sim.kill()
    report(args, rows, ready_at, sim_cpu_ready)


def report(args: argparse.Namespace, rows: list[dict[str, Any]], ready_at: float | None, sim_cpu: float) -> None:
    if not rows:
        raise SystemExit("the collector printed nothing")
    total = rows[-1]["total"]
    print(f"\n{args.sites} sites ({total} checks), first spread {args.first_spread:g} s")
    if ready_at is None:
        print(f"first round: NOT done within {args.seconds:g} s ({rows[-1]['seen']}/{total})")
    else:
        cpu = next(r["cpu"] for r in rows if r["t"] == ready_at)
        print(f"first round done {ready_at:.1f} s after the collector process started "
              f"(its CPU {cpu:.1f} s, the simulator's {sim_cpu:.1f} s)")
    steady = [lag for r in rows if r["t"] >= args.lag_from and (r["took_over"] is None) for lag in r["lags"]]
    print(f"lag from {args.lag_from:g} s to the takeover: p50 {pct(steady, 0.5):.3f} s, p99 {pct(steady, 0.99):.3f} s, "
          f"max {max(steady, default=0):.3f} s over {len(steady)} polls")
    windows = []
    for start in range(0, int(rows[-1]["t"]), 10):
        inside = [r for r in rows if start <= r["t"] < start + 10]
        if len(inside) >= 2:
            span = inside[-1]["t"] - inside[0]["t"]
            windows.append(f"{start}-{start + 10}s {100 * (inside[-1]['cpu'] - inside[0]['cpu']) / span:.0f}%")
    print("collector CPU per 10-s window (share of a core): " + ", ".join(windows))
    print(f"collector RSS: peak {max(r['rss'] for r in rows):.0f} MiB, at the end {rows[-1]['rss']:.0f} MiB")
    took = next((r["took_over"] for r in rows if r["took_over"] is not None), None)
    if took is not None:
        done = next((r["t"] for r in rows if r["added_total"] and r["added_seen"] >= r["added_total"]), None)
        after = [lag for r in rows if r["took_over"] is not None for lag in r["lags"]]
        if done is None:
            print(f"takeover of {args.takeover} sites at {took:.1f} s: NOT all polled by the end "
                  f"({rows[-1]['added_seen']}/{rows[-1]['added_total']})")
        else:
            print(f"takeover of {args.takeover} sites ({rows[-1]['added_total']} checks) at {took:.1f} s: "
                  f"all polled {done - took:.1f} s later; lag after it p99 {pct(after, 0.99):.3f} s")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}")


def first_rounds(args: argparse.Namespace) -> None:
    """Each kind of remote check polled twice with `poll_once` in this process: CPU per check, first vs next round.

    The first round pays what a start-up pays (first connections, walks of tables of unknown size, name
    maps not yet kept); the second what a running collector pays.
    """
    sys.path.insert(0, str(HERE))
    from poll import kind_of, start_sim

    from bibnet_ops.engine import poll_once
    from bibnet_ops.inventory import load_inventory

    with tempfile.TemporaryDirectory(prefix="bibnet-startup-") as tmp:
        sim = start_sim(args.sites, Path(tmp) / "config")
        cwd = os.getcwd()
        try:
            os.chdir(Path(tmp) / "config")
            inventory = load_inventory(Path(tmp) / "config")
            kinds: dict[str, list[Any]] = {}
            for check in inventory.checks:
                if check.probe != "host":
                    kinds.setdefault(kind_of(check), []).append(check)

            async def run() -> None:
                for kind, checks in sorted(kinds.items()):
                    figures = []
                    for _ in range(2):
                        cpu = time.process_time()
                        samples = await poll_once(checks, concurrency=50)
                        bad = sum(s.status.value != "OK" for s in samples)
                        figures.append(f"{(time.process_time() - cpu) / len(checks) * 1000:5.2f} ms ({bad} not OK)")
                    print(f"{kind:<18} {len(checks):6d} checks: first round {figures[0]}, next {figures[1]}",
                          flush=True)

            asyncio.run(run())
        finally:
            os.chdir(cwd)
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                sim.kill()
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--takeover", type=int, default=500, help="sites handed over at once (0: none)")
    parser.add_argument("--takeover-at", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--first-spread", type=float, default=10.0)
    parser.add_argument("--lag-from", type=float, default=30.0)
    parser.add_argument("--no-alerts", action="store_true", help="run the collector without alerting")
    parser.add_argument("--per-kind", action="store_true",
                        help="instead: CPU per check of each kind's first and next round, in this process")
    parser.add_argument("--trace-memory", action="store_true",
                        help="trace the collector's allocations (slower) and print where its memory is at the end")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child_main(args))
    elif args.per_kind:
        first_rounds(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
