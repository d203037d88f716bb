"""A served dashboard follows a reload another tab asked for: the `Reloaded` event in its stream."""

from __future__ import annotations

import dataclasses

from test_tui_live import until
from test_tui_support import fixed_events, fixed_inventory, frozen_clock, frozen_host

from bibnet_ops.events import Sample
from bibnet_ops.model import CheckStatus
from bibnet_ops.remote import Reloaded
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.source import StaticSource
from bibnet_ops.tui.widgets import SiteTree


async def test_the_dashboard_follows_a_reload_told_in_its_stream() -> None:
    before = fixed_inventory()
    sites = {k: v for k, v in before.sites.items() if k != "bplp-01"}  # a leaf site removed from config/
    after = dataclasses.replace(before, sites=sites, checks=[c for c in before.checks if c.site_id != "bplp-01"])
    source = StaticSource(fixed_events())
    app = DashboardApp(before, source, lang="en", clock=frozen_clock, host=frozen_host, refresh=60.0, tiles=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "bplp-01" in app.screen.query_one(SiteTree).visible_site_ids
        later = Sample("bplp-25/catalogue/opac", CheckStatus.OK, "HTTP 200 OK", 0.1, time=frozen_clock() + 1)
        source._events += [Reloaded(after, "0 checks added, 3 removed, 0 changed, 36 unchanged; 1 site removed"),
                           later]
        app.tick()
        await until(pilot, lambda: "bplp-01" not in app.screen.query_one(SiteTree).visible_site_ids)
        assert "bplp-01" not in app.state.sites and app.inventory is after
        assert app.state.checks["bplp-25/catalogue/opac"].last_time == frozen_clock() + 1  # events after it applied
        await until(pilot, lambda: any("1 site removed" in str(n.message) for n in app._notifications))
