"""The two-line header: site counts by status, throughput, poll health, host load, clock, PAUSED badge."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from bibnet_ops.tui.headerdata import HeaderData, header_lines
from bibnet_ops.tui.widgets.styled import STATUS_COMPONENTS, StyleCache, segments_to_text

__all__ = ["StatusHeader"]


class StatusHeader(Widget):
    """Shows a `HeaderData`; repaints only when what it shows changed."""

    COMPONENT_CLASSES = STATUS_COMPONENTS

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="statusful")
        self._data = HeaderData()
        self._styles = StyleCache(self)
        self._last: tuple[object, int] | None = None

    def show(self, data: HeaderData) -> None:
        """Display new figures (a no-op when nothing visible changed)."""
        key = (data, self.size.width)
        if key != self._last:
            self._data = data
            self._last = key
            self.refresh()

    def notify_style_update(self) -> None:
        self._styles.clear()
        super().notify_style_update()

    def render(self) -> Text:
        top, bottom = header_lines(self._data, self.size.width)
        text = segments_to_text(top, self._styles)
        text.append("\n")
        text.append_text(segments_to_text(bottom, self._styles))
        return text
