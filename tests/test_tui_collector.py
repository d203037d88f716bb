"""The dashboard with its collector in a child process, as `bibnet-ops dashboard` and `demo` run it.

The screen shows what the child polls from the real simulator, `r` makes the child poll again, a killed
child turns into a COLLECTOR STOPPED badge on a dashboard that keeps answering, a read-only console sends
nothing; and the real command in a real terminal (a pty) leaves no process behind however it ends.
"""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import psutil
import pytest
from test_remote import simulated, slow_inventory, wait_for
from test_tui_actions import _acks, _notes
from test_tui_live import SITES, _all_up, until
from test_tui_support import fixed_inventory, fixed_source, frozen_clock, frozen_host

from bibnet_ops.alerts import access_policy
from bibnet_ops.model import CheckStatus
from bibnet_ops.remote import CollectorProcess
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.changes import AckRequest, ConsoleChanges
from bibnet_ops.tui.screens import ProblemsScreen
from bibnet_ops.tui.widgets import SiteTree, StatusHeader

REPO = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def dashboard(
    tmp_path: Path, read_only: bool = False, lang: str = "en"
) -> AsyncIterator[tuple[DashboardApp, CollectorProcess, Path]]:
    async with simulated(tmp_path) as (_sim, config):
        inv = slow_inventory(config)
        store = tmp_path / "history.db"
        collector = CollectorProcess(inv, store=store, first_spread=0.1, ship_inventory=True)
        changes = ConsoleChanges(
            access_policy(inv.settings, read_only=read_only), acks=collector, store_path=store, timezone=inv.timezone
        )
        collector.start()
        app = DashboardApp(
            inv, collector, lang=lang, refresh=0.2, host=lambda: (1.0, 2.0), tiles=False, changes=changes
        )
        try:
            yield app, collector, store
        finally:
            await asyncio.to_thread(collector.stop)
            changes.close()


def _header(app: DashboardApp) -> str:
    return str(app.screen.query_one(StatusHeader).render())


async def test_the_screen_shows_the_childs_events_and_r_polls_again_in_the_child(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as (app, collector, _store), app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: _all_up(app))
        tree = app.screen.query_one(SiteTree)
        await until(pilot, lambda: all("●" in str(tree._site_nodes[s].label) for s in SITES))
        await until(pilot, lambda: "/s lag " in _header(app) and "6 sites" in _header(app))
        assert collector.pid != os.getpid()
        # Every check OK and quiet for a moment: no retry is pending that could pass for the re-poll.
        await until(pilot, lambda: all(v.status == CheckStatus.OK for v in app.state.checks.values())
                    and time.time() - max(v.last_time or 0 for v in app.state.checks.values()) > 0.5)
        check = app.state.checks["bplp-16/catalogue/opac"]
        assert check.last_time is not None
        before, other = check.last_time, app.state.checks["bplp-13/catalogue/opac"].last_time
        # Checks run every 60 s: a newer result within seconds comes from the re-poll asked with r.
        tree.select_site("bplp-16")
        await pilot.pause()
        await pilot.press("r")
        await until(pilot, lambda: "Re-poll requested: bplp-16" in _notes(app))
        await until(pilot, lambda: (app.state.checks["bplp-16/catalogue/opac"].last_time or 0) > before, timeout=10)
        assert app.state.checks["bplp-13/catalogue/opac"].last_time == other  # only the selection is polled


