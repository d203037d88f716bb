"""The home screen: braille map, region/site tree or tile grid, event feed, filter bar."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input

from bibnet_ops.model import Site
from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.screens.base import LiveScreen
from bibnet_ops.tui.widgets import EventFeed, NetworkMap, SiteTree, StatusHeader, TileGrid

__all__ = ["OverviewScreen"]

# Above this many sites the tile grid is the default side panel (a tree that long is hard to scan).
TILES_ABOVE = 200


class OverviewScreen(LiveScreen):
    """Network overview: where the problems are, at a glance."""

    SCOPE = "overview"

    def __init__(self) -> None:
        super().__init__()
        self._sites: list[Site] = []
        self._stale: set[str] = set()
        self._tiles_shown = False

    def compose(self) -> ComposeResult:
        dash = self.dash
        state = dash.state
        yield StatusHeader(id="header")
        with Horizontal(id="body"):
            yield NetworkMap(dash.visible_sites, state.site_status, dash.map_label, id="map")
            with Vertical(id="side"):
                yield SiteTree(dash.inventory.regions, state.site_status, dash.site_name, id="tree")
                yield TileGrid(state.site_status, id="tiles")
        feed = EventFeed(lambda: state.feed, dash.tz, id="feed")
        feed.border_title = tr("overview.feed")
        yield feed
        yield Input(placeholder=tr("overview.filter_placeholder"), id="filter")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        tiles = len(self.dash.visible_sites) > TILES_ABOVE if self.dash.tiles is None else self.dash.tiles
        self._tiles_shown = tiles
        self._show_sites(self.dash.visible_sites)
        self._use_tiles(tiles)
        self.query_one("#feed", EventFeed).feed_changed(self.dash.state.feed_version)

    # Fed by the app.

    def apply_changes(self, sites: set[str], checks: set[str]) -> None:
        if sites:
            self.query_one("#map", NetworkMap).sites_changed(sites)
            self.query_one("#tree", SiteTree).sites_changed(sites)
            self.query_one("#tiles", TileGrid).sites_changed(sites)
        self.query_one("#feed", EventFeed).feed_changed(self.dash.state.feed_version)

    def show_sites(self, sites: list[Site]) -> None:
        """Show only these sites (the filter changed)."""
        self._show_sites(sites)

    def show_selection(self, site_id: str | None) -> None:
        """Highlight the selected site on the map and in the side panel."""
        self.query_one("#map", NetworkMap).select(site_id)
        if site_id:
            self.query_one("#tree", SiteTree).select_site(site_id)
            self.query_one("#tiles", TileGrid).select_site(site_id)

    def _show_sites(self, sites: list[Site]) -> None:
        self._sites = sites
        self.query_one("#map", NetworkMap).set_sites(sites)
        # Only the visible panel is rebuilt now; the hidden one when shown (a 2,000-node tree nobody looks at
        # would cost the first frame).
        shown = self.query_one("#tiles", TileGrid) if self._tiles_shown else self.query_one("#tree", SiteTree)
        shown.set_sites(sites)
        self._stale = {"tree", "tiles"} - {"tiles" if self._tiles_shown else "tree"}
        self.query_one("#map", NetworkMap).select(self.dash.selected_site)

    def _use_tiles(self, tiles: bool) -> None:
        tree, grid = self.query_one("#tree", SiteTree), self.query_one("#tiles", TileGrid)
        self._tiles_shown = tiles
        name = "tiles" if tiles else "tree"
        if name in self._stale:
            (grid if tiles else tree).set_sites(self._sites)
            self._stale.discard(name)
            if self.dash.selected_site:
                (grid if tiles else tree).select_site(self.dash.selected_site)
        tree.display, grid.display = not tiles, tiles
        (grid if tiles else tree).focus()

    # Messages from the side panel.

    @on(SiteTree.SiteHighlighted)
    @on(TileGrid.SiteHighlighted)
    def _highlighted(self, event: SiteTree.SiteHighlighted | TileGrid.SiteHighlighted) -> None:
        self.dash.selected_site = event.site_id

    @on(SiteTree.SiteChosen)
    @on(TileGrid.SiteChosen)
    def _chosen(self, event: SiteTree.SiteChosen | TileGrid.SiteChosen) -> None:
        self.dash.selected_site = event.site_id
        self.dash.open_site(event.site_id)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.dash.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._close_filter()

    # Actions (keys come from the registry, scope "overview").

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.dash.filter_text
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or self.dash.filter_text:
            box.value = ""
            self.dash.filter_text = ""
            self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#filter", Input).display = False
        tiles = self.query_one("#tiles", TileGrid)
        (tiles if tiles.display else self.query_one("#tree", SiteTree)).focus()

    def action_drill(self) -> None:
        if self.dash.selected_site:
            self.dash.open_site(self.dash.selected_site)

    def action_refresh_now(self) -> None:
        self.dash.repoll(self.dash.selected_site)

    def action_toggle_view(self) -> None:
        self._use_tiles(not self.query_one("#tiles", TileGrid).display)

    def action_focus_next_panel(self) -> None:
        self.focus_next()

    def action_maintenance(self) -> None:
        self.dash.request_maintenance(self.dash.selected_site)
