"""The scheduler: a hanging device delays nobody else, bounds hold, timeouts are enforced, poll_now works."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
import time
from collections import Counter, defaultdict

import pytest
from test_engine_support import Recorder, network

from bibnet_ops import probes
from bibnet_ops.engine import Engine, _scheduler, guarded_probe, poll_once
from bibnet_ops.engine._scheduler import _PHASE_RANGE, Scheduler
from bibnet_ops.model import CheckSpec, CheckStatus, Sample

SIX_SITES = {f"lib-{i}": (None, ["web"]) for i in range(6)}


async def test_a_hanging_device_delays_no_other_site() -> None:
    """One site never answers (timeout 1 s); five others polled every 0.1 s stay on schedule."""
    layout = {**SIX_SITES, "dead": (None, ["web", "opac", "sru", "oai", "api", "extra"])}
    async with network(layout, interval=0.1, timeout=1.0, retry_interval=0.1) as net:
        net.set("hang", "dead")
        engine = Engine(net.inventory, seed=3, first_spread=0.1, concurrency=8, per_site_concurrency=2)
        starts: dict[str, list[float]] = defaultdict(list)
        rec = Recorder()
        engine.subscribe(rec)
        engine.subscribe(lambda e: starts[e.check_id].append(time.monotonic()) if isinstance(e, Sample) else None)
        task = asyncio.create_task(engine.run())
        await asyncio.sleep(2.5)
        health = engine.health()
        engine.stop()
        await task
    dead = [s for s in rec.of(Sample) if s.check_id.startswith("dead/")]
    assert dead and all(s.status == CheckStatus.CRITICAL for s in dead)
    assert all("no answer" in s.reason or "timed out" in s.reason or "within" in s.reason for s in dead)
    for check_id, times in starts.items():
        if check_id.startswith("dead/"):
            continue
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # polled every 0.1 s for ~2.4 s: a queue behind the dead site would show as missing polls and long gaps
        assert len(times) >= 18, (check_id, len(times))
        assert max(gaps) < 0.25, (check_id, max(gaps))
    # the dead site only ever held its own two slots, so nobody else waited on a slot for long
    assert net.devices["dead/web"].peak_active <= 1
    assert sum(net.devices[f"dead/{d}"].active for d in ("web", "opac", "sru", "oai", "api", "extra")) == 0
    # only the dead site's own checks queue (behind its two slots); the median poll starts on time
    assert health.lag_p50 < 0.05, health
    assert health.queued <= 4, health


async def test_per_site_bound_holds() -> None:
    async with network({"busy": (None, ["a", "b", "c", "d", "e", "f"])}, timeout=0.4) as net:
        net.set("hang", "busy")
        engine = Engine(net.inventory, per_site_concurrency=2, first_spread=0.01)
        task = asyncio.create_task(engine.run())
        peak = 0
        for _ in range(100):
            await asyncio.sleep(0.01)
            peak = max(peak, engine.health().in_flight)
        queued = engine.health().queued
        engine.stop()
        await task
    assert peak == 2
    assert queued == 4


async def _stall(check: CheckSpec) -> Sample:
    """A probe that ignores its own timeout, as a buggy or blocked probe would."""
    await asyncio.sleep(30)
    return Sample(check.id, CheckStatus.OK)


async def test_engine_enforces_timeouts_around_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(probes._cache, "stall", _stall)
    check = CheckSpec(site_id="s", device_id="d", name="c", probe="stall", address="127.0.0.1", timeout=0.2)
    t0 = time.monotonic()
    sample, timed_out = await guarded_probe(check, margin=0.1)
    assert timed_out and time.monotonic() - t0 < 0.5
    assert sample.status == CheckStatus.CRITICAL
    assert sample.reason == "no answer within 0.2 s"


async def test_poll_now_polls_a_selection_at_once() -> None:
    async with network({"a": (None, ["web"]), "b": (None, ["web"])}, interval=60) as net:
        engine = Engine(net.inventory, first_spread=60, seed=1)
        rec = Recorder()
        engine.subscribe(rec)
        task = asyncio.create_task(engine.run())
        try:
            await asyncio.sleep(0.05)
            assert engine.poll_now("a") == 1
            await rec.wait_for(lambda r: any(s.check_id == "a/web/http" for s in r.of(Sample)), timeout=1)
            assert engine.poll_now("nothing/here") == 0
            health = engine.health()
            assert health.completed >= 1 and health.last_poll_age is not None
        finally:
            engine.stop()
            await task


async def test_poll_now_from_another_thread() -> None:
    async with network({"a": (None, ["web"])}, interval=60) as net:
        engine = Engine(net.inventory, first_spread=60, seed=2)
        rec = Recorder()
        engine.subscribe(rec)
        task = asyncio.create_task(engine.run())
        try:
            await asyncio.sleep(0.05)
            assert await asyncio.to_thread(engine.poll_now, "a/web") == 1
            await rec.wait_for(lambda r: bool(r.of(Sample)), timeout=1)
        finally:
            engine.stop()
            await task


async def test_poll_once_runs_each_check_once_in_order() -> None:
    async with network({"a": (None, ["web", "opac"]), "b": (None, ["web"])}) as net:
        net.set("fail", "b")
        samples = await poll_once(net.inventory.checks, concurrency=2, per_site_concurrency=1)
        from bibnet_ops.engine import close_probe_clients

        await close_probe_clients()
    assert [s.check_id for s in samples] == [c.id for c in net.inventory.checks]
    assert [s.status for s in samples] == [CheckStatus.OK, CheckStatus.OK, CheckStatus.CRITICAL]


async def test_snapshot_is_read_only_and_complete() -> None:
    async with network({"a": (None, ["web"]), "b": ("a", ["web"])}) as net:
        engine = Engine(net.inventory, first_spread=0.05)
        rec = Recorder()
        engine.subscribe(rec)
        task = asyncio.create_task(engine.run())
        try:
            await rec.wait_for(lambda r: engine.site_state("b").status is not None)
            snap = engine.snapshot()
            assert set(snap.checks) == {"a/web/http", "b/web/http"}
            assert snap.sites["b"].status is not None
            with pytest.raises(TypeError):
                snap.sites["x"] = snap.sites["a"]  # type: ignore[index]
            assert snap.health.checks_per_second > 0
        finally:
            engine.stop()
            await task


# --- phases: the checks of one device fall due together, devices stay spread ----------------------


def _timed(site: str, device: str, name: str, interval: float, **kw: float) -> CheckSpec:
    return CheckSpec(
        site_id=site, device_id=device, name=name, probe="clock", address="127.0.0.1", interval=interval,
        timeout=0.5, retry_interval=kw.get("retry_interval", interval),
    )


async def _poll_times(
    checks: list[CheckSpec], seconds: float, monkeypatch: pytest.MonkeyPatch, *, first_spread: float = 60.0,
    fail: set[str] | None = None, poll_now_at: tuple[float, list[str]] | None = None,
) -> dict[str, list[float]]:
    """Run a Scheduler for `seconds` and return each check's poll start times (seconds after the start).

    The probe only notes when it ran; checks in `fail` are answered with the retry delay (a SOFT episode)
    until `fail` is emptied.
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    starts: dict[str, list[float]] = defaultdict(list)
    failing = fail if fail is not None else set()

    async def clock(check: CheckSpec) -> Sample:
        starts[check.id].append(loop.time() - t0)
        return Sample(check.id, CheckStatus.CRITICAL if check.id in failing else CheckStatus.OK)

    def on_result(check: CheckSpec, sample: Sample) -> float:
        return check.retry_interval if sample.status is CheckStatus.CRITICAL else check.interval

    monkeypatch.setitem(probes._cache, "clock", clock)
    scheduler = Scheduler(checks, on_result, first_spread=first_spread, rng=random.Random(5))
    task = asyncio.create_task(scheduler.run())
    if poll_now_at is not None:
        await asyncio.sleep(poll_now_at[0])
        scheduler.poll_now(poll_now_at[1])
        await asyncio.sleep(seconds - poll_now_at[0])
    else:
        await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return starts


