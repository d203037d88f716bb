"""The live event feed: newest state changes first (time, site, check, old -> new, reason)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from rich.text import Text
from textual.widget import Widget

from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.tui.fmt import clock_time
from bibnet_ops.tui.i18n import check_state_name, site_state_name, tr
from bibnet_ops.tui.netstate import FeedEntry
from bibnet_ops.tui.status import CHECK_GLYPH, CHECK_STYLE, SITE_GLYPH, SITE_STYLE
from bibnet_ops.tui.widgets.styled import STATUS_COMPONENTS, StyleCache

__all__ = ["EventFeed", "entry_glyph_style", "state_word"]


def entry_glyph_style(entry: FeedEntry, state: str) -> tuple[str, str]:
    """Glyph and style name of a state value carried by a feed entry."""
    if entry.is_site:
        site = SiteStatus(state)
        return SITE_GLYPH[site], SITE_STYLE[site]
    check = CheckStatus(state)
    return CHECK_GLYPH[check], CHECK_STYLE[check]


def state_word(entry: FeedEntry, state: str) -> str:
    """A feed entry's state value as a word of the current language."""
    return site_state_name(SiteStatus(state)) if entry.is_site else check_state_name(CheckStatus(state))


class EventFeed(Widget):
    """Shows the newest entries of a feed that fit; repaints only when the feed changed.

    Args:
        entries: the feed (newest first), read on each repaint.
        timezone: zone for the times shown.
    """

    COMPONENT_CLASSES = STATUS_COMPONENTS

    def __init__(
        self,
        entries: Callable[[], Sequence[FeedEntry]],
        timezone: ZoneInfo,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="statusful")
        self._entries = entries
        self._tz = timezone
        self._styles = StyleCache(self)
        self._version = -1

    def feed_changed(self, version: int) -> None:
        """Repaint if the feed moved on since the last repaint."""
        if version != self._version:
            self._version = version
            self.refresh()

    def notify_style_update(self) -> None:
        self._styles.clear()
        super().notify_style_update()

    def render(self) -> Text:
        entries = self._entries()
        height = max(1, self.content_region.height)
        if not entries:
            return Text(tr("feed.empty"), self._styles("dim"))
        text = Text(no_wrap=True, overflow="ellipsis")
        wide = self.content_region.width >= 100
        for i, entry in enumerate(entries):
            if i >= height:
                break
            if i:
                text.append("\n")
            self._line(text, entry, wide)
        return text

    def _line(self, text: Text, entry: FeedEntry, wide: bool) -> None:
        styles = self._styles
        text.append(clock_time(entry.time, self._tz), styles("dim"))
        new_glyph, new_style = entry_glyph_style(entry, entry.new)
        text.append(f" {new_glyph} ", styles(new_style))
        what = entry.site_id if entry.is_site else entry.check_id
        text.append(what.ljust(28 if wide else 22), styles("plain"))
        text.append(f" {state_word(entry, entry.old)} → ", styles("dim"))
        text.append(state_word(entry, entry.new), styles(new_style))
        if not entry.is_site and not entry.hard:
            text.append(f" ({tr('state.soft')})", styles("dim"))
        if entry.reason:
            text.append(f"  {entry.reason}", styles("dim"))
