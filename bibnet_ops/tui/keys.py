"""The one registry of key bindings: footer, help screen and command palette all read it.

Each entry has an id (for a user keymap), its keys (the first one is shown; the others are alternatives
that survive tmux and terminals that swallow function or control keys), the action it runs, the catalogue
key of its description and the scope (screen) it belongs to. Bindings that change something name their
policy action (`change`); a read-only console hides them from the footer and the palette.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingsMap

from bibnet_ops.tui.i18n import tr

__all__ = [
    "REGISTRY",
    "SCOPES",
    "KeySpec",
    "bindings_for",
    "display_keys",
    "registry",
    "specs_for",
    "use_keymap",
    "with_scope",
]


@dataclass(frozen=True)
class KeySpec:
    """One key binding of the dashboard."""

    id: str
    keys: str
    action: str
    label: str
    scope: str
    show: bool = True
    priority: bool = False
    palette: bool = True
    change: str = ""

    @property
    def description(self) -> str:
        """The binding's description in the current language."""
        return tr(self.label)


SCOPES = ("app", "overview", "problems", "detail", "evidence", "windows", "form", "report", "nav")

REGISTRY: tuple[KeySpec, ...] = (
    # Everywhere (App bindings).
    KeySpec("quit", "q", "quit", "key.quit", "app"),
    # ctrl+c quits even from the filter box: on-call people press it.
    KeySpec("interrupt", "ctrl+c", "quit", "key.quit", "app", show=False, priority=True, palette=False),
    KeySpec("help", "question_mark,f1", "help", "key.help", "app"),
    KeySpec("palette", "ctrl+p,colon", "command_palette", "key.palette", "app", priority=True),
    KeySpec("pause", "p,f7", "toggle_pause", "key.pause", "app"),
    KeySpec("faster", "plus,equals_sign", "faster", "key.faster", "app", show=False),
    KeySpec("slower", "minus,underscore", "slower", "key.slower", "app", show=False),
    KeySpec("problems", "exclamation_mark,2", "problems", "key.problems", "app"),
    KeySpec("overview", "1,f2", "overview", "key.overview", "app", show=False),
    KeySpec("theme", "T,f6", "next_theme", "key.theme", "app", show=False),
    KeySpec("reports", "R,3", "reports", "key.reports", "app", show=False),
    KeySpec("maintenance_list", "M,f9", "maintenance_list", "key.maintenance_list", "app", show=False),
    KeySpec("collectors", "C,4", "collectors", "key.collectors", "app", show=False),
    KeySpec("reload_config", "ctrl+r,f12", "reload_config", "key.reload_config", "app", show=False,
            change="collector.reload"),
    # Network overview.
    KeySpec("filter", "slash,f", "filter", "key.filter", "overview"),
    KeySpec("clear_filter", "escape,backspace", "clear_filter", "key.clear_filter", "overview", show=False),
    KeySpec("drill", "enter,o", "drill", "key.drill", "overview"),
    KeySpec("refresh_now", "r,f5", "refresh_now", "key.refresh_now", "overview", show=False),
    KeySpec("toggle_view", "t,v", "toggle_view", "key.toggle_view", "overview", show=False),
    KeySpec("focus_next", "tab,w", "focus_next_panel", "key.focus_next", "overview", show=False),
    KeySpec("maintenance", "m,f8", "maintenance", "key.maintenance", "overview", change="maintenance.add"),
    # Problems.
    KeySpec("problems_drill", "enter,o", "drill", "key.drill", "problems"),
    KeySpec("problems_back", "escape,backspace", "back", "key.back", "problems"),
    KeySpec("problems_refresh", "r,f5", "refresh_now", "key.refresh_now", "problems"),
    KeySpec("problems_ack", "a,f3", "ack", "key.ack", "problems", change="ack"),
    KeySpec("problems_ack_cause", "A,c", "ack_cause", "key.ack_cause", "problems", show=False, change="ack"),
    KeySpec("problems_mark", "space,x", "mark", "key.mark", "problems", show=False),
    KeySpec("problems_unack", "u,f4", "unack", "key.unack", "problems", show=False, change="unack"),
    # w as in "why": the on-call view asks the same question as the site screen.
    KeySpec("problems_evidence", "e,w", "evidence", "key.evidence", "problems", show=False),
    # Site detail.
    KeySpec("detail_back", "escape,backspace", "back", "key.back", "detail"),
    KeySpec("detail_refresh", "r,f5", "refresh_now", "key.refresh_now", "detail"),
    KeySpec("detail_maintenance", "m,f8", "maintenance", "key.maintenance", "detail", change="maintenance.add"),
    # Enter on a check row shows its last reply too.
    KeySpec("detail_evidence", "e,f3", "evidence", "key.evidence", "detail"),
    # The last reply of one check.
    KeySpec("evidence_back", "escape,backspace", "back", "key.back", "evidence"),
    KeySpec("evidence_refresh", "r,f5", "refresh_now", "key.refresh_now", "evidence"),
    # Maintenance windows list.
    KeySpec("windows_end", "e,delete", "end_window", "key.end_window", "windows", change="maintenance.end"),
    KeySpec("windows_close", "escape,backspace", "close", "key.back", "windows"),
    # Forms (ack, maintenance): Enter in a text box submits too.
    KeySpec("form_submit", "ctrl+s,f10", "submit", "key.submit", "form"),
    KeySpec("form_cancel", "escape", "cancel", "key.cancel", "form"),
    # Reports.
    KeySpec("report_back", "escape,backspace", "back", "key.back", "report"),
    KeySpec("report_compute", "r,f5", "refresh_now", "key.report_compute", "report"),
    KeySpec("report_export", "e,f4", "export", "key.export", "report"),
    # Moving in lists, trees, tables and tile grids (vi keys beside the arrows).
    KeySpec("down", "down,j", "cursor_down", "key.cursor_down", "nav", show=False, palette=False),
    KeySpec("up", "up,k", "cursor_up", "key.cursor_up", "nav", show=False, palette=False),
    KeySpec("left", "left,h", "cursor_left", "key.cursor_left", "nav", show=False, palette=False),
    KeySpec("right", "right,l", "cursor_right", "key.cursor_right", "nav", show=False, palette=False),
    KeySpec("top", "g,ctrl+home", "first", "key.top", "nav", show=False, palette=False),
    KeySpec("bottom", "G,ctrl+end", "last", "key.bottom", "nav", show=False, palette=False),
)


