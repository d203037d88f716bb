"""What a screen may ask of the dashboard it runs in: its view state, the network state, and a few actions.

Screens reach the running app only through this Protocol (`DashboardApp` implements it), so a screen
never imports the app that pushes it and a reader sees in one place everything screens depend on.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bibnet_ops.engine import Evidence
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import Site
from bibnet_ops.store import StoreLike
from bibnet_ops.tui.netstate import NetworkState
from bibnet_ops.tui.source import EventSource

__all__ = ["Dashboard"]


class Dashboard(Protocol):
    """The dashboard as its screens see it."""

    inventory: Inventory
    state: NetworkState
    source: EventSource | None
    tz: ZoneInfo
    now: Callable[[], float]
    arabic: str
    store_path: StoreLike | None
    tiles: bool | None
    visible_sites: list[Site]
    selected_site: str | None
    filter_text: str

    @property
    def read_only(self) -> bool:
        """True on a read-only console: changing actions are hidden and refused."""
        ...

    def site_name(self, site: Site) -> str:
        """A site's display name."""
        ...

    def map_label(self, site_id: str) -> str:
        """The label beside the selected marker on the map."""
        ...

    def evidence(self, check_id: str) -> Future[Evidence] | None:
        """Ask the collector for the raw reply a check's last result was judged on; None without one."""
        ...

    def refresh_header(self) -> None:
        """Update the header of the screen on top."""
        ...

    def open_site(self, site_id: str) -> None:
        """Drill down into a site."""
        ...

    def repoll(self, pattern: str | None) -> None:
        """Ask the engine to poll a site (or site/device/check) now."""
        ...

    def ack_text(self, *keys: str) -> str:
        """The ack shown for the first of `keys` acknowledged now, else ""."""
        ...

    def request_ack(self, keys: list[str]) -> None:
        """Ask for a comment, then acknowledge `keys`."""
        ...

    def request_unack(self, keys: list[str]) -> None:
        """Remove the acks holding on `keys`."""
        ...

    def request_maintenance(self, site_id: str | None) -> None:
        """Ask how long, then start a maintenance window for the site or its region."""
        ...

    def load_windows(self, target: Any) -> None:
        """Read the maintenance windows; `target` (a screen) gets `WindowsLoaded`."""
        ...

    def end_window(self, window_id: int) -> None:
        """End a maintenance window now."""
        ...

    def refuse(self, action: str) -> bool:
        """Tell the person (and return True) when `action` cannot be done from this console."""
        ...
