"""Site status and dependencies: DEGRADED, DOWN, UNREACHABLE behind a down hub, MAINTENANCE, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from test_engine_support import Network, Recorder, network

from bibnet_ops.engine import Engine
from bibnet_ops.events import SiteStatusChange
from bibnet_ops.model import SiteStatus

UP, DEGRADED, DOWN = SiteStatus.UP, SiteStatus.DEGRADED, SiteStatus.DOWN
UNREACHABLE, MAINTENANCE = SiteStatus.UNREACHABLE, SiteStatus.MAINTENANCE

STAR = {
    "hub": (None, ["switch", "web"]),
    "lib-a": ("hub", ["web"]),
    "lib-b": ("hub", ["web", "scanner"]),
    "annex": ("lib-a", ["web"]),
}


@asynccontextmanager
async def running(net: Network) -> AsyncIterator[tuple[Engine, Recorder]]:
    engine = Engine(net.inventory, seed=7, first_spread=0.05)
    rec = Recorder()
    engine.subscribe(rec)
    task = asyncio.create_task(engine.run())
    try:
        yield engine, rec
    finally:
        engine.stop()
        await task


def _site_events(rec: Recorder, since: int = 0) -> list[SiteStatusChange]:
    return [e for e in rec.events[since:] if isinstance(e, SiteStatusChange)]


def _status(engine: Engine, site: str) -> SiteStatus | None:
    return engine.site_state(site).status


async def _all_up(engine: Engine, rec: Recorder) -> None:
    await rec.wait_for(lambda r: all(_status(engine, s) == UP for s in STAR))


async def test_sites_report_up_once_every_check_answered() -> None:
    async with network(STAR) as net, running(net) as (engine, rec):
        await _all_up(engine, rec)
        initial = _site_events(rec)
        assert sorted(e.site_id for e in initial) == sorted(STAR)
        assert all(e.old == e.new == UP for e in initial)


async def test_one_failing_device_degrades_its_site_only() -> None:
    async with network(STAR) as net, running(net) as (engine, rec):
        await _all_up(engine, rec)
        mark = len(rec.events)
        net.set("fail", "lib-b/scanner")
        await rec.wait_for(lambda r: _status(engine, "lib-b") == DEGRADED)
        [event] = _site_events(rec, mark)
        assert (event.site_id, event.old, event.new) == ("lib-b", UP, DEGRADED)
        assert "scanner/http CRITICAL" in event.reason
        net.set("ok", "lib-b/scanner")
        await rec.wait_for(lambda r: _status(engine, "lib-b") == UP)


async def test_hub_down_is_one_root_cause_event_naming_the_sites_behind_it() -> None:
    async with network(STAR) as net, running(net) as (engine, rec):
        await _all_up(engine, rec)
        mark = len(rec.events)
        net.set("fail", "hub", "lib-a", "lib-b", "annex")  # the hub's uplink is cut: nothing behind answers
        await rec.wait_for(lambda r: all(_status(engine, s) == UNREACHABLE for s in ("lib-a", "lib-b", "annex"))
                           and _status(engine, "hub") == DOWN)
        await asyncio.sleep(0.5)  # nothing more may follow
        events = _site_events(rec, mark)
        roots = [e for e in events if e.new == DOWN]
        assert len(roots) == 1, events
        assert roots[0].site_id == "hub"
        assert sorted(roots[0].affected) == ["annex", "lib-a", "lib-b"]
        assert events[0] is roots[0]  # the root cause comes first, the sites it explains follow
        followers = events[1:]
        assert sorted(e.site_id for e in followers) == ["annex", "lib-a", "lib-b"]
        assert all(e.new == UNREACHABLE and e.root_cause == "hub" for e in followers)
        assert engine.site_state("annex").root_cause == "hub"

        # the hub comes back: the sites behind it are re-checked at once, never declared DOWN meanwhile
        mark = len(rec.events)
        net.set("ok", "hub", "lib-a", "lib-b", "annex")
        await rec.wait_for(lambda r: all(_status(engine, s) == UP for s in STAR))
        events = _site_events(rec, mark)
        assert all(e.new == UP for e in events), [(e.site_id, e.old.value, e.new.value) for e in events]
        assert sorted(e.site_id for e in events) == sorted(STAR)


async def test_hub_uplink_down_alone_makes_the_hub_down() -> None:
    """The uplink device is the hub's reachability check: its failure is DOWN even if the web answers."""
    async with network(STAR) as net, running(net) as (engine, rec):
        await _all_up(engine, rec)
        net.set("fail", "hub/switch")
        await rec.wait_for(lambda r: _status(engine, "hub") == DOWN)
        await asyncio.sleep(0.3)
        # the sites behind still answer, so they are not UNREACHABLE
        assert all(_status(engine, s) == UP for s in ("lib-a", "lib-b", "annex"))
        [down] = [e for e in _site_events(rec) if e.new == DOWN]
        assert down.affected == ()


async def test_child_down_behind_a_healthy_parent_is_down() -> None:
    async with network(STAR) as net, running(net) as (engine, rec):
        await _all_up(engine, rec)
        hub_hits = net.devices["hub/switch"].hits
        mark = len(rec.events)
        net.set("fail", "lib-a")
        await rec.wait_for(lambda r: _status(engine, "lib-a") == DOWN)
        events = _site_events(rec, mark)
        assert [(e.site_id, e.new) for e in events] == [("lib-a", DOWN)]
        assert net.devices["hub/switch"].hits > hub_hits  # the parent was re-checked before deciding
        assert _status(engine, "annex") == UP


async def test_hang_behind_a_down_hub_is_unreachable_too() -> None:
    async with network(STAR, timeout=0.3) as net, running(net) as (engine, rec):
        await _all_up(engine, rec)
        net.set("hang", "hub", "lib-a", "lib-b", "annex")
        await rec.wait_for(lambda r: _status(engine, "hub") == DOWN
                           and all(_status(engine, s) == UNREACHABLE for s in ("lib-a", "lib-b", "annex")),
                           timeout=8)
        roots = [e for e in _site_events(rec) if e.new == DOWN]
        assert len(roots) == 1 and sorted(roots[0].affected) == ["annex", "lib-a", "lib-b"]


async def test_maintenance_overrides_and_releases() -> None:
    async with network(STAR) as net, running(net) as (engine, rec):
        await _all_up(engine, rec)
        mark = len(rec.events)
        engine.set_maintenance("lib-b", True)
        assert _status(engine, "lib-b") == MAINTENANCE
        net.set("fail", "lib-b")
        await asyncio.sleep(0.4)
        assert _status(engine, "lib-b") == MAINTENANCE
        net.set("ok", "lib-b")
        await asyncio.sleep(0.4)
        engine.set_maintenance("lib-b", False)
        await rec.wait_for(lambda r: _status(engine, "lib-b") == UP)
        events = _site_events(rec, mark)
        assert [(e.old, e.new) for e in events] == [(UP, MAINTENANCE), (MAINTENANCE, UP)]
