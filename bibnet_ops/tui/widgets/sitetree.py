"""Region -> site tree with a status glyph per site and counts per region; updates labels in place."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from bibnet_ops.model import Region, Site, SiteStatus
from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.keys import with_scope
from bibnet_ops.tui.status import PENDING_GLYPH, SITE_GLYPH, SITE_ORDER, SITE_STYLE
from bibnet_ops.tui.widgets.styled import STATUS_COMPONENTS, StyleCache

__all__ = ["SiteTree"]

_REGION = "region:"


class SiteTree(Tree[str]):
    """Sites grouped by region. Node data is a site id, or `region:<id>` for a region.

    Args:
        regions: region names by id.
        status_of: a site's current status.
        name_of: the name shown after a site's id.
    """

    COMPONENT_CLASSES = Tree.COMPONENT_CLASSES | STATUS_COMPONENTS

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

    def __init__(
        self,
        regions: Mapping[str, Region],
        status_of: Callable[[str], SiteStatus | None],
        name_of: Callable[[Site], str],
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(tr("overview.sites"), id=id, classes="statusful")
        self.show_root = False
        self.guide_depth = 2
        self._regions = regions
        self._status_of = status_of
        self._name_of = name_of
        self._styles = StyleCache(self)
        self._site_nodes: dict[str, TreeNode[str]] = {}
        self._region_nodes: dict[str, TreeNode[str]] = {}
        self._region_sites: dict[str, list[str]] = {}
        self._sites: dict[str, Site] = {}
        self._bindings = with_scope(self._bindings, "nav")

    def set_sites(self, sites: Iterable[Site]) -> None:
        """Rebuild the tree from these sites (after a filter), keeping the cursor on the same site if present."""
        current = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self._site_nodes.clear()
        self._region_nodes.clear()
        self._region_sites.clear()
        self._sites = {s.id: s for s in sites}
        for site in sorted(self._sites.values(), key=lambda s: (s.region, s.id)):
            self._region_sites.setdefault(site.region, []).append(site.id)
        for region_id in sorted(self._region_sites, key=self._region_name):
            node = self.root.add(self._region_label(region_id), data=_REGION + region_id, expand=True)
            self._region_nodes[region_id] = node
            for sid in self._region_sites[region_id]:
                self._site_nodes[sid] = node.add_leaf(self._site_label(sid), data=sid)
        if current and current in self._site_nodes:
            self.move_cursor(self._site_nodes[current])

    def sites_changed(self, site_ids: Iterable[str]) -> None:
        """Relabel the given sites and their regions (only those lines are redrawn)."""
        regions: set[str] = set()
        for sid in site_ids:
            node = self._site_nodes.get(sid)
            if node is not None:
                node.set_label(self._site_label(sid))
                regions.add(self._sites[sid].region)
        for region_id in regions:
            self._region_nodes[region_id].set_label(self._region_label(region_id))

    def select_site(self, site_id: str) -> None:
        """Move the cursor to a site."""
        node = self._site_nodes.get(site_id)
        if node is not None:
            self.move_cursor(node)

    @property
    def visible_site_ids(self) -> list[str]:
        return list(self._site_nodes)

    def notify_style_update(self) -> None:
        self._styles.clear()
        super().notify_style_update()

    def _region_name(self, region_id: str) -> str:
        region = self._regions.get(region_id)
        return region.name_fr if region is not None else (region_id or tr("overview.no_region"))

    def _site_label(self, site_id: str) -> Text:
        status = self._status_of(site_id)
        glyph = SITE_GLYPH[status] if status is not None else PENDING_GLYPH
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(glyph, self._styles(SITE_STYLE[status]))
        text.append(f" {site_id} ", self._styles("plain"))
        text.append(self._name_of(self._sites[site_id]), self._styles("dim"))
        return text

    def _region_label(self, region_id: str) -> Text:
        text = Text(no_wrap=True)
        text.append(self._region_name(region_id), self._styles("title"))
        counts: dict[SiteStatus | None, int] = {}
        for sid in self._region_sites.get(region_id, ()):
            status = self._status_of(sid)
            counts[status] = counts.get(status, 0) + 1
        for status in SITE_ORDER:
            if counts.get(status):
                text.append(f"  {SITE_GLYPH[status]}{counts[status]}", self._styles(SITE_STYLE[status]))
        if counts.get(None):
            text.append(f"  {PENDING_GLYPH}{counts[None]}", self._styles("pending"))
        return text

    # Events and actions.

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        data = event.node.data
        if data and not data.startswith(_REGION):
            self.post_message(self.SiteHighlighted(data))

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        data = event.node.data
        if data and not data.startswith(_REGION):
            event.stop()
            self.post_message(self.SiteChosen(data))

    def action_cursor_left(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand and node.is_expanded:
            node.collapse()
        else:
            self.action_cursor_parent()

    def action_cursor_right(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand and not node.is_expanded:
            node.expand()
        else:
            self.action_cursor_down()

    def action_first(self) -> None:
        self.action_scroll_home()

    def action_last(self) -> None:
        self.action_scroll_end()
