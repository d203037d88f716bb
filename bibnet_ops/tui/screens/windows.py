"""Maintenance windows now and ahead, read from the store; one can be ended early (`e`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from bibnet_ops.store import MaintenanceWindow
from bibnet_ops.tui.host import Dashboard
from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.keys import with_scope
from bibnet_ops.tui.widgets import NavTable

__all__ = ["MaintenanceListScreen", "WindowsLoaded"]

_COLUMNS = ("id", "target", "start", "end", "sla", "by", "reason")


class WindowsLoaded(Message):
    """Maintenance windows now and ahead (posted to the screen that asked)."""

    def __init__(self, windows: list[Any], error: str = "") -> None:
        super().__init__()
        self.windows = windows
        self.error = error


class MaintenanceListScreen(ModalScreen[None]):
    """The store's windows in force now or later; reloaded after every maintenance change."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[MaintenanceWindow] = []
        self.loaded = False
        read_only = getattr(self.app, "read_only", False)
        self._bindings = with_scope(self._bindings, "windows", read_only)

    @property
    def dash(self) -> Dashboard:
        return cast(Dashboard, self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-box windows-box") as box:
            box.border_title = tr("windows.title")
            yield NavTable(id="windows", cursor_type="row")
            yield Static(classes="form-error")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#windows", NavTable)
        for col in _COLUMNS:
            table.add_column(tr(f"windows.col.{col}"), key=col)
        table.focus()
        self.reload()

    def reload(self) -> None:
        """Read the windows again (the app posts `WindowsLoaded` back here)."""
        self.dash.load_windows(self)

    def on_windows_loaded(self, message: WindowsLoaded) -> None:
        self.windows = list(message.windows)
        self.loaded = True
        table = self.query_one("#windows", NavTable)
        table.clear()
        for w in self.windows:
            table.add_row(*self._cells(w), key=str(w.id))
        note = message.error or ("" if self.windows else tr("windows.none"))
        self.query_one(".form-error", Static).update(note)

    def _cells(self, w: MaintenanceWindow) -> tuple[str, ...]:
        tz = self.dash.tz

        def when(t: float | None) -> str:
            return datetime.fromtimestamp(t, tz).strftime("%d/%m %H:%M") if t is not None else tr("windows.open_end")

        start = when(w.start)
        if w.recurring:
            start = tr("windows.recurring", days=",".join(w.days), start=w.local_start, end=w.local_end)
        sla = tr("windows.sla_excluded" if w.exclude_from_sla else "windows.sla_counted")
        target = f"{w.scope} {w.target}".strip()
        return (str(w.id), target, start, when(w.end), sla, w.created_by, w.reason)

    def action_end_window(self) -> None:
        table = self.query_one("#windows", NavTable)
        if 0 <= table.cursor_row < len(self.windows):
            self.dash.end_window(self.windows[table.cursor_row].id)
        else:
            self.dash.refuse("maintenance.end")  # a read-only console says so even with nothing to end

    def action_close(self) -> None:
        self.dismiss(None)
