"""Engine.reconfigure: a reload diffs checks by id; unchanged checks keep their state, no false events."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from test_engine_support import Network, Recorder, network, spec

from bibnet_ops.engine import CheckSeed, Engine
from bibnet_ops.events import Sample, SiteStatusChange, StateChange
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckStatus, Device, Site, SiteStatus

OK, CRIT = CheckStatus.OK, CheckStatus.CRITICAL
LAYOUT = {
    "hub": (None, ["switch"]),
    "lib-a": ("hub", ["web", "scanner"]),
    "lib-b": ("hub", ["web"]),
}


@asynccontextmanager
async def running(net: Network) -> AsyncIterator[tuple[Engine, Recorder]]:
    engine = Engine(net.inventory, seed=3, first_spread=0.05)
    rec = Recorder()
    engine.subscribe(rec)
    task = asyncio.create_task(engine.run())
    try:
        yield engine, rec
    finally:
        engine.stop()
        await task


def _without_site(inv: Inventory, site_id: str) -> Inventory:
    return dataclasses.replace(
        inv, sites={k: v for k, v in inv.sites.items() if k != site_id},
        checks=[c for c in inv.checks if c.site_id != site_id])


def _hits_stop(net: Network, key: str) -> int:
    return net.devices[key].hits


async def test_reload_keeps_hard_state_adds_removes_and_changes_checks() -> None:
    async with network(LAYOUT) as net, running(net) as (engine, rec):
        net.set("fail", "lib-a/scanner")
        await rec.wait_for(lambda r: engine.check_state("lib-a/scanner/http").hard_status == CRIT
                           and engine.site_state("lib-a").status == SiteStatus.DEGRADED
                           and engine.site_state("lib-b").status == SiteStatus.UP)
        before = engine.check_state("lib-a/scanner/http")
        old = net.inventory
        # lib-b removed; lib-a/web gets a 1 s interval; a new site "lib-c" reuses lib-b's server
        lib_b_url = net.devices["lib-b/web"].url
        checks = [c for c in old.checks if c.site_id != "lib-b"]
        checks = [dataclasses.replace(c, interval=1.0, timeout=0.3) if c.id == "lib-a/web/http" else c for c in checks]
        checks.append(spec("lib-c", "web", lib_b_url))
        sites = {k: v for k, v in old.sites.items() if k != "lib-b"}
        sites["lib-c"] = Site(id="lib-c", name_fr="lib-c", parent="hub",
                              devices=(Device(id="web", template="web", address=lib_b_url),))
        new = dataclasses.replace(old, sites=sites, checks=checks)
        mark = len(rec.events)
        result = engine.reconfigure(new)
        assert result.added == ("lib-c/web/http",)
        assert result.removed == ("lib-b/web/http",)
        assert result.changed == ("lib-a/web/http",)
        assert result.unchanged == 2
        assert (result.sites_added, result.sites_removed) == (("lib-c",), ("lib-b",))
        assert "lib-b/web/http" not in engine.snapshot().checks
        assert "lib-b" not in engine.snapshot().sites
        # the added site starts polling and reports UP once
        await rec.wait_for(lambda r: engine.site_state("lib-c").status == SiteStatus.UP)
        await asyncio.sleep(0.6)
        after = engine.check_state("lib-a/scanner/http")
        assert (after.hard_status, after.hard, after.since) == (CRIT, True, before.since)
        assert engine.site_state("lib-a").status == SiteStatus.DEGRADED
        events = rec.events[mark:]
        changes = [e for e in events if isinstance(e, StateChange)]
        # only the added check reports (its initial report); the failing one raises nothing again
        assert [(e.check_id, e.old, e.new) for e in changes] == [("lib-c/web/http", OK, OK)]
        sites = [e for e in events if isinstance(e, SiteStatusChange)]
        assert [(e.site_id, e.new) for e in sites] == [("lib-c", SiteStatus.UP)]
        # the removed check is no longer polled; the changed one follows its 1 s interval
        samples = [e for e in events if isinstance(e, Sample)]
        assert not [s for s in samples if s.check_id == "lib-b/web/http"]
        web = [s for s in samples if s.check_id == "lib-a/web/http"]
        assert len(web) <= 2, f"lib-a/web polled {len(web)} times in 0.6 s at a 1 s interval"


async def test_removed_check_in_flight_is_cancelled_without_an_event() -> None:
    async with network(LAYOUT, timeout=5.0) as net, running(net) as (engine, rec):
        await rec.wait_for(lambda r: engine.site_state("lib-b").status == SiteStatus.UP)
        net.set("hang", "lib-b/web")
        await rec.wait_for(lambda r: engine.check_state("lib-b/web/http").polling, timeout=3)
        mark = len(rec.events)
        engine.reconfigure(_without_site(net.inventory, "lib-b"))
        await asyncio.sleep(0.5)
        assert engine.health().in_flight <= 3  # the hanging poll was cancelled, not left to its 5 s timeout
        assert not [e for e in rec.events[mark:] if getattr(e, "check_id", "").startswith("lib-b/")]
        assert not [e for e in rec.events[mark:] if isinstance(e, SiteStatusChange)]


async def test_removing_the_failing_check_re_derives_the_site() -> None:
    async with network(LAYOUT) as net, running(net) as (engine, rec):
        net.set("fail", "lib-a/scanner")
        await rec.wait_for(lambda r: engine.site_state("lib-a").status == SiteStatus.DEGRADED)
        mark = len(rec.events)
        inv = net.inventory
        engine.reconfigure(dataclasses.replace(inv, checks=[c for c in inv.checks if c.device_id != "scanner"]))
        [event] = [e for e in rec.events[mark:] if isinstance(e, SiteStatusChange)]
        assert (event.site_id, event.old, event.new) == ("lib-a", SiteStatus.DEGRADED, SiteStatus.UP)


async def test_seeded_checks_continue_a_hard_outage_quietly() -> None:
    async with network(LAYOUT) as net:
        inv = net.inventory
        start = _without_site(inv, "lib-b")
        net.set("fail", "lib-b")
        engine = Engine(start, seed=3, first_spread=0.05)
        rec = Recorder()
        engine.subscribe(rec)
        task = asyncio.create_task(engine.run())
        try:
            await rec.wait_for(lambda r: engine.site_state("lib-a").status == SiteStatus.UP
                               and engine.site_state("hub").status == SiteStatus.UP)
            mark = len(rec.events)
            seed = {"lib-b/web/http": CheckSeed(CRIT, hard=True, since=1000.0, reason="HTTP 503")}
            result = engine.reconfigure(inv, seed=seed)
            assert result.seeded == ("lib-b/web/http",)
            state = engine.site_state("lib-b")
            assert state.status == SiteStatus.DOWN  # taken over as it was, at once
            await rec.wait_for(lambda r: any(isinstance(e, Sample) and e.check_id == "lib-b/web/http"
                                             for e in r.events[mark:]))
            await asyncio.sleep(0.4)
            snap = engine.check_state("lib-b/web/http")
            assert (snap.hard_status, snap.hard, snap.since) == (CRIT, True, 1000.0)
            assert not [e for e in rec.events[mark:] if isinstance(e, StateChange | SiteStatusChange)]
            # it recovers like any check: one HARD recovery, one site event
            net.set("ok", "lib-b")
            await rec.wait_for(lambda r: engine.site_state("lib-b").status == SiteStatus.UP)
            changes = [e for e in rec.events[mark:] if isinstance(e, StateChange)]
            assert [(e.old, e.new, e.hard) for e in changes] == [(CRIT, OK, True)]
        finally:
            engine.stop()
            await task


async def test_seeded_soft_episode_keeps_its_attempt_count() -> None:
    async with network({"s": (None, ["web"])}, retries=3) as net:
        net.set("fail", "s")
        engine = Engine(dataclasses.replace(net.inventory, checks=[], sites={}), seed=1, first_spread=0.05)
        rec = Recorder()
        engine.subscribe(rec)
        task = asyncio.create_task(engine.run())
        try:
            await asyncio.sleep(0.05)
            engine.reconfigure(net.inventory, seed={"s/web/http": CheckSeed(CRIT, hard=False, attempt=2)})
            # attempt 3 of 3 is the next failure: HARD at once, reported against the OK hard state
            await rec.wait_for(lambda r: r.of(StateChange))
            [change] = rec.of(StateChange)
            assert (change.old, change.new, change.hard, change.attempt) == (OK, CRIT, True, 3)
        finally:
            engine.stop()
            await task


async def test_a_site_left_without_checks_is_forgotten_quietly() -> None:
    async with network(LAYOUT) as net, running(net) as (engine, rec):
        net.set("fail", "lib-b")
        await rec.wait_for(lambda r: engine.site_state("lib-b").status == SiteStatus.DOWN)
        mark = len(rec.events)
        inv = net.inventory  # lib-b stays in the inventory, but its checks go (another collector's share)
        engine.reconfigure(inv, [c for c in inv.checks if c.site_id != "lib-b"])
        await asyncio.sleep(0.5)
        assert engine.site_state("lib-b").status is None
        assert not [e for e in rec.events[mark:] if isinstance(e, SiteStatusChange | StateChange)]
        # handed back later with its last state: it continues, still without an event
        engine.reconfigure(inv, seed={"lib-b/web/http": CheckSeed(CRIT, since=5.0)})
        assert engine.site_state("lib-b").status == SiteStatus.DOWN
        await asyncio.sleep(0.5)
        assert not [e for e in rec.events[mark:] if isinstance(e, SiteStatusChange | StateChange)]
