"""The dashboard application: view state, the refresh timer that applies engine events, and actions.

Engine events are buffered by an `EventSource` and applied on a timer (1-2 s by default, +/- to change),
so a storm of events costs one redraw per tick and the frame rate stays bounded over slow links.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from textual.command import Provider
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.timer import Timer

from bibnet_ops.engine import Evidence
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import Site
from bibnet_ops.remote import Reloaded
from bibnet_ops.store import StoreLike
from bibnet_ops.tui.arabic import display_text
from bibnet_ops.tui.changes import ConsoleChanges
from bibnet_ops.tui.commands import RegistryCommands
from bibnet_ops.tui.console import ConsoleApp
from bibnet_ops.tui.filters import SiteFilter, load_wilaya_names
from bibnet_ops.tui.fmt import clock_time, short_site_name
from bibnet_ops.tui.headerdata import HeaderData, source_notice
from bibnet_ops.tui.host import Dashboard
from bibnet_ops.tui.i18n import detect_language, tr, use_language
from bibnet_ops.tui.keys import use_keymap, with_scope
from bibnet_ops.tui.netstate import NetworkState
from bibnet_ops.tui.screens import HelpScreen, OverviewScreen, ProblemsScreen, SiteDetailScreen
from bibnet_ops.tui.screens.base import LiveScreen
from bibnet_ops.tui.screens.report import ReportScreen
from bibnet_ops.tui.screens.windows import MaintenanceListScreen
from bibnet_ops.tui.source import EventSource
from bibnet_ops.tui.themes import HIGH_CONTRAST, THEMES, theme_name

__all__ = ["REFRESH_STEPS", "DashboardApp", "psutil_host"]

# Refresh intervals +/- step through, in seconds.
REFRESH_STEPS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def psutil_host() -> tuple[float, float]:
    """CPU and memory use (percent) of the machine the collector runs on."""
    import psutil

    return psutil.cpu_percent(interval=None), psutil.virtual_memory().percent


class DashboardApp(ConsoleApp):
    """Live network dashboard.

    Args:
        inventory: sites, regions and checks to show.
        source: where engine events come from (None: a still picture of `state`).
        lang: "en" or "fr" (default: from the locale).
        arabic: "shaped" to shape and reorder Arabic for terminals without bidi, "raw" to pass it through.
        theme: a key of `THEMES` or a Textual theme name.
        refresh: seconds between applying buffered events to the screen.
        clock: UTC epoch now (frozen in snapshot tests).
        host: CPU and memory percent of the collector host (frozen in snapshot tests).
        state: a prepared network state (default: an empty one for `inventory`).
        changes: acks and maintenance windows this console may make, and its read-only policy (None: none).
        tiles: force the tile grid (True) or the tree (False); None picks by network size.
        on_exit: called once when the app stops, before the process moves on (e.g. to stop the engine).
        store_path: the history store the site screen and the report screen read (None: no history).
        keymap: binding id -> keys, checked by `tui.keymap.load_keymap` (None: the registry's own keys).
    """

    CSS_PATH = "dashboard.tcss"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {RegistryCommands}
    ENABLE_COMMAND_PALETTE = True

    # View state; repaint=False because watchers redraw exactly what depends on each (never the whole screen).
    paused: reactive[bool] = reactive(False, init=False, repaint=False)
    refresh_interval: reactive[float] = reactive(2.0, init=False, repaint=False)
    filter_text: reactive[str] = reactive("", init=False, repaint=False)
    selected_site: reactive[str | None] = reactive(None, init=False, repaint=False)

    def __init__(
        self,
        inventory: Inventory,
        source: EventSource | None = None,
        *,
        lang: str | None = None,
        arabic: str = "shaped",
        theme: str = "default",
        refresh: float = 2.0,
        clock: Callable[[], float] = time.time,
        host: Callable[[], tuple[float, float] | None] | None = psutil_host,
        state: NetworkState | None = None,
        tiles: bool | None = None,
        changes: ConsoleChanges | None = None,
        store_path: StoreLike | None = None,
        keymap: dict[str, str] | None = None,
    ) -> None:
        use_language(lang or detect_language())
        use_keymap(keymap or {})
        super().__init__(changes)
        self._bindings = with_scope(self._bindings, "app", self.read_only)
        self.inventory = inventory
        self.source = source
        self.arabic = arabic
        self.tz = ZoneInfo(inventory.timezone or "Africa/Algiers")
        self.state = state or NetworkState(inventory, timezone=inventory.timezone or "Africa/Algiers")
        self.now = clock
        self._host = host
        self.tiles = tiles
        self.store_path = store_path
        self.title = tr("app.title")
        self._wilayas = load_wilaya_names(inventory.root if inventory.root else None)
        self._filter = SiteFilter.parse("")
        self.visible_sites: list[Site] = list(inventory.sites.values())
        self._timer: Timer | None = None
        self._theme_choice = theme
        self.register_theme(HIGH_CONTRAST)
        self.theme = theme_name(theme)
        self.set_reactive(DashboardApp.refresh_interval, refresh)
        self.ticks = 0
        self.last_tick_seconds = 0.0
        self.collector_stopped: str | None = None
        self.events_dropped = 0

    # Lifecycle.

    def on_mount(self) -> None:
        self.push_screen(OverviewScreen())
        # Paint the first frame before applying the backlog of events, then catch up.
        self.call_after_refresh(self.tick)
        self._timer = self.set_interval(self.refresh_interval, self.tick, name="refresh")
        self._install_signal_handlers()
        self.refresh_header()

    def on_unmount(self) -> None:
        self._remove_signal_handlers()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        """Stop the refresh timer first so no tick touches screens being torn down, then exit."""
        if self._timer is not None:
            self._timer.stop()
        super().exit(*args, **kwargs)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
                loop.add_signal_handler(sig, self._terminal_gone, sig)

    def _remove_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                with suppress(NotImplementedError, ValueError, AttributeError):
                    loop.remove_signal_handler(sig)

    def _terminal_gone(self, sig: int) -> None:
        """The terminal hung up (or we were told to stop): leave now, never spin on a dead tty."""
        self.exit(return_code=128 + sig)
        # If restoring a vanished terminal blocks, do not linger: the caller's cleanup runs in `finally`.
        watchdog = threading.Timer(5.0, os._exit, args=(128 + sig,))
        watchdog.daemon = True
        watchdog.start()

    # The refresh timer.

    def tick(self) -> None:
        """Apply buffered events and redraw what changed (nothing but the clock while paused).

        Does nothing once the screens are gone: Textual closes them before it stops the app's timers, so
        a tick can still fire while the app shuts down.
        """
        if not self.screen_stack:
            return
        started = time.perf_counter()
        self.ticks += 1
        self._apply_events()
        self._watch_collector()
        self.refresh_acks()
        if not self.paused:
            self._push_changes()
        self.refresh_header()
        self.last_tick_seconds = time.perf_counter() - started

    def _apply_events(self) -> None:
        if self.source is None:
            return
        events = self.source.drain()
        start = 0
        for i, event in enumerate(events):
            if type(event) is Reloaded:  # another console of a served collector reloaded it: follow, in order
                self.state.apply_many(events[start:i])
                self.config_reloaded(event.inventory)
                self.notify(tr("note.reloaded", summary=event.summary))
                start = i + 1
        self.state.apply_many(events[start:] if start else events)

    def _watch_collector(self) -> None:
        """Say once when the collector stops (the header keeps showing it), and when events were dropped."""
        if self.source is None:
            return
        stopped = self.source.collector_stopped()
        if stopped is not None and self.collector_stopped is None:
            self.notify(tr("note.collector_stopped", reason=stopped), severity="error", timeout=30)
        self.collector_stopped = stopped
        dropped = self.source.events_dropped()
        if dropped > self.events_dropped:
            self.notify(tr("note.events_dropped", n=dropped - self.events_dropped), severity="warning")
        self.events_dropped = dropped

    def _push_changes(self) -> None:
        sites, checks = self.state.take_dirty()
        if sites and self._filter.states:
            self._refilter()
        for screen in self.screen_stack:
            if isinstance(screen, LiveScreen) and screen.ready:
                # A screen being torn down (quit, pop) may have lost its widgets already.
                with suppress(NoMatches):
                    screen.apply_changes(sites, checks)

    def header_data(self) -> HeaderData:
        """The figures the header shows now."""
        host = self._host() if self._host is not None else None
        health = self.source.poll_health() if self.source is not None else None
        return HeaderData(
            counts=self.state.counts(),
            total_sites=len(self.state.sites),
            throughput=self.state.throughput(),
            pages_today=self.state.pages_today(),
            health=health,
            cpu=host[0] if host else None,
            memory=host[1] if host else None,
            clock=clock_time(self.now(), self.tz),
            paused=self.paused,
            refresh=self.refresh_interval,
            filter_text=self.filter_text,
            title="bibnet-ops",
            read_only=self.read_only,
            collector_stopped=self.collector_stopped,
            notice=source_notice(self.source),
        )

    def refresh_header(self) -> None:
        """Update the header of the screen on top (if any: none is left while the app shuts down)."""
        screen = self.screen_stack[-1] if self.screen_stack else None
        if isinstance(screen, LiveScreen) and screen.ready:
            screen.show_header(self.header_data())

    # View state.

    def watch_paused(self, paused: bool) -> None:
        if not paused:
            self._push_changes()
        self.refresh_header()

    def watch_refresh_interval(self, interval: float) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = self.set_interval(interval, self.tick, name="refresh")
        self.refresh_header()

    def watch_filter_text(self, text: str) -> None:
        self._filter = SiteFilter.parse(text)
        # a keystroke that keeps the same sites (the first letters of a word usually match them all) redraws nothing
        self._refilter()
        self.refresh_header()

    def watch_selected_site(self, site_id: str | None) -> None:
        overview = self._overview()
        if overview is not None and overview.ready:
            overview.show_selection(site_id)

    def _refilter(self, force: bool = False) -> None:
        sites = self._filter.select(
            self.inventory.sites.values(), self.state.site_status, self.inventory.regions, self._wilayas
        )
        if not force and [s.id for s in sites] == [s.id for s in self.visible_sites]:
            return
        self.visible_sites = sites
        overview = self._overview()
        if overview is not None and overview.ready:
            overview.show_sites(sites)

    def _overview(self) -> OverviewScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, OverviewScreen):
                return screen
        return None

    # Names as shown.

    def site_name(self, site: Site) -> str:
        """A site's display name (French; the Arabic name is shaped for the terminal where shown)."""
        return short_site_name(site.name_fr) if site.name_fr else display_text(site.name_ar, self.arabic)

    def map_label(self, site_id: str) -> str:
        """The label beside the selected marker on the map."""
        site = self.inventory.sites.get(site_id)
        return f"{site_id} {self.site_name(site)}" if site is not None else site_id

    # Navigation used by screens.

    def open_site(self, site_id: str) -> None:
        """Drill down into a site."""
        if site_id in self.inventory.sites:
            self.push_screen(SiteDetailScreen(site_id))

    def repoll(self, pattern: str | None) -> None:
        """Ask the engine to poll a site (or site/device/check) now."""
        if not pattern:
            self.notify(tr("note.repoll_none"))
        elif self.source is None or not self.source.poll_now(pattern):
            self.notify(tr("note.no_engine"), severity="warning")
        else:
            self.notify(tr("note.repoll", pattern=pattern))

    def acks_changed(self, keys: set[str]) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, LiveScreen) and screen.ready:
                with suppress(NoMatches):
                    screen.acks_changed(keys)

    def change_applied(self, action: str) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, MaintenanceListScreen) and action.startswith("maintenance."):
                screen.reload()
            elif isinstance(screen, ProblemsScreen) and screen.ready and action in ("ack", "unack"):
                screen.clear_marks()

    def action_collectors(self) -> None:
        from bibnet_ops.tui.screens.collectors import CollectorsScreen

        if not isinstance(self.screen, CollectorsScreen):
            self.push_screen(CollectorsScreen())

    def config_reloaded(self, inventory: Inventory) -> None:
        """The collector runs a reloaded inventory: show its sites and checks from now on."""
        self.inventory = inventory
        self.state.follow(inventory)
        self._refilter(force=True)
        self.refresh_header()

    def action_reload_config(self) -> None:
        self.request_reload()

    def action_maintenance_list(self) -> None:
        if not isinstance(self.screen, MaintenanceListScreen):
            self.push_screen(MaintenanceListScreen())

    # Actions (keys come from the registry, scope "app").

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify(tr("note.paused" if self.paused else "note.resumed"))

    def action_faster(self) -> None:
        self._step_refresh(-1)

    def action_slower(self) -> None:
        self._step_refresh(+1)

    def _step_refresh(self, direction: int) -> None:
        steps = REFRESH_STEPS
        current = self.refresh_interval
        if direction < 0:
            smaller = [s for s in steps if s < current]
            new = smaller[-1] if smaller else steps[0]
        else:
            larger = [s for s in steps if s > current]
            new = larger[0] if larger else steps[-1]
        self.refresh_interval = new
        self.notify(tr("note.refresh", interval=f"{new:g}s"))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_problems(self) -> None:
        if not isinstance(self.screen, ProblemsScreen):
            self.push_screen(ProblemsScreen())

    def action_reports(self) -> None:
        if not isinstance(self.screen, ReportScreen):
            self.push_screen(ReportScreen())

    def action_overview(self) -> None:
        while len(self.screen_stack) > 1 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()

    def evidence(self, check_id: str) -> Future[Evidence] | None:
        return self.source.evidence(check_id) if self.source is not None else None

    def action_next_theme(self) -> None:
        names = list(THEMES.values())
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(tr("note.theme", theme=self.theme))


if TYPE_CHECKING:  # mypy checks here that the app offers everything its screens ask of it
    _: type[Dashboard] = DashboardApp
