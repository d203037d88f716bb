"""Pilot tests of the dashboard on a fixed network: navigation, filter, pause, help, palette, problems."""

from __future__ import annotations

import pytest
from test_tui_actions import _problems
from test_tui_support import fixed_inventory, fixed_source, frozen_clock, frozen_host

from bibnet_ops.events import SiteStatusChange
from bibnet_ops.model import SiteStatus
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.screens import HelpScreen, OverviewScreen, SiteDetailScreen
from bibnet_ops.tui.source import StaticSource
from bibnet_ops.tui.widgets import EventFeed, NetworkMap, SiteTree, StatusHeader, TileGrid


def _app(**kwargs: object) -> DashboardApp:
    options: dict[str, object] = {"lang": "en", "clock": frozen_clock, "host": frozen_host, "refresh": 0.5}
    options.update(kwargs)
    return DashboardApp(fixed_inventory(), fixed_source(), **options)  # type: ignore[arg-type]


def _header(app: DashboardApp) -> str:
    header = app.screen.query_one(StatusHeader)
    return str(header.render())


async def test_overview_shows_counts_tree_and_feed() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        text = _header(app)
        assert "▼1" in text and "○2" in text and "13 sites" in text and "10:30:00" in text
        tree = app.screen.query_one(SiteTree)
        assert set(tree.visible_site_ids) == set(app.inventory.sites)
        feed = str(app.screen.query_one(EventFeed).render())
        assert "bplp-25" in feed and "DOWN" in feed


async def test_drill_down_and_back() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one(SiteTree).select_site("bplp-25")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SiteDetailScreen) and app.screen.site_id == "bplp-25"
        table = app.screen.query_one("#checks")
        assert table.row_count == 3  # type: ignore[attr-defined]
        info = str(app.screen.query_one("#site-info").render())
        assert "DOWN" in info and "bm-25-01" in info and "bna" in info
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        assert app.selected_site == "bplp-25"


async def test_vi_keys_move_and_o_opens() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("j", "j")
        await pilot.pause()
        assert app.selected_site is not None
        first = app.selected_site
        await pilot.press("j")
        await pilot.pause()
        assert app.selected_site != first
        await pilot.press("k")
        await pilot.pause()
        assert app.selected_site == first
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, SiteDetailScreen) and app.screen.site_id == first
        await pilot.press("backspace")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


@pytest.mark.parametrize(("typed", "expected"), [("down", {"bplp-25"}), ("oran", {"bplp-31"}),
                                                  ("sud-ouest", {"bplp-08", "bplp-01"})])
async def test_filter(typed: str, expected: set[str]) -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *typed, "enter")
        await pilot.pause()
        assert app.filter_text == typed
        assert set(app.screen.query_one(SiteTree).visible_site_ids) == expected
        assert f"filter: {typed}" in _header(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.filter_text == ""
        assert len(app.screen.query_one(SiteTree).visible_site_ids) == 13


async def test_pause_holds_the_screen_and_resumes() -> None:
    source = StaticSource()
    app = DashboardApp(fixed_inventory(), source, lang="en", clock=frozen_clock, host=frozen_host, refresh=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert app.paused and "PAUSED" in _header(app)
        source._events.append(SiteStatusChange("bplp-31", frozen_clock(), SiteStatus.UP, SiteStatus.DOWN, "test"))
        app.tick()
        await pilot.pause()
        tree_label = str(app.screen.query_one(SiteTree)._site_nodes["bplp-31"].label)
        assert "▼" not in tree_label  # the screen is frozen while paused
        await pilot.press("p")
        await pilot.pause()
        assert not app.paused and "PAUSED" not in _header(app)
        assert "▼" in str(app.screen.query_one(SiteTree)._site_nodes["bplp-31"].label)


async def test_refresh_rate_keys() -> None:
    app = _app(refresh=2.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("plus")
        assert app.refresh_interval == 1.0
        await pilot.press("minus", "minus")
        assert app.refresh_interval == 5.0
        await pilot.pause()
        assert "⟳5s" in _header(app)


async def test_problems_view_folds_unreachable() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _problems(pilot, app)
        rows = screen.rows
        assert rows[0].site_id == "bplp-25" and rows[1].folded == ("bm-25-01", "bplp-23")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SiteDetailScreen) and app.screen.site_id == "bplp-25"
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_problems_detail_line_gives_the_whole_reason_of_the_cursor_row() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        detail = (await _problems(pilot, app)).query_one("#problem-detail")
        # at 80 columns the table has no room for the reason column: the line under it says it
        assert str(detail.render()) == "▼ CRITICAL  bplp-25/catalogue/opac · 12m (10:18:00)\nconnection refused"
        await pilot.press("j")
        await pilot.pause()
        assert str(detail.render()).splitlines()[1] == "behind bplp-25: bm-25-01, bplp-23"
        await pilot.press("j", "j", "j")
        await pilot.pause()
        assert str(detail.render()).splitlines() == [
            "▲ WARNING (SOFT)  bplp-31/scanner-1/pages · 3m (10:27:00)", "3 pages/h (warning below 5)"
        ]


async def test_help_is_generated_from_bindings_in_french() -> None:
    app = _app(lang="fr")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = app.export_screenshot()
        assert "Quitter" in shown and "Filtrer" in shown and "F1" in shown and "Touches" in shown
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_palette_runs_registry_actions() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Pause")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.paused


async def test_tiles_view_and_repoll() -> None:
    source = fixed_source()
    app = DashboardApp(fixed_inventory(), source, lang="en", clock=frozen_clock, host=frozen_host, tiles=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        grid = app.screen.query_one(TileGrid)
        assert grid.display and grid.has_focus
        await pilot.press("l")
        await pilot.pause()
        assert app.selected_site == grid.current
        await pilot.press("r")
        assert source.polled == [grid.current]
        await pilot.press("t")
        await pilot.pause()
        assert app.screen.query_one(SiteTree).display


async def test_map_redraws_only_changed_rows() -> None:
    source = StaticSource()
    app = DashboardApp(fixed_inventory(), source, lang="en", clock=frozen_clock, host=frozen_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        netmap = app.screen.query_one(NetworkMap)
        before = netmap.rows_drawn
        source._events.append(SiteStatusChange("bplp-11", frozen_clock(), SiteStatus.UP, SiteStatus.DOWN))
        app.tick()
        await pilot.pause()
        assert netmap.rows_drawn - before == 1


async def test_q_quits() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_tick_after_the_last_screen_is_gone() -> None:
    # Textual closes every screen before the app's timers when it shuts down, so a refresh tick can land
    # on an empty screen stack (it did: ScreenStackError from refresh_header, a quit at the wrong moment).
    source = StaticSource()
    app = DashboardApp(fixed_inventory(), source, lang="en", clock=frozen_clock, host=frozen_host)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
    assert app.screen_stack == []
    source._events.append(SiteStatusChange("bplp-11", frozen_clock(), SiteStatus.UP, SiteStatus.DOWN))
    app.tick()  # the tick that was already due when the screens went
    app.refresh_header()
    assert app.return_code in (None, 0)
