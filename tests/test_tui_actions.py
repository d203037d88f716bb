"""Changing things from the dashboard: acks (single, batch, root cause, removal), maintenance windows, read-only.

Two set-ups, both with real parts: the fixed network of `test_tui_support` with a real AlertManager running on
its own loop thread and a real SQLite store; and the real collector in its child process polling the real
simulator, where an ack made on the screen reaches the child's AlertManager and its store, and a window
started from the dashboard turns the site MAINTENANCE.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from test_tui_live import REPO, SITES, _all_up, quick_inventory, until
from test_tui_support import fixed_inventory, fixed_source, frozen_clock, frozen_host

from bibnet_ops.alerts import Ack, AlertLog, AlertManager, access_policy, build_alerting, login_name
from bibnet_ops.inventory import load_inventory
from bibnet_ops.model import SiteStatus
from bibnet_ops.probes import snmp
from bibnet_ops.remote import CollectorProcess
from bibnet_ops.sim import Simulator
from bibnet_ops.store import MaintenanceWindow, SqliteStore
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.changes import ConsoleChanges, parse_optional_duration
from bibnet_ops.tui.commands import RegistryCommands
from bibnet_ops.tui.screens import ProblemsScreen, SiteDetailScreen
from bibnet_ops.tui.screens.forms import AckForm, MaintenanceForm
from bibnet_ops.tui.screens.windows import MaintenanceListScreen
from bibnet_ops.tui.widgets import NavTable, StatusHeader


def _acks(store: Path) -> dict[str, Ack]:
    log = AlertLog(store, readonly=True)
    try:
        return log.active_acks(time.time())
    finally:
        log.close()


def _windows(store: Path, **kwargs: Any) -> list[MaintenanceWindow]:
    db = SqliteStore(store, readonly=True)
    try:
        return db.maintenance_windows(**kwargs)
    finally:
        db.close()


def _notes(app: DashboardApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def _cell(app: DashboardApp, table_id: str, row: str, col: str) -> str:
    return str(app.screen.query_one(table_id, NavTable).get_cell(row, col))


async def _type(pilot: Any, text: str) -> None:
    await pilot.press(*("space" if c == " " else c for c in text))


@asynccontextmanager
async def console(tmp_path: Path, read_only: bool = False) -> AsyncIterator[tuple[DashboardApp, Path, AlertManager]]:
    """The fixed network with a real AlertManager on a loop thread of its own and a real store."""
    inventory = fixed_inventory(tmp_path)
    store = tmp_path / "history.db"
    SqliteStore(store).close()
    manager = build_alerting(inventory, store)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-engine-loop", daemon=True)
    thread.start()
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(manager.start(), loop))
    changes = ConsoleChanges(
        access_policy({}, read_only=read_only),
        alerting=manager,
        loop=lambda: loop,
        store_path=store,
        timezone=inventory.timezone,
    )
    app = DashboardApp(
        inventory, fixed_source(), lang="en", clock=frozen_clock, host=frozen_host, refresh=0.2, changes=changes
    )
    try:
        yield app, store, manager
    finally:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(manager.stop(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 5)
        loop.close()
        changes.close()
        if manager.alert_log is not None:
            manager.alert_log.close()


async def _problems(pilot: Any, app: DashboardApp) -> ProblemsScreen:
    await pilot.pause()
    await pilot.press("exclamation_mark")
    await until(pilot, lambda: isinstance(app.screen, ProblemsScreen) and bool(app.screen.rows))
    screen = app.screen
    assert isinstance(screen, ProblemsScreen)
    return screen


async def test_ack_from_problems_records_the_login_name_and_shows_it(tmp_path: Path) -> None:
    async with console(tmp_path) as (app, store, _manager), app.run_test(size=(100, 30)) as pilot:
        screen = await _problems(pilot, app)
        assert screen.rows[0].key == "bplp-25/catalogue/opac"
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AckForm))
        form = app.screen
        assert isinstance(form, AckForm)
        # The site is DOWN: its alert (site:...) is what would page someone, so it is acknowledged too.
        assert form.keys == ("bplp-25/catalogue/opac", "site:bplp-25")
        await _type(pilot, "on it")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        await until(pilot, lambda: set(_acks(store)) == {"bplp-25/catalogue/opac", "site:bplp-25"})
        ack = _acks(store)["bplp-25/catalogue/opac"]
        assert ack.author == login_name() and ack.comment == "on it" and not ack.sticky and ack.expires_at is None
        shown = f"✔ ack by {login_name()}: on it"
        await until(pilot, lambda: shown in _cell(app, "#problems", "bplp-25/catalogue/opac", "reason"))
        assert "✔" in _cell(app, "#problems", "bplp-25/catalogue/opac", "severity")
        # The site's ack covers its other rows, and the site screen shows it too.
        assert shown in _cell(app, "#problems", "bplp-25/oai/sync-lag", "reason")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
        assert shown in _cell(app, "#checks", "bplp-25/catalogue/opac", "reason")
        assert shown in str(app.screen.query_one("#site-info").render())
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        # Removing it: `u` on the row.
        await pilot.press("u")
        await until(pilot, lambda: not _acks(store))
        await until(pilot, lambda: "✔" not in _cell(app, "#problems", "bplp-25/catalogue/opac", "reason"))


async def test_batch_ack_of_marked_rows_sticky_with_expiry(tmp_path: Path) -> None:
    async with console(tmp_path) as (app, store, _manager), app.run_test(size=(100, 30)) as pilot:
        screen = await _problems(pilot, app)
        keys = [r.key for r in screen.rows]
        first = keys.index("bplp-07/oai/sync-lag")
        for _ in range(first):
            await pilot.press("down")
        await pilot.press("space", "space")  # marks a row and moves down: two rows marked
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AckForm))
        form = app.screen
        assert isinstance(form, AckForm)
        assert set(form.keys) == {"bplp-07/oai/sync-lag", "bplp-31/scanner-1/pages"}
        await _type(pilot, "fibre")
        await pilot.press("tab", "space", "tab")  # sticky on, then to the expiry box
        await _type(pilot, "2h")
        await pilot.press("enter")
        await until(pilot, lambda: len(_acks(store)) == 2)
        acks = _acks(store)
        assert set(acks) == {"bplp-07/oai/sync-lag", "bplp-31/scanner-1/pages"}
        for ack in acks.values():
            assert ack.sticky and ack.author == login_name() and ack.comment == "fibre"
            assert ack.expires_at is not None and abs(ack.expires_at - (time.time() + 7200)) < 60
        await until(pilot, lambda: "✔ ack by" in _cell(app, "#problems", "bplp-31/scanner-1/pages", "reason"))
        assert "»" not in _cell(app, "#problems", "bplp-31/scanner-1/pages", "severity")  # marks cleared


async def test_ack_root_cause_and_a_bad_expiry_keeps_the_form_open(tmp_path: Path) -> None:
    async with console(tmp_path) as (app, store, _manager), app.run_test(size=(100, 30)) as pilot:
        await _problems(pilot, app)
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AckForm))
        form = app.screen
        assert isinstance(form, AckForm)
        assert set(form.keys) == {"bplp-25/catalogue/opac", "bplp-25/oai/sync-lag", "site:bplp-25"}
        await pilot.press("enter")  # no comment yet
        await pilot.pause()
        assert app.screen is form and "comment" in str(form.query_one(".form-error").render())
        await _type(pilot, "AT called")
        await pilot.press("tab", "tab")
        await _type(pilot, "soon")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form and "soon" in str(form.query_one(".form-error").render())
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        assert not _acks(store)


async def test_maintenance_started_listed_and_ended_from_the_dashboard(tmp_path: Path) -> None:
    async with console(tmp_path) as (app, store, _manager), app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.selected_site = "bplp-31"
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MaintenanceForm))
        await _type(pilot, "switch swap")
        await pilot.press("enter")
        await until(pilot, lambda: len(_windows(store)) == 1)
        window = _windows(store)[0]
        assert (window.scope, window.target, window.reason) == ("site", "bplp-31", "switch swap")
        assert window.created_by == login_name() and window.exclude_from_sla
        assert window.end is not None and abs(window.end - window.start - 3600) < 1
        await until(pilot, lambda: any("Maintenance window" in n for n in _notes(app)))
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, MaintenanceListScreen) and app.screen.loaded)
        assert _cell(app, "#windows", str(window.id), "target") == "site bplp-31"
        await pilot.press("e")
        await until(pilot, lambda: _windows(store)[0].ended_at is not None)
        assert _windows(store)[0].ended_by == login_name()
        listing = app.screen
        assert isinstance(listing, MaintenanceListScreen)
        await until(pilot, lambda: not listing.windows)


async def test_region_window_counted_in_sla(tmp_path: Path) -> None:
    async with console(tmp_path) as (app, store, _manager), app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_site("bplp-25")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MaintenanceForm))
        form = app.screen
        assert isinstance(form, MaintenanceForm)
        form.query_one("#maint-region").value = True  # type: ignore[attr-defined]
        form.query_one("#maint-sla").value = False  # type: ignore[attr-defined]
        form.query_one("#maint-duration").value = "30m"  # type: ignore[attr-defined]
        form.query_one("#maint-reason").focus()
        await _type(pilot, "power works")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(_windows(store)) == 1)
        window = _windows(store)[0]
        assert (window.scope, window.target, window.exclude_from_sla) == ("region", "est", False)
        assert window.end is not None and abs(window.end - window.start - 1800) < 1


async def test_read_only_refuses_every_change_and_writes_nothing(tmp_path: Path) -> None:
    async with console(tmp_path, read_only=True) as (app, store, _manager), app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "READ-ONLY" in str(app.screen.query_one(StatusHeader).render())
        app.selected_site = "bplp-31"
        await pilot.press("m")
        await pilot.pause()
        assert not isinstance(app.screen, MaintenanceForm)
        screen = await _problems(pilot, app)
        shown = {b.binding.action for b in screen.active_bindings.values() if b.binding.show}
        assert not shown & {"ack", "ack_cause", "unack"} and "refresh_now" in shown
        await pilot.press("a", "A", "u")
        await pilot.pause()
        assert isinstance(app.screen, ProblemsScreen)
        await until(pilot, lambda: len([n for n in _notes(app) if "Read-only console (--read-only)" in n]) == 4)
        # The palette offers no change either.
        provider = RegistryCommands(screen)
        assert not [s for s in provider._specs() if s.change]
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, MaintenanceListScreen) and app.screen.loaded)
        await pilot.press("e")
        await until(pilot, lambda: len([n for n in _notes(app) if "Read-only" in n]) == 5)
        # A forgotten check in a screen would still be stopped by the policy itself.
        changes = app.changes
        assert changes is not None
        for call in (lambda: changes.unacknowledge(["site:bplp-25"]), lambda: changes.end_maintenance(1)):
            try:
                call()
            except Exception as exc:
                assert type(exc).__name__ == "ReadOnlyError"
            else:
                raise AssertionError("a read-only console made a change")
    assert not _acks(store) and not _windows(store)


def test_parse_optional_duration() -> None:
    assert parse_optional_duration("") is None
    assert parse_optional_duration(" 2h ") == 7200
    assert parse_optional_duration("1h30m") == 5400
    assert parse_optional_duration("45") == 45
    for bad in ("soon", "0", "-5m"):
        try:
            parse_optional_duration(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


# The real collector in its child process (engine, history store, alerting and its MaintenanceSync) and simulator.


@asynccontextmanager
async def live_console(
    tmp_path: Path, read_only: bool = False
) -> AsyncIterator[tuple[Simulator, DashboardApp, Path]]:
    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True)
    snmp.forget_baselines()
    async with sim:
        inv = quick_inventory(sim.write_config(tmp_path / "config"))
        # The collector (engine, history store, alerting with its MaintenanceSync) in its child process.
        collector = CollectorProcess(inv, store=tmp_path / "history.db", first_spread=0.1, ship_inventory=True)
        store = collector.store_path
        assert store is not None
        changes = ConsoleChanges(
            access_policy(inv.settings, read_only=read_only),
            acks=collector,
            store_path=store,
            timezone=inv.timezone,
        )
        collector.start()
        app = DashboardApp(
            inv, collector, lang="en", refresh=0.2, host=lambda: (1.0, 2.0), tiles=False, changes=changes
        )
        try:
            yield sim, app, store
        finally:
            await asyncio.to_thread(collector.stop)
            changes.close()
            snmp.forget_baselines()


def _row_of(screen: ProblemsScreen, match: Callable[[Any], bool]) -> int | None:
    return next((i for i, r in enumerate(screen.rows) if match(r)), None)


async def test_live_ack_of_an_outage_and_maintenance_turns_the_site_maintenance(tmp_path: Path) -> None:
    async with live_console(tmp_path) as (sim, app, store), app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: _all_up(app))
        sim.set_fault("bplp-16", "outage")
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        screen = app.screen
        assert isinstance(screen, ProblemsScreen)
        await until(pilot, lambda: app.state.site_status("bplp-16") == SiteStatus.DOWN)
        await until(pilot, lambda: _row_of(screen, lambda r: r.site_id == "bplp-16" and r.hard) is not None)
        row = _row_of(screen, lambda r: r.site_id == "bplp-16" and r.hard)
        assert row is not None
        screen.query_one("#problems", NavTable).move_cursor(row=row)
        key = screen.rows[row].key
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AckForm))
        await _type(pilot, "AT called")
        await pilot.press("enter")
        await until(pilot, lambda: "site:bplp-16" in _acks(store))
        assert _acks(store)["site:bplp-16"].author == login_name()
        await until(pilot, lambda: f"✔ ack by {login_name()}: AT called" in _cell(app, "#problems", key, "reason"))
        # Maintenance on another site from its detail screen: the collector's MaintenanceSync marks it.
        await pilot.press("escape")
        app.open_site("bplp-13")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MaintenanceForm))
        await _type(pilot, "router swap")
        await pilot.press("enter")
        await until(pilot, lambda: len(_windows(store)) == 1)
        await until(pilot, lambda: app.state.site_status("bplp-13") == SiteStatus.MAINTENANCE, timeout=30)
        assert "■ MAINTENANCE" in str(app.screen.query_one("#site-info").render())


async def test_without_a_collector_changes_say_so() -> None:
    app = DashboardApp(fixed_inventory(), fixed_source(), lang="en", clock=frozen_clock, host=frozen_host)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _problems(pilot, app)
        await pilot.press("a")
        await until(pilot, lambda: any("no collector" in n for n in _notes(app)))
        assert app.screen is screen
