"""The last raw reply of one check: what its result was judged on, fetched from the collector on demand.

A technician's first question about a failing check is what the device actually said: the HTTP status line,
headers and head of the body, the SNMP varbinds or error status, the OAI-PMH request and error code. The
collector keeps the last one per check and sends it only when asked, so it never rides along with every sample.
"""

from __future__ import annotations

from concurrent.futures import Future

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from bibnet_ops.engine import Evidence, no_reply_reason
from bibnet_ops.tui.fmt import age, clock_time
from bibnet_ops.tui.i18n import check_state_name, tr
from bibnet_ops.tui.screens.base import LiveScreen
from bibnet_ops.tui.status import CHECK_GLYPH, CHECK_STYLE, PENDING_GLYPH
from bibnet_ops.tui.widgets import StatusHeader
from bibnet_ops.tui.widgets.styled import STATUS_COMPONENTS, StyleCache

__all__ = ["EvidenceScreen", "evidence_lines"]

# Seconds the screen waits for the collector's answer before saying it could not get one.
FETCH_TIMEOUT = 10.0


def evidence_lines(evidence: Evidence, probe: str) -> str:
    """The raw reply as shown, or why there is none, with the characters left out beyond the bound."""
    if evidence.time is None:
        return tr("evidence.none", reason=tr("evidence.pending"))
    if not evidence.text:
        why = no_reply_reason(evidence.status, evidence.reason, evidence.value)
        return tr("evidence.none", reason=why or tr("evidence.probe_keeps_none", probe=probe or "?"))
    text = evidence.text.rstrip("\n")
    if evidence.cut:
        text += "\n" + tr("evidence.cut", n=evidence.cut)
    return text


class EvidenceScreen(LiveScreen):
    """One check's last reply; fetched again whenever the check reports a new result."""

    SCOPE = "evidence"
    COMPONENT_CLASSES = STATUS_COMPONENTS

    class Fetched(Message):
        """The collector's answer (or the error that stood in its way)."""

        def __init__(self, evidence: Evidence | None, error: str = "") -> None:
            super().__init__()
            self.evidence = evidence
            self.error = error

    def __init__(self, check_id: str) -> None:
        super().__init__()
        self.check_id = check_id
        self.evidence: Evidence | None = None
        self.fetches = 0
        self._styles = StyleCache(self)

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Static(id="evidence-title")
        with VerticalScroll(id="evidence-box"):
            yield Static(id="evidence-text")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.add_class("statusful")
        self.query_one("#evidence-box", VerticalScroll).focus()
        self._show_title()
        self.query_one("#evidence-text", Static).update(Text(tr("evidence.loading"), self._styles("dim")))
        self._fetch()

    def _fetch(self) -> None:
        future = self.dash.evidence(self.check_id)
        if future is None:
            self.post_message(self.Fetched(None, tr("evidence.no_source")))
            return
        self.fetches += 1
        self._wait(future)

    @work(thread=True, exclusive=True, group="evidence", exit_on_error=False)
    def _wait(self, future: Future[Evidence]) -> None:
        try:
            evidence = future.result(FETCH_TIMEOUT)
        except TimeoutError:
            self.post_message(self.Fetched(None, tr("evidence.error", error=f"no answer in {FETCH_TIMEOUT:.0f} s")))
        except Exception as exc:  # a stopped collector or an unknown check: say so where the reply would be
            self.post_message(self.Fetched(None, tr("evidence.error", error=str(exc) or type(exc).__name__)))
        else:
            self.post_message(self.Fetched(evidence))

    @on(Fetched)
    def _fetched(self, message: Fetched) -> None:
        if message.evidence is not None:
            self.evidence = message.evidence
        self._show_title()
        box = self.query_one("#evidence-text", Static)
        if message.error:
            box.update(Text(message.error, self._styles("down")))
            return
        assert self.evidence is not None
        view = self.dash.state.checks.get(self.check_id)
        probe = view.spec.probe if view is not None else self.evidence.probe
        body = evidence_lines(self.evidence, probe)
        box.update(Text(body, self._styles("plain" if self.evidence.text else "dim")))

    def _show_title(self) -> None:
        styles = self._styles
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(tr("evidence.title", check=self.check_id), styles("title"))
        view = self.dash.state.checks.get(self.check_id)
        if view is not None:
            text.append(f"  ({view.spec.probe} {view.spec.address})", styles("dim"))
        text.append("\n")
        got = self.evidence
        status = got.status if got is not None else None
        if status is None:
            text.append(f"{PENDING_GLYPH} ", styles("pending"))
        else:
            text.append(f"{CHECK_GLYPH[status]} {check_state_name(status)}", styles(CHECK_STYLE[status]))
        if got is not None and got.time is not None:
            now = self.dash.now()
            when = clock_time(got.time, self.dash.tz)
            text.append("  " + tr("evidence.result", when=when, ago=age(now - got.time)), styles("dim"))
        if got is not None and got.reason:
            text.append(f"  {' '.join(got.reason.split())}", styles("plain"))
        text.append("\n" + tr("evidence.follows"), styles("dim"))
        self.query_one("#evidence-title", Static).update(text)

    def apply_changes(self, sites: set[str], checks: set[str]) -> None:
        # A new result of this check: its reply is new too.
        if self.check_id in checks:
            self._fetch()

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh_now(self) -> None:
        self.dash.repoll(self.check_id)
