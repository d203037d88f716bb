"""A compact grid of site tiles (glyph + id) for networks of hundreds or thousands of sites."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.segment import Segment
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from bibnet_ops.model import Site, SiteStatus
from bibnet_ops.tui.keys import with_scope
from bibnet_ops.tui.status import PENDING_GLYPH, SITE_GLYPH, SITE_STYLE
from bibnet_ops.tui.widgets.styled import STATUS_COMPONENTS, StyleCache

__all__ = ["TileGrid", "tile_label"]

TILE_WIDTH = 12


def tile_label(site_id: str, width: int) -> str:
    """A site id in `width` cells; a long one keeps its end, where annexes and branches differ."""
    if len(site_id) <= width:
        return site_id.ljust(width)
    return "…" + site_id[-(width - 1):]


class TileGrid(ScrollView, can_focus=True):
    """Sites as fixed-width tiles in reading order; the cursor tile is the selected site."""

    COMPONENT_CLASSES = STATUS_COMPONENTS

    class SiteHighlighted(Message):
        """The cursor moved onto a site."""

        def __init__(self, site_id: str) -> None:
            super().__init__()
            self.site_id = site_id

    class SiteChosen(Message):
        """Enter was pressed on a site."""

        def __init__(self, site_id: str) -> None:
            super().__init__()
            self.site_id = site_id

    def __init__(self, status_of: Callable[[str], SiteStatus | None], *, id: str | None = None) -> None:
        super().__init__(id=id, classes="statusful")
        self._status_of = status_of
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._styles = StyleCache(self)
        self.cursor = 0
        self._bindings = with_scope(self._bindings, "nav")
        self._bindings.bind("enter", "choose", show=False)

    @property
    def columns(self) -> int:
        return max(1, self.scrollable_content_region.width // TILE_WIDTH)

    def set_sites(self, sites: Iterable[Site]) -> None:
        """Show these sites, keeping the cursor on the same site when it is still shown."""
        current = self.current
        self._ids = sorted(s.id for s in sites)
        self._index = {sid: i for i, sid in enumerate(self._ids)}
        self.cursor = self._index.get(current, 0) if current else 0
        self._update_virtual_size()
        self.refresh()

    @property
    def current(self) -> str | None:
        return self._ids[self.cursor] if 0 <= self.cursor < len(self._ids) else None

    def select_site(self, site_id: str) -> None:
        if site_id in self._index:
            self._move(self._index[site_id], announce=False)

    def sites_changed(self, site_ids: Iterable[str]) -> None:
        """Redraw only the rows of tiles whose sites changed."""
        cols = self.columns
        width = self.size.width
        top = self.scroll_offset.y
        for row in {self._index[s] // cols for s in site_ids if s in self._index}:
            if top <= row < top + self.size.height:
                self.refresh(Region(0, row - top, width, 1))

    def notify_style_update(self) -> None:
        self._styles.clear()
        super().notify_style_update()

    def on_resize(self) -> None:
        self._update_virtual_size()

    def _update_virtual_size(self) -> None:
        rows = -(-len(self._ids) // self.columns) if self._ids else 0
        self.virtual_size = Size(self.columns * TILE_WIDTH, rows)

    def render_line(self, y: int) -> Strip:
        row = y + self.scroll_offset.y
        cols = self.columns
        segments: list[Segment] = []
        base = self.rich_style
        for i in range(row * cols, min(len(self._ids), (row + 1) * cols)):
            sid = self._ids[i]
            status = self._status_of(sid)
            glyph = SITE_GLYPH[status] if status is not None else PENDING_GLYPH
            name = tile_label(sid, TILE_WIDTH - 3)
            if i == self.cursor:
                segments.append(Segment(f"{glyph} {name}", base + self._styles("selected")))
                segments.append(Segment(" ", base))
            else:
                segments.append(Segment(glyph, base + self._styles(SITE_STYLE[status])))
                segments.append(Segment(f" {name} ", base + self._styles("plain")))
        return Strip(segments).adjust_cell_length(self.size.width, base)

    # Cursor movement.

    def _move(self, index: int, announce: bool = True) -> None:
        if not self._ids:
            return
        index = max(0, min(len(self._ids) - 1, index))
        old, self.cursor = self.cursor, index
        cols = self.columns
        self.sites_changed([self._ids[old], self._ids[index]] if old < len(self._ids) else [self._ids[index]])
        row = index // cols
        top = self.scroll_offset.y
        if not top <= row < top + self.scrollable_content_region.height:
            # Scrolling repaints the whole panel: do it only when the cursor leaves the view.
            self.scroll_to_region(Region(0, row, 1, 1), animate=False)
        if announce:
            self.post_message(self.SiteHighlighted(self._ids[index]))

    def action_cursor_down(self) -> None:
        self._move(self.cursor + self.columns)

    def action_cursor_up(self) -> None:
        self._move(self.cursor - self.columns)

    def action_cursor_left(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_right(self) -> None:
        self._move(self.cursor + 1)

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self._ids) - 1)

    def action_choose(self) -> None:
        if self.current is not None:
            self.post_message(self.SiteChosen(self.current))
