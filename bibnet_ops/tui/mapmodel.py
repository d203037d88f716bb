"""Where each site's marker goes on the braille map, and what each map row shows (no Textual).

`MapModel` projects sites onto the cell grid once per size; `row_segments` composes one row from the
outline, the markers (worst status wins a shared cell) and the selected site's label, as (text, style)
pairs that the widget turns into a strip. Keeping rows independent lets the widget redraw only the rows
whose sites changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from rich.cells import cell_len

from bibnet_ops.model import Site, SiteStatus
from bibnet_ops.tui.geo import Projection, outline_rows
from bibnet_ops.tui.status import PENDING_GLYPH, SITE_GLYPH, SITE_STYLE, worst_site_status

__all__ = ["MapModel", "Segment"]

Segment = tuple[str, str]
"""A run of text and the name of its style: `outline`, `label`, `selected` or a status style."""


class MapModel:
    """Sites placed on a `cols` x `rows` braille map of Algeria."""

    def __init__(self, cols: int, rows: int, sites: Iterable[Site]) -> None:
        self.cols = max(1, cols)
        self.rows = max(1, rows)
        self.projection = Projection(self.cols, self.rows)
        self.outline = outline_rows(self.cols, self.rows)
        self.cell_of: dict[str, tuple[int, int]] = {}
        self.sites_at: dict[tuple[int, int], list[str]] = {}
        self.row_sites: dict[int, set[str]] = {}
        self.place(sites)

    def place(self, sites: Iterable[Site]) -> None:
        """Put the markers of `sites` on the grid (replacing any previous placement)."""
        self.cell_of.clear()
        self.sites_at.clear()
        self.row_sites.clear()
        for site in sites:
            cell = self.projection.to_cell(site.lon, site.lat)
            self.cell_of[site.id] = cell
            self.sites_at.setdefault(cell, []).append(site.id)
            self.row_sites.setdefault(cell[1], set()).add(site.id)

    def rows_of(self, site_ids: Iterable[str]) -> set[int]:
        """The rows whose drawing depends on any of these sites."""
        return {self.cell_of[s][1] for s in site_ids if s in self.cell_of}

    def row_segments(
        self,
        row: int,
        status_of: Callable[[str], SiteStatus | None],
        selected: str | None = None,
        label: str = "",
    ) -> list[Segment]:
        """Compose one map row.

        Args:
            row: the row to draw.
            status_of: a site's current status.
            selected: the selected site, drawn highlighted with `label` beside it.
            label: text shown next to the selected marker (its id and name).
        """
        cells: list[Segment] = [(ch, "outline") for ch in self.outline[row]]
        markers: Mapping[tuple[int, int], list[str]] = self.sites_at
        for col in range(self.cols):
            ids = markers.get((col, row))
            if ids:
                status = worst_site_status([status_of(s) for s in ids])
                glyph = SITE_GLYPH[status] if status is not None else PENDING_GLYPH
                cells[col] = (glyph, SITE_STYLE[status])
        sel_cell = self.cell_of.get(selected) if selected else None
        if sel_cell is not None and sel_cell[1] == row:
            col = sel_cell[0]
            status = status_of(selected) if selected else None
            glyph = SITE_GLYPH[status] if status is not None else PENDING_GLYPH
            cells[col] = (glyph, "selected")
            self._place_label(cells, col, label)
        return _merge(cells)

    def _place_label(self, cells: list[Segment], col: int, label: str) -> None:
        text = f" {label} "
        room_right = self.cols - col - 1
        room_left = col
        # Prefer the right side; go left when the name does not fit there and the left has more room.
        if cell_len(text) <= room_right or room_right >= room_left:
            start, text = col + 1, _fit(text, room_right)
        else:
            text = _fit(text, room_left)
            start = col - cell_len(text)
        for i, ch in enumerate(_cells(text)):
            if 0 <= start + i < len(cells):
                cells[start + i] = (ch, "label")


def _cells(text: str) -> list[str]:
    """Split text into single-cell pieces (wide characters take two cells: the second is empty)."""
    out: list[str] = []
    for ch in text:
        width = cell_len(ch)
        if width == 0 and out:
            out[-1] += ch
        elif width == 2:
            out += [ch, ""]
        else:
            out.append(ch)
    return out


def _fit(text: str, width: int) -> str:
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    out = ""
    for ch in text:
        if cell_len(out + ch) > width - 1:
            break
        out += ch
    return out + "…"


def _merge(cells: list[Segment]) -> list[Segment]:
    """Join neighbouring cells of the same style into runs (fewer segments to send)."""
    merged: list[Segment] = []
    for text, style in cells:
        if merged and merged[-1][1] == style:
            merged[-1] = (merged[-1][0] + text, style)
        else:
            merged.append((text, style))
    return merged