_keymap: dict[str, str] = {}


def use_keymap(keymap: dict[str, str]) -> None:
    """Rebind registry entries by id (a checked keymap, see `tui.keymap`) for every screen built from now on."""
    _keymap.clear()
    _keymap.update(keymap)


def registry(keymap: Mapping[str, str] | None = None) -> list[KeySpec]:
    """The registry with a keymap applied (default: the one in use): what the footer, help and palette show."""
    keys = _keymap if keymap is None else keymap
    return [dataclasses.replace(spec, keys=keys[spec.id]) if spec.id in keys else spec for spec in REGISTRY]


def specs_for(scope: str) -> list[KeySpec]:
    """The registry entries of one scope, keymap applied."""
    return [spec for spec in registry() if spec.scope == scope]


def bindings_for(scope: str, read_only: bool = False) -> list[Binding]:
    """Textual bindings of one scope, described in the current language.

    Args:
        scope: one of SCOPES.
        read_only: hide changing bindings from the footer (their actions still run, to say why they refuse).
    """
    return [
        Binding(
            spec.keys,
            spec.action,
            spec.description,
            show=spec.show and not (read_only and spec.change),
            priority=spec.priority,
            id=spec.id,
        )
        for spec in specs_for(scope)
    ]


_KEY_NAMES = {
    "question_mark": "?",
    "colon": ":",
    "slash": "/",
    "plus": "+",
    "minus": "-",
    "equals_sign": "=",
    "underscore": "_",
    "exclamation_mark": "!",
    "escape": "Esc",
    "enter": "Enter",
    "space": "Space",
    "delete": "Del",
    "backspace": "Backspace",
    "tab": "Tab",
}


def display_keys(keys: str) -> str:
    """Keys as a person reads them: `question_mark,f1` -> `? / F1`."""
    out = []
    for key in keys.split(","):
        key = key.strip()
        name = _KEY_NAMES.get(key)
        if name is None:
            name = key if len(key) == 1 else "+".join(p.capitalize() if len(p) > 1 else p for p in key.split("+"))
        out.append(name)
    return " / ".join(out)


def with_scope(existing: BindingsMap, scope: str, read_only: bool = False) -> BindingsMap:
    """A widget's own bindings plus the registry's bindings of `scope`, localised."""
    return BindingsMap.merge([existing, BindingsMap(bindings_for(scope, read_only))])