def _together(a: list[float], b: list[float], tolerance: float = 0.02) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


async def test_checks_of_one_device_poll_together_and_devices_stay_spread(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = []
    for i in range(40):
        site, device = f"lib-{i // 2}", f"scanner-{i % 2}"
        checks += [_timed(site, device, "uptime", 0.4), _timed(site, device, "pages", 0.4),
                   _timed(site, device, "if-errors", 0.8)]
    starts = await _poll_times(checks, 1.9, monkeypatch, first_spread=0.4)
    firsts = []
    for i in range(40):
        key = f"lib-{i // 2}/scanner-{i % 2}"
        uptime, pages, errors = starts[f"{key}/uptime"], starts[f"{key}/pages"], starts[f"{key}/if-errors"]
        assert len(uptime) >= 4, (key, uptime)
        assert _together(uptime, pages), (key, uptime, pages)
        # the slower check polls on the same grid: with every other poll of its device's faster checks
        assert all(any(abs(e - u) <= 0.02 for u in uptime) for e in errors), (key, errors, uptime)
        firsts.append(uptime[0])
    # the 40 devices' first polls spread over the 0.4 s interval instead of bunching
    buckets = Counter(min(int(t / 0.1), 3) for t in firsts)
    assert len(buckets) == 4 and max(buckets.values()) <= 20, sorted(firsts)
    assert max(firsts) - min(firsts) > 0.25, sorted(firsts)


async def test_a_retried_check_returns_to_its_device_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    """During a SOFT episode a check polls at its retry interval; once OK again it rejoins its device."""
    uptime, pages = _timed("lib", "scanner", "uptime", 0.4), _timed("lib", "scanner", "pages", 0.4, retry_interval=0.13)
    failing = {pages.id}
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, failing.clear)
    starts = await _poll_times([uptime, pages], 2.0, monkeypatch, first_spread=0.4, fail=failing)
    up, pg = starts[uptime.id], starts[pages.id]
    gaps = [b - a for a, b in itertools.pairwise(pg)]
    assert any(abs(g - 0.13) < 0.03 for g in gaps), pg  # retried at retry_interval meanwhile
    # after the recovery the two checks poll together again
    late_up = [t for t in up if t > 1.2]
    late_pg = [t for t in pg if t > 1.2]
    assert late_up and _together(late_up, late_pg), (up, pg)


