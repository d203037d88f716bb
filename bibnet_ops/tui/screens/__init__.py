"""Dashboard screens: network overview, site detail, problems, help."""

from __future__ import annotations

from bibnet_ops.tui.screens.detail import SiteDetailScreen
from bibnet_ops.tui.screens.help import HelpScreen
from bibnet_ops.tui.screens.overview import OverviewScreen
from bibnet_ops.tui.screens.problems import ProblemsScreen

__all__ = ["HelpScreen", "OverviewScreen", "ProblemsScreen", "SiteDetailScreen"]
