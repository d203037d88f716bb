"""The web side of `bibnet-ops serve`: textual-serve's server, with tabs whose processes never outlive them.

textual-serve starts one process per websocket (browser tab) and, when the tab closes, asks it to quit and
waits for it without a bound. Here a tab's process that has not quit within `tab_quit_timeout` seconds is
killed, every tab is ended when the server stops, and the page loads nothing from outside this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

__all__ = ["DashboardServer", "TabProcess"]

log = logging.getLogger("bibnet_ops.serve")

# The page without textual-serve's Google Fonts link: a served console must work, and leak nothing, offline.
TEMPLATES = Path(__file__).resolve().parent / "web"


class TabProcess(AppService):
    """One tab's dashboard process; `stop` asks it to quit, then kills it, and reaps it either way."""

    quit_timeout = 5.0

    async def stop(self) -> None:
        if self._task is None:
            return
        process = self._process
        quitting = asyncio.ensure_future(super().stop())
        try:
            await asyncio.wait_for(asyncio.shield(quitting), self.quit_timeout)
        except TimeoutError:
            log.warning("a tab's dashboard did not quit within %.0f s: killed", self.quit_timeout)
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(quitting, self.quit_timeout)
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), self.quit_timeout)
            except TimeoutError:  # it closed its output but lingers: it must not outlive its tab
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


class DashboardServer(Server):
    """textual-serve's `Server` running `command` per tab, with bounded tab shutdown and a collector to watch.

    Args:
        command: the shell command of one tab's dashboard.
        host: address to listen on.
        port: port to listen on.
        title: the page's title.
        public_url: the address browsers use (default http://HOST:PORT).
        banner: printed once listening.
        tab_quit_timeout: seconds a closed tab's process gets to quit before it is killed.
        watch: returns why the data source stopped (the server then stops), or None while it runs.
    """

    def __init__(
        self,
        command: str,
        *,
        host: str,
        port: int,
        title: str,
        public_url: str | None = None,
        banner: str = "",
        tab_quit_timeout: float = 5.0,
        watch: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__(command, host=host, port=port, title=title, public_url=public_url,
                         templates_path=TEMPLATES)
        self.banner = banner
        self.tab_quit_timeout = tab_quit_timeout
        self.watch = watch
        self.tabs: set[TabProcess] = set()
        self.collector_lost: str | None = None
        self._watcher: asyncio.Task[None] | None = None

    def initialize_logging(self) -> None:
        """Warnings only, on stderr: a tab opening or closing is not worth a line."""
        logging.getLogger("textual-serve").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def on_startup(self, app: web.Application) -> None:
        if self.banner:
            print(self.banner, flush=True)
        if self.watch is not None:
            self._watcher = asyncio.create_task(self._watch())

    async def on_shutdown(self, app: web.Application) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        # Every tab's dashboard ends with the server; their websockets close, so no handler lingers.
        await asyncio.gather(*(tab.stop() for tab in list(self.tabs)), return_exceptions=True)

    async def _watch(self) -> None:
        assert self.watch is not None
        while True:
            await asyncio.sleep(0.5)
            reason = self.watch()
            if reason is not None:
                self.collector_lost = reason
                asyncio.get_running_loop().call_soon(self.request_exit)
                return

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One tab: start its dashboard, relay keys and screen, end the process when the tab goes."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        tab: TabProcess | None = None
        try:
            await websocket.prepare(request)

            async def close() -> None:
                await websocket.close()

            tab = TabProcess(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            tab.quit_timeout = self.tab_quit_timeout
            self.tabs.add(tab)
            await tab.start(width, height)
            await self._process_messages(websocket, tab)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            log.exception("a tab failed")
        finally:
            if tab is not None:
                await tab.stop()
                self.tabs.discard(tab)
        return websocket

    def tab_pids(self) -> list[int]:
        """Process ids of the tabs' dashboards now (for tests and diagnostics)."""
        return [pid for pid in (tab.pid for tab in self.tabs) if pid is not None]

    def __repr__(self) -> str:
        return f"DashboardServer({self.command!r}, tabs={len(self.tabs)})"

