"""SVG snapshots of the dashboard at 80x24 and 160x48, in the default and NO_COLOR looks.

Fixed network, fixed states, frozen clock and host figures: nothing here polls, so the pictures never move.
Update with `pytest tests/test_tui_snapshots.py --snapshot-update` after a deliberate change.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_tui_support import fixed_inventory, fixed_source, frozen_clock, frozen_host, write_history

from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.screens.report import ReportScreen


def _app(lang: str = "en", **kwargs: Any) -> DashboardApp:
    return DashboardApp(fixed_inventory(), fixed_source(), lang=lang, clock=frozen_clock, host=frozen_host,
                        refresh=60.0, **kwargs)


async def _select_oran(pilot: Any) -> None:
    await pilot.pause()
    pilot.app.selected_site = "bplp-31"
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@pytest.mark.parametrize("look", ["default", "no_color"])
def test_overview(snap_compare: Any, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int], look: str) -> None:
    if look == "no_color":
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    assert snap_compare(_app(), terminal_size=size, run_before=_select_oran)


def test_overview_filtering_80x24(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The filter box floats over the feed: map and tree keep their size while the technician types."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert snap_compare(_app(), terminal_size=(80, 24), press=["slash", *"oran"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_site_detail(snap_compare: Any, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)

    async def open_constantine(pilot: Any) -> None:
        await pilot.pause()
        pilot.app.open_site("bplp-25")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=open_constantine)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_problems(snap_compare: Any, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert snap_compare(_app(), terminal_size=size, press=["exclamation_mark"])


def test_overview_french_tiles_high_contrast(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = _app(lang="fr", tiles=True, theme="high-contrast")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_select_oran)


def test_report_80x24(snap_compare: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir("/")  # the export directory shown is the current one
    app = _app(store_path=write_history(tmp_path / "history.db"))

    async def computed(pilot: Any) -> None:
        await pilot.press("R")
        async with asyncio.timeout(20):
            while not (isinstance(app.screen, ReportScreen) and app.screen.outcome is not None):
                await pilot.pause(0.02)
            # the table sizes its columns to the new rows on a later refresh: wait for that, not a fixed time
            table = app.screen.query_one("#report-table")
            while table.virtual_size.width < 60:
                await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=computed)


def test_help_80x24(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert snap_compare(_app(), terminal_size=(80, 24), press=["question_mark"])
