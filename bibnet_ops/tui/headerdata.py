"""The header's two lines (counts, throughput, poll health, host, clock, badges) as styled runs (no Textual).

A collector that stopped (crashed, killed, failed to start) gets a badge on the first line and its reason
in place of the poll-health figures, which would otherwise go stale without a word.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bibnet_ops.model import SiteStatus
from bibnet_ops.tui.fmt import age, number
from bibnet_ops.tui.i18n import site_state_name, tr
from bibnet_ops.tui.mapmodel import Segment
from bibnet_ops.tui.source import HealthFigures
from bibnet_ops.tui.status import PENDING_GLYPH, SITE_GLYPH, SITE_ORDER, SITE_STYLE

__all__ = ["HeaderData", "header_lines", "source_notice"]

# Below this width the counts show glyph and number only (the glyph still tells the state).
COMPACT_WIDTH = 110


@dataclass(frozen=True)
class HeaderData:
    """Everything the header shows, gathered by the app on each refresh."""

    counts: Counter[SiteStatus | None] = field(default_factory=Counter)
    total_sites: int = 0
    throughput: float = 0.0
    pages_today: int = 0
    health: HealthFigures | None = None
    cpu: float | None = None
    memory: float | None = None
    clock: str = ""
    paused: bool = False
    refresh: float = 2.0
    filter_text: str = ""
    title: str = ""
    read_only: bool = False
    collector_stopped: str | None = None
    notice: tuple[str, str] | None = None  # (text, style): the national network's state, from the source


def source_notice(source: object) -> tuple[str, str] | None:
    """The source's line about the national network (central store, collectors), if it has one."""
    notice = getattr(source, "notice", None)
    return notice() if callable(notice) else None


def header_lines(data: HeaderData, width: int) -> tuple[list[Segment], list[Segment]]:
    """The header's two lines as (text, style) runs for a terminal `width` cells wide."""
    compact = width < COMPACT_WIDTH
    top: list[Segment] = []
    if data.read_only:
        top += [(f" {tr('header.read_only')} ", "badge"), (" ", "plain")]
    if data.collector_stopped is not None:
        top += [(f" {tr('header.collector_stopped')} ", "alarm"), (" ", "plain")]
    if data.paused:
        top += [(f" {tr('header.paused')} ", "badge"), (" ", "plain")]
    if data.title and not compact:
        top += [(data.title, "title"), ("  ", "plain")]
    for status in SITE_ORDER:
        n = data.counts.get(status, 0)
        word = "" if compact else f" {site_state_name(status)}"
        style = SITE_STYLE[status] if n else "dim"
        top += [(f"{SITE_GLYPH[status]}{n}{word}", style), ("  ", "plain")]
    pending = data.counts.get(None, 0)
    if pending:
        top += [(f"{PENDING_GLYPH}{pending}", "pending"), ("  ", "plain")]
    top += [(tr("header.sites", n=data.total_sites), "dim")]

    bottom: list[Segment] = [
        ("⎙ " + tr("header.throughput_short" if compact else "header.throughput", rate=number(data.throughput)),
         "plain"),
        (" · " + tr("header.today", pages=number(data.pages_today)), "dim"),
    ]
    if data.collector_stopped is not None:
        bottom += [(" │ " if compact else "  │ ", "dim"),
                   (tr("header.collector_reason", reason=data.collector_stopped), "down")]
    elif data.health is not None:
        h = data.health
        poll = tr("header.poll_short" if compact else "header.poll", rate=number(h.checks_per_second, 1))
        lag = tr("header.lag_short" if compact else "header.lag", lag=f"{h.lag:.1f}s")
        last_age = age(h.last_poll_age) if h.last_poll_age is not None else "—"
        last = tr("header.last_short" if compact else "header.last", age=last_age)
        style = "degraded" if h.lag > 5 or (h.last_poll_age or 0) > 120 else "plain"
        bottom += [(" │ " if compact else "  │ ", "dim"), (f"{poll} {lag} {last}", style)]
    if data.notice is not None:
        bottom += [(" │ " if compact else "  │ ", "dim"), data.notice]
    if data.cpu is not None and data.memory is not None:
        bottom += [(" │ " if compact else "  │ ", "dim"),
                   (tr("header.host", cpu=f"{data.cpu:.0f}", mem=f"{data.memory:.0f}"), "plain")]
    bottom += [(" │ " if compact else "  │ ", "dim"), (tr("header.refresh", interval=_interval(data.refresh)), "dim")]
    if data.filter_text:
        bottom += [("  │ ", "dim"), (tr("header.filter", text=data.filter_text), "label")]
    # The clock goes to the right end of the top line when it fits, else at the end of the bottom one.
    used = sum(len(t) for t, _ in top)
    if data.clock:
        gap = width - used - len(data.clock)
        if gap >= 1:
            top += [(" " * gap, "plain"), (data.clock, "title")]
        else:
            bottom += [("  │ ", "dim"), (data.clock, "title")]
    return top, bottom


def _interval(seconds: float) -> str:
    return f"{seconds:g}s"
