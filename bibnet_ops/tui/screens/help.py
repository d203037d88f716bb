"""Help generated from the key registry: every binding with its keys and description, by screen."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.keys import SCOPES, display_keys, specs_for

__all__ = ["HelpScreen", "help_table"]


def help_table() -> Table:
    """The registry as a Rich table, grouped by scope, in the current language."""
    table = Table(box=None, show_header=True, pad_edge=False, expand=False)
    table.add_column(tr("help.col.keys"), no_wrap=True)
    table.add_column(tr("help.col.action"))
    for scope in SCOPES:
        specs = specs_for(scope)
        if not specs:
            continue
        table.add_row(Text(tr(f"help.scope.{scope}"), style="bold underline"), "")
        seen: set[tuple[str, str]] = set()
        for spec in specs:
            key = (spec.keys, spec.label)
            if key in seen:
                continue
            seen.add(key)
            table.add_row(display_keys(spec.keys), spec.description)
    return table


class HelpScreen(ModalScreen[None]):
    """A modal listing every key; Esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss", show=False)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = tr("help.title")
            box.border_subtitle = tr("help.close")
            yield Static(help_table(), id="help-text")
