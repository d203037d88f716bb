"""The dashboard driving the real collector against the real simulator (shortened check timings).

Polls every 0.3 s and HARD after two failures, so each scenario settles in seconds; the collector runs in a
child process exactly as `bibnet-ops dashboard` runs it, and the screens only ever see its events.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bibnet_ops.inventory import Inventory, load_inventory
from bibnet_ops.model import SiteStatus
from bibnet_ops.probes import snmp
from bibnet_ops.remote import CollectorProcess
from bibnet_ops.sim import Simulator
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.screens import OverviewScreen, ProblemsScreen, SiteDetailScreen
from bibnet_ops.tui.widgets import SiteTree

REPO = Path(__file__).resolve().parent.parent
SITES = ["bna", "bplp-31", "bplp-13", "bplp-14", "bplp-20", "bplp-16"]
KEPT = ("catalogue/opac", "router/uplink", "scanner-1/pages")


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for a condition the dashboard reaches on its own (never a fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await pilot.pause(0.05)


def quick_inventory(config: Path, interval: float = 0.3) -> Inventory:
    """The simulator's inventory with a few checks per site, polled every `interval` s, HARD after two failures."""
    inv = load_inventory(config)
    checks = [dataclasses.replace(c, interval=interval, retries=2, retry_interval=0.1, timeout=1.0, recover_after=1)
              for c in inv.checks if f"{c.device_id}/{c.name}" in KEPT]
    return dataclasses.replace(inv, checks=checks)


@asynccontextmanager
async def live(tmp_path: Path) -> AsyncIterator[tuple[Simulator, DashboardApp]]:
    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True)
    snmp.forget_baselines()
    async with sim:
        inv = quick_inventory(sim.write_config(tmp_path / "config"))
        collector = CollectorProcess(inv, store=False, alerts=False, first_spread=0.1, ship_inventory=True).start()
        app = DashboardApp(inv, collector, lang="en", refresh=0.2, host=lambda: (1.0, 2.0), tiles=False)
        try:
            yield sim, app
        finally:
            await asyncio.to_thread(collector.stop)
            snmp.forget_baselines()


def _all_up(app: DashboardApp) -> bool:
    return all(app.state.site_status(s) == SiteStatus.UP for s in SITES)


async def test_live_drill_filter_pause(tmp_path: Path) -> None:
    async with live(tmp_path) as (_sim, app), app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: _all_up(app))
        await pilot.press("slash", *"oran", "enter")
        await until(pilot, lambda: app.screen.query_one(SiteTree).visible_site_ids == ["bplp-31"])
        app.screen.query_one(SiteTree).select_site("bplp-31")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
        table: Any = app.screen.query_one("#checks")
        await until(pilot, lambda: "OK" in str(table.get_cell("bplp-31/catalogue/opac", "state")))
        await until(pilot, lambda: bool(app.state.latency_history.get("bplp-31/catalogue/opac")))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen))
        await pilot.press("p")
        assert app.paused
        seen = app.state.events_applied
        await until(pilot, lambda: app.state.events_applied > seen)  # the model keeps up while the screen holds
        await pilot.press("p", "q")
    assert app.return_code == 0


async def test_live_outage_shows_in_problems(tmp_path: Path) -> None:
    async with live(tmp_path) as (sim, app), app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: _all_up(app))
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        sim.set_fault("bplp-16", "outage")
        screen = app.screen
        assert isinstance(screen, ProblemsScreen)
        await until(pilot, lambda: any(r.site_id == "bplp-16" and r.status == "CRITICAL" and r.hard
                                       for r in screen.rows))
        await until(pilot, lambda: app.state.site_status("bplp-16") == SiteStatus.DOWN)
        assert any(e.site_id == "bplp-16" and e.new == "DOWN" for e in app.state.feed)
        sim.clear_fault(site="bplp-16")
        await until(pilot, lambda: not any(r.site_id == "bplp-16" for r in screen.rows))


async def test_live_parent_outage_folds_children_as_unreachable(tmp_path: Path) -> None:
    async with live(tmp_path) as (sim, app), app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: _all_up(app))
        sim.set_fault("bplp-31", "hub_down")
        children = ("bplp-13", "bplp-14", "bplp-20")
        await until(pilot, lambda: all(app.state.site_status(c) == SiteStatus.UNREACHABLE for c in children))
        assert app.state.site_status("bplp-31") == SiteStatus.DOWN
        tree = app.screen.query_one(SiteTree)
        await until(pilot, lambda: all("○" in str(tree._site_nodes[c].label) for c in children))
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        screen = app.screen
        assert isinstance(screen, ProblemsScreen)
        await until(pilot, lambda: any(r.folded == children for r in screen.rows))
        folded = next(i for i, r in enumerate(screen.rows) if r.folded)
        assert screen.rows[folded].site_id == "bplp-31"
        assert not any(r.site_id in children and not r.folded for r in screen.rows)
