"""Status styles shared by the dashboard widgets, resolved from theme variables in dashboard.tcss."""

from __future__ import annotations

from collections.abc import Iterable

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

__all__ = ["STATUS_COMPONENTS", "StyleCache", "segments_to_text"]

# Component classes every status-aware widget declares; `.statusful > .status--down { color: $error }` etc.
STATUS_COMPONENTS = {
    f"status--{name}"
    for name in (
        "up",
        "degraded",
        "down",
        "unreachable",
        "maintenance",
        "pending",
        "outline",
        "selected",
        "label",
        "dim",
        "badge",
        "alarm",
        "title",
        "plain",
    )
}


class StyleCache:
    """Rich styles of a widget's status component classes, looked up once per theme."""

    def __init__(self, widget: Widget) -> None:
        self._widget = widget
        self._styles: dict[str, Style] = {}

    def clear(self) -> None:
        """Forget resolved styles (after a theme change)."""
        self._styles.clear()

    def __call__(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self._widget.get_component_rich_style(f"status--{name}", partial=True)
        return style


def segments_to_text(segments: Iterable[tuple[str, str]], styles: StyleCache) -> Text:
    """Styled runs to a Rich Text (no wrapping, overflow cut)."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    for chunk, name in segments:
        text.append(chunk, styles(name))
    return text