@pytest.mark.parametrize("lang", ["en", "fr"])
async def test_a_killed_collector_shows_a_badge_and_the_dashboard_keeps_working(tmp_path: Path, lang: str) -> None:
    badge, reason = {"en": ("COLLECTOR STOPPED", "collector stopped: killed by SIGKILL"),
                     "fr": ("COLLECTEUR ARRÊTÉ", "collecteur arrêté : killed by SIGKILL")}[lang]
    async with dashboard(tmp_path, lang=lang) as (app, collector, _store), app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: _all_up(app))
        assert badge not in _header(app)
        assert collector.pid is not None
        os.kill(collector.pid, signal.SIGKILL)
        await until(pilot, lambda: badge in _header(app) and reason in _header(app), timeout=10)
        # the note is a message the app handles after the tick that set the badge
        await until(pilot, lambda: any("killed by SIGKILL" in n for n in _notes(app)))
        # Still answering: the problems view opens and closes, states stay as last received.
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        assert badge in _header(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ProblemsScreen))
        assert _all_up(app)
        started = time.monotonic()
        await pilot.press("q")
    assert app.return_code == 0 and time.monotonic() - started < 5


async def test_a_read_only_console_sends_no_change_to_the_child(tmp_path: Path) -> None:
    async with dashboard(tmp_path, read_only=True) as (app, _collector, store), \
            app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: _all_up(app))
        assert "READ-ONLY" in _header(app)
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        await pilot.press("a")
        await until(pilot, lambda: any("Read-only console" in n for n in _notes(app)))
        changes = app.changes
        assert changes is not None
        with pytest.raises(Exception) as refused:
            changes.acknowledge(AckRequest(("bplp-16/catalogue/opac",), "no"))
        assert type(refused.value).__name__ == "ReadOnlyError"
        await pilot.pause(0.5)
    assert not _acks(store)


@pytest.mark.parametrize(("lang", "badge", "dropped"), [
    ("en", "COLLECTOR STOPPED", "1234 events dropped, every state sent again"),
    ("fr", "COLLECTEUR ARRÊTÉ", "1234 événements perdus, tous les états renvoyés"),
])
async def test_at_80_columns_the_badge_replaces_poll_health_and_drops_are_told(
    lang: str, badge: str, dropped: str
) -> None:
    source = fixed_source()
    app = DashboardApp(fixed_inventory(), source, lang=lang, clock=frozen_clock, host=frozen_host, refresh=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: " 0.2s" in _header(app))  # the lag, in either language
        source.stopped, source.dropped = "exit code 1: StoreError: disk full", 1234
        await until(pilot, lambda: badge in _header(app))
        top, bottom = _header(app).splitlines()
        assert top.startswith(f" {badge} ") and " 0.2s" not in bottom  # stale figures are not shown
        assert "exit code 1: StoreError: disk full" in bottom
        await until(pilot, lambda: any(dropped in n for n in _notes(app)))


# The shipped command in a real terminal.


def _collector_children(pid: int) -> list[psutil.Process]:
    try:
        kids = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [k for k in kids if "bibnet_ops.remote._child" in " ".join(k.cmdline())]


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("ending", ["q", "SIGHUP", "SIGKILL"])
async def test_the_dashboard_command_leaves_no_collector_behind(tmp_path: Path, ending: str) -> None:
    async with simulated(tmp_path) as (_sim, config):
        master, slave = pty.openpty()
        env = dict(os.environ, PYTHONPATH=str(REPO), TERM="xterm-256color", COLUMNS="100", LINES="30")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bibnet_ops", "--config", str(config), "dashboard", "--lang", "en",
             "--store", str(tmp_path / "h.db")],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        )
        os.close(slave)
        screen = bytearray()

        def drain() -> None:  # a terminal reads what the app draws, or the app would block writing
            with suppress(OSError):
                while chunk := os.read(master, 65536):
                    screen.extend(chunk)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            await wait_for(lambda: b"sites" in screen and bool(_collector_children(proc.pid)), timeout=30)
            child = _collector_children(proc.pid)[0]
            if ending == "q":
                os.write(master, b"q")
            else:
                proc.send_signal(getattr(signal, ending))
            ended = time.monotonic()
            await asyncio.to_thread(proc.wait, 10)
            await wait_for(lambda: _gone(child), timeout=5)
            assert time.monotonic() - ended < 5
            if ending == "q":
                assert proc.returncode == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
            reader.join(2)
