"""Algeria's outline drawn with braille characters: projection, rasterising and the packaged outline.

Plain functions and small classes, no Textual: a terminal cell holds a 2x4 braille dot matrix, and since
a cell is about twice as tall as it is wide, braille dots are roughly square, so one projection scale
serves both axes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources

__all__ = [
    "ALGERIA_BBOX",
    "BrailleCanvas",
    "Projection",
    "load_outline",
    "outline_rows",
]

# (min lon, min lat, max lon, max lat) of the packaged outline.
ALGERIA_BBOX: tuple[float, float, float, float] = (-8.6851, 18.9873, 11.9683, 37.0921)

_BRAILLE_BASE = 0x2800
# Bit of each dot in a braille cell, indexed [dot row 0..3][dot column 0..1] (Unicode braille order).
_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


@lru_cache(maxsize=1)
def load_outline() -> tuple[tuple[float, float], ...]:
    """Return the packaged outline of Algeria as (lon, lat) points (closed ring)."""
    text = resources.files("bibnet_ops.data").joinpath("algeria_outline.json").read_text(encoding="utf-8")
    geo = json.loads(text)
    ring = geo["coordinates"][0]
    return tuple((float(lon), float(lat)) for lon, lat in ring)


class Projection:
    """Equirectangular projection (longitudes shrunk by cos of the mid latitude) fitted into a cell grid."""

    def __init__(
        self,
        cols: int,
        rows: int,
        bbox: tuple[float, float, float, float] = ALGERIA_BBOX,
    ) -> None:
        self.cols = max(1, cols)
        self.rows = max(1, rows)
        self.bbox = bbox
        lon0, lat0, lon1, lat1 = bbox
        self._kx = math.cos(math.radians((lat0 + lat1) / 2))
        width_dots = 2 * self.cols - 1
        height_dots = 4 * self.rows - 1
        geo_w = max(1e-9, (lon1 - lon0) * self._kx)
        geo_h = max(1e-9, lat1 - lat0)
        self.scale = min(width_dots / geo_w, height_dots / geo_h)
        # Centre the country in the grid.
        self._ox = (width_dots - geo_w * self.scale) / 2
        self._oy = (height_dots - geo_h * self.scale) / 2

    def to_dot(self, lon: float, lat: float) -> tuple[float, float]:
        """Dot coordinates (x right, y down) of a point, unclamped."""
        lon0, _lat0, _lon1, lat1 = self.bbox
        x = self._ox + (lon - lon0) * self._kx * self.scale
        y = self._oy + (lat1 - lat) * self.scale
        return x, y

    def to_cell(self, lon: float, lat: float) -> tuple[int, int]:
        """Cell (column, row) holding a point, clamped into the grid."""
        x, y = self.to_dot(lon, lat)
        col = min(self.cols - 1, max(0, round(x) // 2))
        row = min(self.rows - 1, max(0, round(y) // 4))
        return col, row


class BrailleCanvas:
    """A grid of braille cells on which dots and lines are set."""

    def __init__(self, cols: int, rows: int) -> None:
        self.cols = cols
        self.rows = rows
        self._bits = bytearray(cols * rows)

    def set(self, x: int, y: int) -> None:
        """Set the dot at (x, y); dots outside the canvas are ignored."""
        if 0 <= x < 2 * self.cols and 0 <= y < 4 * self.rows:
            self._bits[(y // 4) * self.cols + x // 2] |= _DOT_BITS[y % 4][x % 2]

    def line(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Draw a straight segment between two dot positions."""
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for i in range(steps + 1):
            t = i / steps
            self.set(round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t))

    def polyline(self, points: Iterable[tuple[float, float]]) -> None:
        """Draw connected segments through dot positions."""
        prev: tuple[float, float] | None = None
        for point in points:
            if prev is not None:
                self.line(prev[0], prev[1], point[0], point[1])
            prev = point

    def rows_text(self) -> list[str]:
        """The canvas as one string per cell row (blank cells are spaces)."""
        out = []
        for r in range(self.rows):
            cells = self._bits[r * self.cols : (r + 1) * self.cols]
            out.append("".join(chr(_BRAILLE_BASE + b) if b else " " for b in cells))
        return out


@lru_cache(maxsize=16)
def _outline_rows_cached(cols: int, rows: int) -> tuple[str, ...]:
    proj = Projection(cols, rows)
    canvas = BrailleCanvas(proj.cols, proj.rows)
    canvas.polyline(proj.to_dot(lon, lat) for lon, lat in load_outline())
    return tuple(canvas.rows_text())


def outline_rows(cols: int, rows: int, points: Sequence[tuple[float, float]] | None = None) -> list[str]:
    """Algeria's border rasterised into `rows` strings of `cols` cells.

    Args:
        cols: width of the map in terminal cells.
        rows: height of the map in terminal cells.
        points: another (lon, lat) ring to draw instead of the packaged outline (for tests).
    """
    if points is None:
        return list(_outline_rows_cached(max(1, cols), max(1, rows)))
    proj = Projection(cols, rows)
    canvas = BrailleCanvas(proj.cols, proj.rows)
    canvas.polyline(proj.to_dot(lon, lat) for lon, lat in points)
    return canvas.rows_text()
