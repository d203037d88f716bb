"""Dashboard benchmark: first frame, key-press latency, memory and CPU with N simulated sites live.

Runs `bibnet-ops sim --sites N` as a child process, the collector (engine + SQLite history + alerting) as
the shipped commands run it — in a child process of its own (default) or, with `--in-process`, in a thread
of the dashboard's process as before — and the dashboard headless (Textual's test driver, full compositing,
output discarded). Prints: first frame (app start -> overview composed and painted), key press -> updated
frame (p50/p95/max over cursor moves and filter keystrokes), RSS and CPU of the dashboard process and of the
collector process, at the chosen refresh interval, and the load average beside them.

    .venv/bin/python benchmarks/dashboard.py --sites 2000 --refresh 5 --seconds 30
    .venv/bin/python benchmarks/dashboard.py --sites 2000 --refresh 5 --seconds 30 --in-process

Keys are sent to the app's driver as a terminal would send them and timed to the end of the next frame;
Textual's Pilot is not used for them because its `press()` waits for the whole process to go idle (up to
1 s per wait, three waits per key), which never happens while an in-process collector polls: that is what
made the earlier version of this script appear to stall after its first frame at 2,000 sites.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from textual import events
from textual.app import App
from textual.screen import Screen

from bibnet_ops.cli.demo_cmd import SimProcess
from bibnet_ops.inventory import Inventory, load_inventory
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.screens import OverviewScreen

_FRAMES: list[float] = []
_compositor_refresh = Screen._compositor_refresh


_WAITING: list[asyncio.Event] = []


def _record_frame(self: Screen[object]) -> None:
    _compositor_refresh(self)
    _FRAMES.append(time.perf_counter())
    while _WAITING:
        _WAITING.pop().set()


async def _next_frame(seen: int, timeout: float) -> bool:
    """Wait (without polling) until more than `seen` frames were painted; False after `timeout` seconds."""
    while len(_FRAMES) <= seen:
        painted = asyncio.Event()
        _WAITING.append(painted)
        try:
            await asyncio.wait_for(painted.wait(), timeout)
        except TimeoutError:
            return False
    return True


Screen._compositor_refresh = _record_frame  # type: ignore[method-assign,assignment]

KEYS = ["j", "l", "k", "h"] * 25 + ["slash", *"oran", "escape"] * 3


def _thread_cpu(native_id: int) -> float:
    for t in psutil.Process().threads():
        if t.id == native_id:
            return float(t.user_time + t.system_time)
    return 0.0


def _cpu(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def _rss(proc: psutil.Process | None) -> float:
    try:
        return proc.memory_info().rss / 2**20 if proc is not None else 0.0
    except psutil.Error:
        return 0.0


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max in milliseconds."""
    ordered = sorted(values)
    return (statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000, ordered[-1] * 1000)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def _key_event(key: str) -> events.Key:
    char = key if len(key) == 1 else {"slash": "/", "escape": "\x1b"}.get(key)
    return events.Key(key, char)


async def _press(app: App[Any], key: str, timeout: float = 2.0) -> tuple[float, float] | None:
    """Send one key as the terminal driver would; (wall, screen-thread CPU) seconds to the end of the next frame.

    None when no frame follows within `timeout` (the key changed nothing on screen).
    """
    seen = len(_FRAMES)
    event = _key_event(key)
    event.set_sender(app)
    t0, cpu0 = time.perf_counter(), time.thread_time()
    assert app._driver is not None
    app._driver.send_message(event)
    if not await _next_frame(seen, timeout):
        return None
    return _FRAMES[seen] - t0, time.thread_time() - cpu0


class _Collector:
    """The collector as the benchmark runs it: a child process (shipped) or a thread (`--in-process`)."""

    def __init__(self, inv: Inventory, store: Path, in_process: bool) -> None:
        self.in_process = in_process
        if in_process:
            from bibnet_ops.collector import Collector
            from bibnet_ops.tui.runner import EngineThread

            self.thread = EngineThread(Collector(inv, store=store, first_spread=10.0)).start()
            self.source: Any = self.thread.buffer
            self.child: psutil.Process | None = None
        else:
            from bibnet_ops.remote import CollectorProcess

            self.process = CollectorProcess(inv, store=store, first_spread=10.0).start()
            self.source = self.process
            self.child = psutil.Process(self.process.pid)

    def stop(self) -> None:
        if self.in_process:
            self.thread.stop()
        else:
            self.process.stop()


