"""Dashboard benchmark: first frame, key-press latency, memory and CPU with N simulated sites live.

Runs `bibnet-ops sim --sites N` as a child process, the real engine in its thread and the dashboard
headless (Textual's test driver, full compositing, output discarded), and prints:
first frame (app start -> overview composed and painted), key press -> updated frame (p50/p95 over
cursor moves and filter keystrokes), RSS of the dashboard process (engine included; the simulator is
another process), and CPU of the dashboard's own thread at the chosen refresh interval.

    .venv/bin/python benchmarks/dashboard.py --sites 2000 --refresh 5 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from textual.screen import Screen

from bibnet_ops.cli.demo_cmd import SimProcess
from bibnet_ops.engine import Engine
from bibnet_ops.inventory import load_inventory
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.runner import EngineThread
from bibnet_ops.tui.screens import OverviewScreen

_FRAMES: list[float] = []
_compositor_refresh = Screen._compositor_refresh


def _record_frame(self: Screen[object]) -> None:
    _compositor_refresh(self)
    _FRAMES.append(time.perf_counter())


Screen._compositor_refresh = _record_frame  # type: ignore[method-assign]


def _thread_cpu(native_id: int) -> float:
    for t in psutil.Process().threads():
        if t.id == native_id:
            return t.user_time + t.system_time
    return 0.0


async def _measure(args: argparse.Namespace, config: Path) -> None:
    inv = load_inventory(config)
    print(f"inventory: {len(inv.sites)} sites, {len(inv.checks)} checks", flush=True)
    engine = EngineThread(Engine(inv, first_spread=10.0)).start()
    try:
        # Let the engine produce a first wave of results so the screen has something to draw.
        await asyncio.sleep(args.warmup)
        started = time.perf_counter()
        app = DashboardApp(inv, engine.buffer, lang="en", refresh=args.refresh)
        async with app.run_test(size=(160, 48)) as pilot:
            while not (isinstance(app.screen, OverviewScreen) and app.screen.ready):
                await pilot.pause(0.01)
            await pilot.pause()
            first_frame = time.perf_counter() - started
            print(f"first frame: {first_frame:.2f} s (tiles={app.screen.query_one('#tiles').display})", flush=True)

            latencies = []
            for key in ["j", "l", "k", "h"] * 25 + ["slash", *"oran", "escape"] * 3:
                seen = len(_FRAMES)
                t0 = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                if len(_FRAMES) > seen:
                    # From the key press to the end of the first frame painted after it.
                    latencies.append(_FRAMES[seen] - t0)
            latencies.sort()
            p50 = statistics.median(latencies)
            p95 = latencies[int(len(latencies) * 0.95) - 1]
            print(f"key -> frame: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
                  f"({len(latencies)} presses)", flush=True)

            main_id = threading.get_native_id()
            cpu0, wall0 = _thread_cpu(main_id), time.perf_counter()
            proc = psutil.Process()
            pcpu0 = proc.cpu_times()
            await asyncio.sleep(args.seconds)
            cpu1, wall1 = _thread_cpu(main_id), time.perf_counter()
            pcpu1 = proc.cpu_times()
            ui = (cpu1 - cpu0) / (wall1 - wall0) * 100
            total = ((pcpu1.user + pcpu1.system) - (pcpu0.user + pcpu0.system)) / (wall1 - wall0) * 100
            rss = proc.memory_info().rss / 2**20
            health = engine.buffer.poll_health()
            print(f"dashboard thread CPU at {args.refresh:g} s refresh: {ui:.1f} % of a core "
                  f"(whole process incl. engine: {total:.1f} %)", flush=True)
            print(f"RSS: {rss:.0f} MiB; ticks {app.ticks}, last tick {app.last_tick_seconds * 1000:.0f} ms; "
                  f"events applied {app.state.events_applied}; engine {health}", flush=True)
            await pilot.press("q")
    finally:
        await asyncio.to_thread(engine.stop)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--refresh", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU measuring window")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of polling before the app starts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bibnet-bench-") as tmp:
        t0 = time.perf_counter()
        sim = SimProcess(["sim", "--always-open", "--seed", "3", "--sites", str(args.sites)], Path(tmp))
        try:
            print(sim.wait_ready(timeout=600), f"({time.perf_counter() - t0:.1f} s)", flush=True)
            asyncio.run(_measure(args, sim.config_dir))
        finally:
            sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
