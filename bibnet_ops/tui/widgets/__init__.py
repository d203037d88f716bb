"""Dashboard widgets: header, braille map, site tree, tile grid, event feed, navigable tables."""

from __future__ import annotations

from bibnet_ops.tui.widgets.feed import EventFeed
from bibnet_ops.tui.widgets.header import StatusHeader
from bibnet_ops.tui.widgets.netmap import NetworkMap
from bibnet_ops.tui.widgets.sitetree import SiteTree
from bibnet_ops.tui.widgets.tables import NavTable
from bibnet_ops.tui.widgets.tiles import TileGrid

__all__ = ["EventFeed", "NavTable", "NetworkMap", "SiteTree", "StatusHeader", "TileGrid"]
