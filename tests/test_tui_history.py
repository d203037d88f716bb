"""History on the dashboard: the site screen's stored uptime, events and sparklines; the report screen.

The store is a real SQLite file written by the real StoreWriter from hand-fed events (two days of a
collector up to the frozen clock); the screens read it in thread workers, and the tests wait for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_tui_support import FROZEN_NOW, fixed_inventory, fixed_source, frozen_clock, frozen_host, write_history
from textual.widgets import Input, Select, Sparkline

from bibnet_ops.model import CheckSpec, CheckStatus
from bibnet_ops.reports import build_report, render_report
from bibnet_ops.store import SiteUptime, SqliteStore
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.history import (
    SiteHistory,
    SparkHistory,
    merge_events,
    period_dates,
    report_filename,
    uptime_line,
)
from bibnet_ops.tui.i18n import use_language
from bibnet_ops.tui.netstate import CheckView, FeedEntry
from bibnet_ops.tui.screens import SiteDetailScreen
from bibnet_ops.tui.screens.report import ReportScreen


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return write_history(tmp_path / "history.db")


def _app(store_path: Path | None, **kwargs: Any) -> DashboardApp:
    return DashboardApp(
        fixed_inventory(),
        fixed_source(),
        lang="en",
        clock=frozen_clock,
        host=frozen_host,
        refresh=60.0,
        store_path=store_path,
        **kwargs,
    )


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for the workers' results to reach the screen (never a fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await pilot.pause(0.02)


# Plain helpers.


def test_report_periods() -> None:
    today = date(2026, 3, 15)
    assert period_dates("this_month", today) == (date(2026, 3, 1), today)
    assert period_dates("last_month", today) == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_dates("last_month", date(2026, 1, 10)) == (date(2025, 12, 1), date(2025, 12, 31))
    assert period_dates("last_7_days", today) == (date(2026, 3, 9), today)
    assert period_dates("custom", today, "2026-02-10", " 2026-02-20") == (date(2026, 2, 10), date(2026, 2, 20))
    for bad in (("2026-02-20", "2026-02-10"), ("10/02/2026", "2026-02-20"), ("", "")):
        with pytest.raises(ValueError):
            period_dates("custom", today, *bad)


def test_uptime_line_shows_unknown_share_in_both_languages() -> None:
    day = SiteUptime("s", 24.0, 99.166, 12.0, 0.0, 0.0, 1)
    month = SiteUptime("s", 720.0, 98.7, 42.0, 0.93 * 720 * 60, 0.0, 2)
    use_language("en")
    assert uptime_line(day, month) == "24 h: 99.2 %  30 d: 98.7 % (unknown 93 %)"
    use_language("fr")
    assert uptime_line(day, month) == "24 h : 99,2 %  30 j : 98,7 % (inconnu 93 %)"
    use_language("en")
    assert uptime_line(SiteUptime("s", 24.0, None, 0, 1440, 0, 0), None) == "24 h: no data yet (unknown 100 %)"
    # a collector started a minute ago saw 0.07 % of the day: the rest is unknown, but not all of it
    just_started = SiteUptime("s", 24.0, 75.8, 0.25, 1439, 0.0, 1)
    assert uptime_line(just_started, None) == "24 h: 75.8 % (unknown 99.9 %)"
    use_language("fr")
    assert uptime_line(just_started, None) == "24 h : 75,8 % (inconnu 99,9 %)"
    use_language("en")


def test_stored_events_merge_with_live_ones_once() -> None:
    live = [FeedEntry(100.0004, "a", "a/x/y", "OK", "CRITICAL", "boom")]
    stored = [FeedEntry(100.0, "a", "a/x/y", "OK", "CRITICAL", "boom"), FeedEntry(50.0, "a", "", "UP", "DOWN")]
    merged = merge_events(stored, live, 8)
    assert [e.time for e in merged] == [100.0004, 50.0]


def test_sparkline_seed_is_extended_by_later_samples_only() -> None:
    spec = CheckSpec("a", "web", "opac", "http", "http://a", metric="latency")
    view = CheckView(spec, CheckStatus.OK, latency=0.05, last_time=90.0)
    sparks = SparkHistory()
    assert sparks.series("latency", spec.id, [1.0, 2.0]) == [1.0, 2.0]  # nothing stored yet: the live series
    sparks.seed(SiteHistory("a", 100.0, latency={spec.id: [10.0, 20.0]}))
    sparks.observe(view)  # older than what was read: already in the seed
    view.last_time, view.latency = 110.0, 0.03
    sparks.observe(view)
    sparks.observe(view)  # the same sample seen twice counts once
    assert sparks.series("latency", spec.id, [1.0]) == pytest.approx([10.0, 20.0, 30.0])
    sparks.seed(SiteHistory("a", 120.0, latency={spec.id: [10.0, 20.0, 30.0, 40.0]}))
    assert sparks.series("latency", spec.id, []) == pytest.approx([10.0, 20.0, 30.0, 40.0])


# The site screen.


async def test_site_detail_reads_uptime_events_and_sparklines_from_the_store(store: Path) -> None:
    app = _app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        app.open_site("bplp-25")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen) and app.screen.history is not None)
        screen = app.screen
        assert isinstance(screen, SiteDetailScreen) and screen.history is not None
        assert screen.history.problem == ""
        # 24 h: down the last 12 minutes; 30 d: the collector ran 2 of the 30 days, with a 30-minute outage too.
        uptime = str(screen.query_one("#site-uptime").render())
        assert "24 h: 99.2 %" in uptime
        assert "30 d: 98.5 % (unknown 93 %)" in uptime
        events = str(screen.query_one("#site-events").render())
        assert "HTTP 503" in events and "03-14" in events  # yesterday's outage, only in the store
        assert events.count("catalogue down") == 1  # stored and live: shown once
        spark = screen.query_one("#latency", Sparkline)
        assert len(spark.data or []) == 18 and max(spark.data or [0]) == pytest.approx(200.0)  # 6 stored + 12


async def test_site_detail_without_history_yet(tmp_path: Path) -> None:
    app = _app(tmp_path / "not-yet.db")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.open_site("bplp-31")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen) and app.screen.history is not None)
        assert "no history yet" in str(app.screen.query_one("#site-uptime").render())
        assert len(app.screen.query_one("#latency", Sparkline).data or []) == 12  # the live samples


# The report screen.


def _expected(store: Path, first: date, last: date, by: str, hours: str, fmt: str) -> bytes:
    history = SqliteStore(store, readonly=True)
    try:
        report = build_report(history, fixed_inventory(), first, last, by=by, hours=hours, now=FROZEN_NOW)
    finally:
        history.close()
    rendered = render_report(report, fmt)
    return rendered if isinstance(rendered, bytes) else rendered.encode("utf-8")


async def test_report_screen_previews_and_exports_csv_and_html(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    app = _app(store)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("R")
        screen = app.screen
        assert isinstance(screen, ReportScreen)
        await until(pilot, lambda: screen.outcome is not None)
        assert screen.outcome is not None and screen.outcome.report is not None
        table: Any = screen.query_one("#report-table")
        assert table.row_count == 14  # 13 sites and the network
        row = [str(c) for c in table.get_row("bplp-25")]
        # Opening hours: the night outage of yesterday is outside them, today's counts.
        assert row[1] == "BPLP Constantine" and row[3].startswith("✗") and row[5] == "1"
        status = str(screen.query_one("#report-status").render())
        assert "2026-03-01 → 2026-03-15 · network" in status
        assert screen.query_one("#report-dir", Input).value == str(out)

        # 24x7, one row per region, CSV: the same file `bibnet-ops report` writes.
        screen.query_one("#report-hours", Select).value = "24x7"
        screen.query_one("#report-by", Select).value = "region"
        await until(
            pilot,
            lambda: (
                screen.outcome is not None
                and screen.outcome.request.by == "region"
                and screen.outcome.request.hours == "24x7"
            ),
        )
        assert table.row_count == 6
        await pilot.press("f4")
        await until(pilot, lambda: len(screen.exported) == 1)
        csv_path = screen.exported[0]
        assert csv_path.parent == out and csv_path.suffix == ".csv"
        data = csv_path.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        assert data == _expected(store, date(2026, 3, 1), date(2026, 3, 15), "region", "24x7", "csv")
        text = data.decode("utf-8-sig")
        assert "period_from,period_to,hours,by" in text and "\r\n2026-03-01,2026-03-15,24x7,region,est," in text

        # HTML of a custom period into another directory.
        other = tmp_path / "reports"
        other.mkdir()
        screen.query_one("#report-dir", Input).value = str(other)
        screen.query_one("#report-format", Select).value = "html"
        first = screen.query_one("#report-from", Input)
        first.focus()
        first.value = ""
        await pilot.press(*"2026-03-14", "enter")
        await until(pilot, lambda: screen.outcome is not None and screen.outcome.request.first == date(2026, 3, 14))
        assert screen.query_one("#report-period", Select).value == "custom"
        screen.query_one("#report-table").focus()
        await pilot.press("e")
        await until(pilot, lambda: len(screen.exported) == 2)
        html_path = screen.exported[1]
        assert screen.outcome.report is not None
        assert html_path == other / report_filename(screen.outcome.report, "html")
        html = html_path.read_bytes()
        assert html == _expected(store, date(2026, 3, 14), date(2026, 3, 15), "region", "24x7", "html")
        assert b"<html" in html and b"2026-03-14" in html
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ReportScreen)


@pytest.mark.parametrize("configured", [True, False])
async def test_report_screen_says_when_there_is_no_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    app = _app(tmp_path / "not-yet.db" if configured else None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, ReportScreen)
        await until(pilot, lambda: screen.outcome is not None)
        status = str(screen.query_one("#report-status").render())
        assert ("No history yet" in status and "not-yet.db" in status) if configured else "No history store" in status
        screen.query_one("#report-table").focus()
        await pilot.press("e")
        await until(pilot, lambda: any("history" in n.message for n in app._notifications))
        assert list(tmp_path.glob("bibnet-report-*")) == []
