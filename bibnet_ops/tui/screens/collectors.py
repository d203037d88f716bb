"""The national network's collectors: heartbeat, sites held, checks/s, lag, outbox, central store reachability."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from bibnet_ops.tui.fmt import age, number
from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.keys import with_scope
from bibnet_ops.tui.widgets import NavTable

__all__ = ["CollectorsScreen", "collector_cells"]

_COLUMNS = ("id", "group", "state", "heartbeat", "sites", "rate", "lag", "outbox", "central")


def collector_cells(row: Any, tz: Any) -> tuple[str, ...]:
    """One collector's cells (a `CollectorRow` of the national source)."""
    h = row.health
    state = tr(f"collectors.state.{row.state}")
    beat = age(row.heartbeat_age) if row.heartbeat_age is not None else "—"
    queued = int(h.get("queued_events", 0))
    outbox = f"{number(int(h.get('outbox_depth', 0)))}" + (f" ({tr('national.queued', n=queued)})" if queued else "")
    if row.state != "running":
        central = tr("collectors.central.unknown")
    elif h.get("central_reachable", True):
        central = tr("collectors.central.ok")
        outage = h.get("last_outage")
        if outage:
            when = datetime.fromtimestamp(float(outage[0]), tz).strftime("%d/%m %H:%M")
            central += " · " + tr("collectors.central.last_outage", since=when,
                                  replay=f"{float(h.get('last_replay_seconds') or 0):.0f}s")
    else:
        central = tr("collectors.central.away")
    return (row.id, row.group, state, beat, str(h.get("sites", "—")),
            number(float(h.get("checks_per_second", 0.0)), 1), f"{float(h.get('lag_p99', 0.0)):.1f}s", outbox, central)


class CollectorsScreen(ModalScreen[None]):
    """Every regional collector the central store knows, refreshed with the dashboard."""

    def __init__(self) -> None:
        super().__init__()
        self._bindings = with_scope(self._bindings, "windows", getattr(self.app, "read_only", False))

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-box windows-box") as box:
            box.border_title = tr("collectors.title")
            yield NavTable(id="collectors", cursor_type="row")
            yield Static(classes="form-error")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#collectors", NavTable)
        for col in _COLUMNS:
            table.add_column(tr(f"collectors.col.{col}"), key=col)
        table.focus()
        self.reload()
        self.set_interval(2.0, self.reload)

    def reload(self) -> None:
        source = getattr(self.app, "source", None)
        rows = source.collectors() if source is not None and hasattr(source, "collectors") else []
        table = self.query_one("#collectors", NavTable)
        table.clear()
        tz = getattr(self.app, "tz", None)
        for row in rows:
            table.add_row(*collector_cells(row, tz), key=row.id)
        note = source.notice() if source is not None and hasattr(source, "notice") else None
        self.query_one(".form-error", Static).update(
            (note[0] if note else "") if rows else tr("collectors.none"))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_end_window(self) -> None:
        """Nothing to end here (the windows scope's `e`)."""
