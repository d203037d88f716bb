"""A DataTable that also answers the registry's navigation keys (hjkl, g/G)."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from bibnet_ops.tui.keys import with_scope

__all__ = ["NavTable"]


class NavTable(DataTable[Any]):
    """DataTable with vi-style movement from the key registry; rows are keyed for in-place cell updates."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bindings = with_scope(self._bindings, "nav")

    def action_first(self) -> None:
        self.action_scroll_top()

    def action_last(self) -> None:
        self.action_scroll_bottom()
