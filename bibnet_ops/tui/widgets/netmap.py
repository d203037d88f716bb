"""The braille map of Algeria with one marker per site; redraws only the rows whose sites changed."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.segment import Segment
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from bibnet_ops.model import Site, SiteStatus
from bibnet_ops.tui.mapmodel import MapModel
from bibnet_ops.tui.widgets.styled import STATUS_COMPONENTS, StyleCache

__all__ = ["NetworkMap"]


class NetworkMap(Widget):
    """Markers coloured and shaped by status over the country outline, the selected site labelled.

    Args:
        sites: the sites to place.
        status_of: a site's current status.
        label_of: the label drawn beside the selected site.
    """

    COMPONENT_CLASSES = STATUS_COMPONENTS

    def __init__(
        self,
        sites: Iterable[Site],
        status_of: Callable[[str], SiteStatus | None],
        label_of: Callable[[str], str],
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="statusful")
        self._sites = list(sites)
        self._status_of = status_of
        self._label_of = label_of
        self._model: MapModel | None = None
        self._cache: dict[int, Strip] = {}
        self._styles = StyleCache(self)
        self.selected: str | None = None
        self.rows_drawn = 0

    def set_sites(self, sites: Iterable[Site]) -> None:
        """Show only these sites (after a filter); redraws the whole map."""
        self._sites = list(sites)
        if self._model is not None:
            self._model.place(self._sites)
        self._cache.clear()
        self.refresh()

    def select(self, site_id: str | None) -> None:
        """Highlight a site and label it; only the rows of the old and new selection are redrawn."""
        if site_id == self.selected:
            return
        old, self.selected = self.selected, site_id
        self.sites_changed([s for s in (old, site_id) if s])

    def sites_changed(self, site_ids: Iterable[str]) -> None:
        """Redraw the rows holding these sites' markers (and the selection's label)."""
        if self._model is None:
            return
        width = self.size.width
        for row in self._model.rows_of(site_ids):
            if self._cache.pop(row, None) is not None:
                self.refresh(Region(0, row, width, 1))

    def notify_style_update(self) -> None:
        self._styles.clear()
        self._cache.clear()
        super().notify_style_update()

    def on_resize(self) -> None:
        self._model = MapModel(self.size.width, self.size.height, self._sites)
        self._cache.clear()
        self.refresh()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def render_line(self, y: int) -> Strip:
        strip = self._cache.get(y)
        if strip is not None:
            return strip
        model = self._model
        if model is None or y >= model.rows:
            return Strip.blank(self.size.width, self.rich_style)
        label = self._label_of(self.selected) if self.selected else ""
        runs = model.row_segments(y, self._status_of, self.selected, label)
        base = self.rich_style
        strip = Strip([Segment(text, base + self._styles(name)) for text, name in runs], model.cols)
        self._cache[y] = strip
        self.rows_drawn += 1
        return strip