async def test_poll_now_then_back_on_the_device_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    uptime, pages = _timed("lib", "scanner", "uptime", 0.5), _timed("lib", "scanner", "pages", 0.5)
    # the device's grid: its phase (the first draw of the seeded generator) modulo the interval
    grid = random.Random(5).uniform(0.0, _PHASE_RANGE) % 0.5
    ask = grid + 0.3  # past halfway between two points of the grid, after the first poll (< 0.05 s)
    starts = await _poll_times([uptime, pages], ask + 1.5, monkeypatch, first_spread=0.05,
                               poll_now_at=(ask, [pages.id]))
    up, pg = starts[uptime.id], starts[pages.id]
    assert pg[0] < 0.06 and up[0] < 0.06, (up, pg)  # first polls within the first spread
    assert any(ask - 0.01 < t < ask + 0.05 for t in pg), (ask, pg)  # polled at once when asked
    # that poll stands for the one due at grid + 0.5 (no second poll within half an interval), then the
    # check is back on its device's grid
    assert not [t for t in pg if ask + 0.05 < t < grid + 0.95], (grid, pg)
    late_up, late_pg = [t for t in up if t > grid + 0.95], [t for t in pg if t > grid + 0.95]
    assert late_pg and _together(late_up, late_pg), (up, pg)
    assert all(abs((t - grid) / 0.5 - round((t - grid) / 0.5)) < 0.05 for t in late_pg), (grid, late_pg)