async def _measure(args: argparse.Namespace, config: Path, store: Path) -> None:
    inv = load_inventory(config)
    mode = "in-process thread" if args.in_process else "child process"
    print(f"inventory: {len(inv.sites)} sites, {len(inv.checks)} checks; collector in a {mode}", flush=True)
    collector = _Collector(inv, store, args.in_process)
    me = psutil.Process()
    try:
        # Let the collector produce a first wave of results so the screen has a backlog to apply.
        await asyncio.sleep(args.warmup)
        started, cpu0 = time.perf_counter(), time.thread_time()
        app = DashboardApp(inv, collector.source, lang="en", refresh=args.refresh)
        async with app.run_test(size=(160, 48)) as pilot:
            while not (isinstance(app.screen, OverviewScreen) and app.screen.ready):
                await asyncio.sleep(0.005)
            seen = len(_FRAMES)
            await _next_frame(seen, 60)
            first_frame, first_cpu = _FRAMES[seen] - started, time.thread_time() - cpu0
            print(f"first frame: {first_frame:.2f} s, screen-thread CPU {first_cpu:.2f} s "
                  f"(tiles={app.screen.query_one('#tiles').display}) [{_load()}]", flush=True)

            latencies, cpus, missed, slowest = [], [], 0, []
            for key in KEYS:
                got = await _press(app, key)
                if got is None:
                    missed += 1
                else:
                    latencies.append(got[0])
                    cpus.append(got[1])
                    slowest.append((got[0], got[1], key))
                await asyncio.sleep(args.key_gap)
            if args.verbose:
                print("slowest keys (wall/CPU ms):",
                      ", ".join(f"{k} {t * 1000:.0f}/{c * 1000:.0f}" for t, c, k in sorted(slowest)[-12:]))
            p50, p95, top = _percentiles(latencies)
            c50, c95, ctop = _percentiles(cpus)
            print(f"key -> frame: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {top:.0f} ms; screen-thread CPU per key "
                  f"p50 {c50:.0f} ms, p95 {c95:.0f} ms, max {ctop:.0f} ms "
                  f"({len(latencies)} presses, {missed} without a frame within 2 s) [{_load()}]", flush=True)
            for group, keys in (("cursor moves", "hjkl"), ("filter keys", "/oran\x1b")):
                chosen = [(t, c) for t, c, k in slowest if (_key_event(k).character or "") in keys]
                w50, w95, _ = _percentiles([t for t, _ in chosen])
                g50, g95, _ = _percentiles([c for _, c in chosen])
                print(f"  {group}: wall p50 {w50:.0f} / p95 {w95:.0f} ms, CPU p50 {g50:.0f} / p95 {g95:.0f} ms "
                      f"({len(chosen)})", flush=True)

            main_id = threading.get_native_id()
            ui0, me0, child0, wall0 = _thread_cpu(main_id), _cpu(me), _cpu(collector.child), time.perf_counter()
            await asyncio.sleep(args.seconds)
            ui1, me1, child1, wall1 = _thread_cpu(main_id), _cpu(me), _cpu(collector.child), time.perf_counter()
            span = wall1 - wall0
            health = collector.source.poll_health()
            own, screen, child = ((b - a) / span * 100 for a, b in ((me0, me1), (ui0, ui1), (child0, child1)))
            print(f"CPU at {args.refresh:g} s refresh over {span:.0f} s: dashboard process {own:.1f} % of a core "
                  f"(its screen thread {screen:.1f} %), collector process {child:.1f} % [{_load()}]", flush=True)
            print(f"RSS: dashboard process {_rss(me):.0f} MiB, collector process {_rss(collector.child):.0f} MiB; "
                  f"ticks {app.ticks}, last tick {app.last_tick_seconds * 1000:.0f} ms; "
                  f"events applied {app.state.events_applied}, dropped {collector.source.events_dropped()}", flush=True)
            print(f"collector health: {health}", flush=True)
            t0 = time.perf_counter()
            await pilot.press("q")
        print(f"app exit: {time.perf_counter() - t0:.2f} s", flush=True)
    finally:
        t0 = time.perf_counter()
        await asyncio.to_thread(collector.stop)
        print(f"collector stop: {time.perf_counter() - t0:.2f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--refresh", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU measuring window")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of polling before the app starts")
    parser.add_argument("--key-gap", type=float, default=0.1, help="seconds between key presses")
    parser.add_argument("--verbose", action="store_true", help="also list the slowest keys")
    parser.add_argument("--in-process", action="store_true",
                        help="run the collector in a thread of the dashboard's process (the former design)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bibnet-bench-") as tmp:
        t0 = time.perf_counter()
        sim = SimProcess(["sim", "--always-open", "--seed", "3", "--sites", str(args.sites)], Path(tmp))
        try:
            print(sim.wait_ready(timeout=600), f"({time.perf_counter() - t0:.1f} s)", flush=True)
            asyncio.run(_measure(args, sim.config_dir, Path(tmp) / "history.db"))
        finally:
            sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
