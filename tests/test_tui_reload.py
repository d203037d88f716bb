"""The dashboard's reload command: the collector child re-reads its configuration directory.

A writable console presses ctrl+r: the child applies the new inventory (a removed site stops being polled
and leaves the tree; every other check keeps its state); a broken configuration is refused with its
file:line issues and the running one stays; a read-only console sends nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from test_remote import simulated
from test_tui_actions import _notes
from test_tui_live import SITES, _all_up, until

from bibnet_ops.alerts import ReadOnlyError, access_policy
from bibnet_ops.inventory import load_inventory
from bibnet_ops.remote import CollectorProcess
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.changes import ConsoleChanges
from bibnet_ops.tui.widgets import SiteTree

GONE = "bplp-20"  # a leaf: nothing depends on it


@asynccontextmanager
async def dashboard(tmp_path: Path, read_only: bool = False) -> AsyncIterator[tuple[DashboardApp, Path]]:
    async with simulated(tmp_path) as (_sim, config):
        inv = load_inventory(config)
        collector = CollectorProcess(inv, store=False, alerts=False, first_spread=0.1)  # reads the directory
        changes = ConsoleChanges(access_policy(inv.settings, read_only=read_only), acks=collector)
        collector.start()
        app = DashboardApp(inv, collector, lang="en", refresh=0.2, host=lambda: (1.0, 2.0), tiles=False,
                           changes=changes)
        try:
            yield app, config
        finally:
            await asyncio.to_thread(collector.stop)
            changes.close()


async def test_ctrl_r_reloads_the_collector_and_the_screen_follows(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, config), app.run_test(size=(120, 34)) as pilot:
        await until(pilot, lambda: _all_up(app), timeout=40)
        tree = app.screen.query_one(SiteTree)
        assert GONE in tree._site_nodes
        gone_checks = [c for c in app.state.checks if c.startswith(GONE + "/")]
        (config / "sites" / f"{GONE}.toml").unlink()
        await pilot.press("ctrl+r")
        await until(pilot, lambda: any("Configuration reloaded" in n for n in _notes(app)), timeout=30)
        note = next(n for n in _notes(app) if "Configuration reloaded" in n)
        assert f"{len(gone_checks)} removed" in note and "1 site removed" in note
        assert GONE not in app.inventory.sites and GONE not in app.state.sites
        await until(pilot, lambda: GONE not in app.screen.query_one(SiteTree)._site_nodes)
        assert _all_up(app) or all(app.state.site_status(s) is not None for s in SITES if s != GONE)

        # a broken file: refused with its line, the running configuration stays
        site = config / "sites" / "bplp-16.toml"
        site.write_text(site.read_text(encoding="utf-8").replace("wilaya = 16", 'wilaya = "alger"'), encoding="utf-8")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: any("Configuration refused" in n for n in _notes(app)), timeout=30)
        refused = next(n for n in _notes(app) if "Configuration refused" in n)
        assert "bplp-16.toml:" in refused and "[wilaya]" in refused
        assert "bplp-16" in app.inventory.sites


async def test_a_read_only_console_cannot_reload(tmp_path: Path) -> None:
    async with dashboard(tmp_path, read_only=True) as (app, _config), app.run_test(size=(120, 34)) as pilot:
        await until(pilot, lambda: _all_up(app), timeout=40)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: any("Read-only console" in n for n in _notes(app)))
        assert app.changes is not None
        with pytest.raises(ReadOnlyError):
            app.changes.reload_config()
        assert not any("Configuration reloaded" in n for n in _notes(app))
