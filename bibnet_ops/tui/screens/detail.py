"""Site detail: devices and checks, latency and pages/h sparklines, sync lag, parent, children, events.

With a history store, a thread worker reads the site's stored sparklines, events and 24 h / 30 day uptime
when the screen opens and every minute after; the live samples extend what it read.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Label, Sparkline, Static

from bibnet_ops.inventory import Inventory
from bibnet_ops.store import StoreLike
from bibnet_ops.tui.arabic import display_text
from bibnet_ops.tui.fmt import age, clock_time, short_site_name, value_with_unit
from bibnet_ops.tui.history import (
    SiteHistory,
    SparkHistory,
    event_time,
    load_site_history,
    merge_events,
    uptime_line,
)
from bibnet_ops.tui.i18n import check_state_name, site_state_name, tr
from bibnet_ops.tui.netstate import CheckView, FeedEntry
from bibnet_ops.tui.screens.base import LiveScreen
from bibnet_ops.tui.screens.evidence import EvidenceScreen
from bibnet_ops.tui.status import CHECK_GLYPH, CHECK_STYLE, PENDING_GLYPH, SITE_GLYPH, SITE_STYLE
from bibnet_ops.tui.widgets import NavTable, StatusHeader
from bibnet_ops.tui.widgets.feed import entry_glyph_style, state_word
from bibnet_ops.tui.widgets.styled import STATUS_COMPONENTS, StyleCache

__all__ = ["SiteDetailScreen"]

_COLUMNS = ("check", "state", "type", "since", "value", "reason")


class SiteDetailScreen(LiveScreen):
    """One site in depth; its table cells are updated in place as checks change."""

    SCOPE = "detail"
    COMPONENT_CLASSES = STATUS_COMPONENTS
    # Seconds between reads of the site's history while the screen is open.
    HISTORY_REFRESH = 60.0

    class HistoryLoaded(Message):
        """The site's history, read from the store by the worker."""

        def __init__(self, history: SiteHistory) -> None:
            super().__init__()
            self.history = history

    def __init__(self, site_id: str) -> None:
        super().__init__()
        self.site_id = site_id
        self._styles = StyleCache(self)
        self._check_ids: list[str] = []
        self.history: SiteHistory | None = None
        self._sparks = SparkHistory()

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Static(id="site-info")
        yield Static(id="site-uptime")
        yield NavTable(id="checks", cursor_type="row", zebra_stripes=False)
        with Horizontal(id="sparks"):
            with Vertical(classes="spark"):
                yield Label(id="latency-label")
                yield Sparkline([], id="latency")
            with Vertical(classes="spark"):
                yield Label(id="pages-label")
                yield Sparkline([], id="pages")
        yield Static(id="site-events")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.add_class("statusful")
        table = self.query_one("#checks", NavTable)
        for col in _COLUMNS:
            table.add_column(tr(f"detail.col.{col}"), key=col)
        checks = self.dash.state.checks_of(self.site_id)
        self._check_ids = [c.spec.id for c in checks]
        for view in checks:
            table.add_row(*self._cells(view), key=view.spec.id)
        self._refresh_info()
        self._refresh_sparks()
        self._refresh_events()
        table.focus()
        if self.dash.store_path is None:
            self.query_one("#site-uptime", Static).display = False
        else:
            self.query_one("#site-uptime", Static).update(Text(tr("detail.history_loading"), self._styles("dim")))
            self._load_history()
            self.set_interval(self.HISTORY_REFRESH, self._load_history, name="site-history")

    # History (read in a thread worker, applied by the handler).

    def _load_history(self) -> None:
        dash = self.dash
        self._read_history(dash.store_path, dash.inventory, dash.now())

    @work(thread=True, exclusive=True, group="site-history", exit_on_error=False)
    def _read_history(self, path: StoreLike | None, inventory: Inventory, now: float) -> None:
        self.post_message(self.HistoryLoaded(load_site_history(path, inventory, self.site_id, now)))

    @on(HistoryLoaded)
    def _history_loaded(self, message: HistoryLoaded) -> None:
        history = message.history
        self.history = history
        if not history.problem:
            self._sparks.seed(history)
        self._refresh_uptime()
        self._refresh_sparks()
        self._refresh_events()

    def _refresh_uptime(self) -> None:
        history = self.history
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{tr('detail.uptime')}  ", self._styles("dim"))
        if history is None:
            text.append(tr("detail.history_loading"), self._styles("dim"))
        elif history.problem == "missing":
            text.append(tr("detail.history_missing"), self._styles("dim"))
        elif history.problem:
            text.append(tr("detail.history_error", error=history.problem), self._styles("degraded"))
        else:
            text.append(uptime_line(history.day, history.month), self._styles("plain"))
        self.query_one("#site-uptime", Static).update(text)

    def apply_changes(self, sites: set[str], checks: set[str]) -> None:
        table = self.query_one("#checks", NavTable)
        mine = [c for c in self._check_ids if c in checks]
        for cid in mine:
            self._sparks.observe(self.dash.state.checks[cid])
            # Update only the cells of checks that changed: cheap over a slow link.
            for col, value in zip(_COLUMNS, self._cells(self.dash.state.checks[cid]), strict=True):
                table.update_cell(cid, col, value)
        related = {self.site_id, *(c.id for c in self.dash.inventory.children(self.site_id))}
        site = self.dash.inventory.sites[self.site_id]
        if site.parent:
            related.add(site.parent)
        if sites & related:
            self._refresh_info()
            self._refresh_events()
        if mine:
            self._refresh_sparks()

    def on_data_table_row_highlighted(self, event: NavTable.RowHighlighted) -> None:
        self._refresh_sparks()

    def on_data_table_row_selected(self, event: NavTable.RowSelected) -> None:
        event.stop()
        self.action_evidence()

    @property
    def cursor_check(self) -> str | None:
        """The id of the check under the cursor."""
        table = self.query_one("#checks", NavTable)
        return self._check_ids[table.cursor_row] if 0 <= table.cursor_row < len(self._check_ids) else None

    # Drawing.

    def _cells(self, view: CheckView) -> tuple[Text | str, ...]:
        now = self.dash.now()
        status = view.status
        if status is None:
            state = Text(f"{PENDING_GLYPH} {site_state_name(None)}", self._styles("pending"))
        else:
            state = Text(f"{CHECK_GLYPH[status]} {check_state_name(status)}", self._styles(CHECK_STYLE[status]))
        if view.flapping:
            state.append(" ↯", self._styles("degraded"))
        kind = tr("state.hard") if view.hard else f"{tr('state.soft')} {view.attempt}/{view.max_attempts}"
        since = age(now - view.since) if view.since is not None else "—"
        value = value_with_unit(view.value, view.spec.unit)
        ack = self.dash.ack_text(view.spec.id)
        reason = Text(ack, self._styles("up")) + Text(f"  {view.reason}") if ack else view.reason
        return (f"{view.spec.device_id}/{view.spec.name}", state, kind, since, value, reason)

    def _refresh_info(self) -> None:
        dash = self.dash
        site = dash.inventory.sites[self.site_id]
        sview = dash.state.sites[self.site_id]
        styles = self._styles
        text = Text(no_wrap=True, overflow="ellipsis")
        status = sview.status
        glyph = SITE_GLYPH[status] if status is not None else PENDING_GLYPH
        text.append(f"{glyph} {site_state_name(status)}", styles(SITE_STYLE[status]))
        text.append(f"  {site.id}  {short_site_name(site.name_fr)}", styles("title"))
        if site.name_ar:
            text.append(f"  {display_text(site.name_ar, dash.arabic)}", styles("plain"))
        text.append("\n")
        region = dash.inventory.regions.get(site.region)
        text.append(
            f"{tr('detail.wilaya')} {site.wilaya:02d} · {tr('detail.region')} "
            f"{region.name_fr if region else site.region} · {tr('detail.kind')} {site.kind}",
            styles("dim"),
        )
        if sview.since is not None:
            text.append("  " + tr("detail.since", when=clock_time(sview.since, dash.tz)), styles("dim"))
        if sview.root_cause:
            text.append("  " + tr("detail.root_cause", site=sview.root_cause), styles("unreachable"))
        site_ack = dash.ack_text(f"site:{self.site_id}")
        if site_ack:
            text.append(f"  {site_ack}", styles("up"))
        if sview.reason:
            text.append(f"  {sview.reason}", styles("dim"))
        text.append("\n")
        text.append(f"{tr('detail.parent')}: ", styles("dim"))
        if site.parent:
            self._site_ref(text, site.parent)
        else:
            text.append(tr("detail.none"), styles("dim"))
        children = dash.inventory.children(self.site_id)
        text.append(f"   {tr('detail.children')} ({len(children)}): ", styles("dim"))
        if not children:
            text.append(tr("detail.none"), styles("dim"))
        for child in children[:12]:
            self._site_ref(text, child.id)
            text.append(" ")
        if len(children) > 12:
            text.append(f"+{len(children) - 12}", styles("dim"))
        lag = [c for c in dash.state.checks_of(self.site_id) if c.spec.metric == "sync_lag"]
        if lag:
            text.append(f"   {tr('detail.sync_lag')}: ", styles("dim"))
            text.append(value_with_unit(lag[0].value, lag[0].spec.unit or "s"), styles("plain"))
        self.query_one("#site-info", Static).update(text)

    def _site_ref(self, text: Text, site_id: str) -> None:
        status = self.dash.state.site_status(site_id)
        glyph = SITE_GLYPH[status] if status is not None else PENDING_GLYPH
        text.append(glyph, self._styles(SITE_STYLE[status]))
        text.append(site_id, self._styles("plain"))

    def _refresh_sparks(self) -> None:
        state = self.dash.state
        checks = state.checks_of(self.site_id)
        current = self.cursor_check
        # Latency follows the check under the cursor when it has any, else the site's first one that does.
        order = ([current] if current else []) + [c.spec.id for c in checks]
        sparks = self._sparks
        lat_id = next((c for c in order if state.latency_history.get(c) or sparks.has("latency", c)), None)
        pages_id = next(
            (
                c.spec.id
                for c in checks
                if c.spec.metric == "pages_per_hour"
                and (state.value_history.get(c.spec.id) or sparks.has("value", c.spec.id))
            ),
            None,
        )
        for spark_id, label_id, key, cid, field, store in (
            ("#latency", "#latency-label", "detail.latency", lat_id, "latency", state.latency_history),
            ("#pages", "#pages-label", "detail.pages", pages_id, "value", state.value_history),
        ):
            data = sparks.series(field, cid, list(store.get(cid, ()))) if cid else []
            suffix = f" {cid.split('/', 1)[1]}" if cid else f" — {tr('detail.no_data')}"
            last = f" {data[-1]:.0f}" if data else ""
            self.query_one(label_id, Label).update(f"{tr(key)}{suffix}{last}")
            self.query_one(spark_id, Sparkline).data = data

    def _refresh_events(self) -> None:
        dash = self.dash
        stored: list[FeedEntry] = self.history.events if self.history is not None else []
        entries = merge_events(stored, dash.state.site_events(self.site_id, 8), 8)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(tr("detail.events"), self._styles("title"))
        if not entries:
            text.append("\n" + tr("feed.empty"), self._styles("dim"))
        for entry in entries:
            glyph, style = entry_glyph_style(entry, entry.new)
            text.append("\n" + event_time(entry.time, dash.now(), dash.tz), self._styles("dim"))
            text.append(f" {glyph} ", self._styles(style))
            what = entry.check_id.split("/", 1)[1] if entry.check_id else tr("feed.site_change")
            text.append(f"{what}  {state_word(entry, entry.old)} → ", self._styles("plain"))
            text.append(state_word(entry, entry.new), self._styles(style))
            if entry.reason:
                text.append(f"  {entry.reason}", self._styles("dim"))
        self.query_one("#site-events", Static).update(text)

    # Actions.

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh_now(self) -> None:
        self.dash.repoll(self.site_id)

    def action_maintenance(self) -> None:
        self.dash.request_maintenance(self.site_id)

    def action_evidence(self) -> None:
        """Show the last raw reply of the check under the cursor."""
        check_id = self.cursor_check
        if check_id is not None:
            self.app.push_screen(EvidenceScreen(check_id))

    def acks_changed(self, keys: set[str]) -> None:
        table = self.query_one("#checks", NavTable)
        for cid in self._check_ids:
            if cid in keys:
                table.update_cell(cid, "reason", self._cells(self.dash.state.checks[cid])[-1])
        if f"site:{self.site_id}" in keys:
            self._refresh_info()