async def test_polls_after_the_first_spread_over_the_whole_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collector starting shows everything within its first spread, then polls spread over each interval."""
    checks = [_timed(f"lib-{i}", "scanner", "uptime", 0.8) for i in range(40)]
    starts = await _poll_times(checks, 2.7, monkeypatch, first_spread=0.1)
    firsts = [times[0] for times in starts.values()]
    assert len(firsts) == 40 and max(firsts) < 0.15, sorted(firsts)
    # from the third poll on every device is on its grid: a poll every 0.8 s at its own phase
    later = [times[2] % 0.8 for times in starts.values() if len(times) >= 3]
    assert len(later) == 40, starts
    buckets = Counter(int(t / 0.2) for t in later)  # four quarters of the interval
    assert len(buckets) == 4 and max(buckets.values()) <= 20, sorted(later)


async def test_first_polls_take_the_time_their_number_needs_also_for_checks_added_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A start (or a takeover) spreads its first polls over count / FIRST_POLLS_PER_SECOND, not a fixed minute."""
    monkeypatch.setattr(_scheduler, "FIRST_POLLS_PER_SECOND", 100.0)
    monkeypatch.setattr(_scheduler, "MIN_FIRST_WINDOW", 0.2)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    firsts: dict[str, float] = {}

    async def clock(check: CheckSpec) -> Sample:
        firsts.setdefault(check.id, loop.time() - t0)
        return Sample(check.id, CheckStatus.OK)

    monkeypatch.setitem(probes._cache, "clock", clock)
    start = [_timed(f"lib-{i}", "scanner", "uptime", 600) for i in range(120)]
    later = [_timed(f"new-{i}", "scanner", "uptime", 600) for i in range(40)]
    scheduler = Scheduler(start, lambda c, s: c.interval, first_spread=60, rng=random.Random(3))
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(1.5)
        added_at = loop.time() - t0
        scheduler.add(later)
        await asyncio.sleep(0.7)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    started = [firsts[c.id] for c in start]
    added = [firsts[c.id] - added_at for c in later if c.id in firsts]
    # 120 checks at 100 a second: all within 1.2 s (not 60 s), and spread over it rather than bunched
    assert len(started) == 120 and max(started) < 1.3, sorted(started)
    assert max(started) - min(started) > 0.9, sorted(started)
    # 40 checks taken over at once: all within 0.4 s of the takeover
    assert len(added) == 40 and max(added) < 0.5, sorted(added)


async def test_a_burst_of_due_devices_waits_as_a_backlog_not_as_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of devices due at once (a cold start, a takeover) hold a bounded number of tasks, in order."""
    monkeypatch.setattr(_scheduler, "MAX_POLL_TASKS", 4)
    loop = asyncio.get_running_loop()
    order: list[str] = []
    peak = {"tasks": 0, "queued": 0}
    scheduler: Scheduler

    async def slow(check: CheckSpec) -> Sample:
        order.append(check.site_id)
        peak["tasks"] = max(peak["tasks"], len(scheduler._tasks))
        peak["queued"] = max(peak["queued"], scheduler.health().queued)
        await asyncio.sleep(0.01)
        return Sample(check.id, CheckStatus.OK)

    monkeypatch.setitem(probes._cache, "slow", slow)
    checks = [dataclasses.replace(_timed(f"lib-{i:02d}", "scanner", "uptime", 60), probe="slow") for i in range(30)]
    scheduler = Scheduler(checks, lambda c, s: c.interval, concurrency=1, first_spread=0.0, rng=random.Random(1))
    task = asyncio.create_task(scheduler.run())
    started = loop.time()
    while len(order) < 30 and loop.time() - started < 5:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    health = scheduler.health()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(order) == 30 and len(set(order)) == 30, order
    assert peak["tasks"] <= 4, peak  # at most MAX_POLL_TASKS device polls were tasks at any time
    assert peak["queued"] >= 20, peak  # the rest were counted as queued while they waited
    assert (health.queued, health.in_flight, health.completed) == (0, 0, 30)


async def test_a_devices_checks_start_together_even_when_slots_are_scarce(monkeypatch: pytest.MonkeyPatch) -> None:
    """One network-wide slot, six devices due at once: each device's two checks share its turn."""
    loop = asyncio.get_running_loop()
    starts: dict[str, float] = {}
    peak = {"now": 0, "max": 0}

    async def slow(check: CheckSpec) -> Sample:
        starts.setdefault(check.id, loop.time())
        peak["now"] += 1
        peak["max"] = max(peak["max"], peak["now"])
        await asyncio.sleep(0.05)
        peak["now"] -= 1
        return Sample(check.id, CheckStatus.OK)

    monkeypatch.setitem(probes._cache, "slow", slow)
    checks = [dataclasses.replace(_timed(f"lib-{i}", "scanner", name, 60), probe="slow")
              for i in range(6) for name in ("uptime", "pages")]
    scheduler = Scheduler(checks, lambda c, s: c.interval, concurrency=1, first_spread=0.001, rng=random.Random(1))
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.6)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(starts) == 12
    for i in range(6):
        assert abs(starts[f"lib-{i}/scanner/uptime"] - starts[f"lib-{i}/scanner/pages"]) < 0.01, starts
    # the devices took their turns on the one slot: never more than one device's two checks at once
    assert peak["max"] == 2
    assert max(starts.values()) - min(starts.values()) > 0.2
