"""What every live screen shares: the header, localised bindings from the registry, change hooks."""

from __future__ import annotations

from typing import ClassVar, cast

from textual.screen import Screen

from bibnet_ops.tui.headerdata import HeaderData
from bibnet_ops.tui.host import Dashboard
from bibnet_ops.tui.keys import with_scope
from bibnet_ops.tui.widgets import StatusHeader

__all__ = ["LiveScreen"]


class LiveScreen(Screen[None]):
    """A screen fed by the app's refresh timer with the sites and checks that changed."""

    SCOPE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.ready = False
        if self.SCOPE:
            self._bindings = with_scope(self._bindings, self.SCOPE, self._read_only())

    def _read_only(self) -> bool:
        try:
            return bool(getattr(self.app, "read_only", False))
        except RuntimeError:  # built outside a running app: nothing to hide
            return False

    @property
    def dash(self) -> Dashboard:
        """The dashboard this screen runs in, as screens may use it."""
        return cast(Dashboard, self.app)

    def show_header(self, data: HeaderData) -> None:
        """Show the latest header figures."""
        for header in self.query(StatusHeader):
            header.show(data)

    def apply_changes(self, sites: set[str], checks: set[str]) -> None:
        """Redraw what depends on these sites and checks (screens override)."""

    def acks_changed(self, keys: set[str]) -> None:
        """Redraw what shows the acks of these problem keys (screens override)."""

    def on_mount(self) -> None:
        self.ready = True
        self.dash.refresh_header()

    def on_unmount(self) -> None:
        self.ready = False

    def on_screen_resume(self) -> None:
        # The header of a screen coming back may be a refresh behind.
        self.dash.refresh_header()
