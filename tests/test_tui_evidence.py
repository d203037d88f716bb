"""Why is it failing: the last raw reply of a check, from the real collector process, on the site screen.

The collector runs in a child process against the real simulator (HTTP catalogues, SNMP scanners on loopback);
the reply is fetched over its socket only when asked, and follows the check's new results while shown.
"""

from __future__ import annotations

from typing import Any

from test_tui_live import _all_up, live, until

from bibnet_ops.engine import Evidence
from bibnet_ops.events import Sample
from bibnet_ops.model import CheckStatus
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.screens import SiteDetailScreen
from bibnet_ops.tui.screens.evidence import EvidenceScreen, evidence_lines
from bibnet_ops.tui.widgets import SiteTree

SCANNER = "bplp-16/scanner-1/pages"
OPAC = "bplp-16/catalogue/opac"


def _text(app: DashboardApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def _open_detail(pilot: Any, app: DashboardApp, site: str) -> SiteDetailScreen:
    app.screen.query_one(SiteTree).select_site(site)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
    screen = app.screen
    assert isinstance(screen, SiteDetailScreen)
    return screen


async def _cursor_to(pilot: Any, screen: SiteDetailScreen, check_id: str) -> None:
    table: Any = screen.query_one("#checks")
    while screen.cursor_check != check_id:
        before = table.cursor_row
        await pilot.press("j")
        assert table.cursor_row != before, f"{check_id} is not in the site's table"


async def test_e_shows_the_snmp_checks_last_reply_and_follows_it_into_an_outage(tmp_path: Any) -> None:
    async with live(tmp_path) as (sim, app), app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: _all_up(app))
        screen = await _open_detail(pilot, app, "bplp-16")
        await _cursor_to(pilot, screen, SCANNER)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EvidenceScreen))
        shown = app.screen
        assert isinstance(shown, EvidenceScreen) and shown.check_id == SCANNER
        await until(pilot, lambda: shown.evidence is not None)
        assert shown.evidence is not None
        title = _text(app, "#evidence-title")
        assert f"Last reply of {SCANNER}" in title and "snmp" in title and "OK" in title
        body = _text(app, "#evidence-text")
        # What the child's engine holds for this check, fetched over the socket: its time is a result we received.
        assert shown.evidence.status == CheckStatus.OK and shown.evidence.time is not None
        if shown.evidence.text:
            assert shown.evidence.text.splitlines()[0] in body
        else:
            assert "no raw reply kept (the snmp probe kept none for this result)" in body
        # The device goes silent: the screen fetches the reply of every new result and says why there is none.
        sim.set_fault("bplp-16", "outage")
        await until(pilot, lambda: shown.evidence is not None and shown.evidence.status == CheckStatus.CRITICAL)
        reason = shown.evidence.reason
        assert reason, "a failed result always says why"
        await until(pilot, lambda: "CRITICAL" in _text(app, "#evidence-title"))
        if not shown.evidence.text:
            first_words = " ".join(reason.split())[:30]
            await until(pilot, lambda: f"no raw reply kept ({first_words}" in _text(app, "#evidence-text"))
        assert shown.fetches >= 2
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))


async def test_enter_on_an_http_check_shows_its_reply_and_r_repolls_it(tmp_path: Any) -> None:
    async with live(tmp_path) as (_sim, app), app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: _all_up(app))
        screen = await _open_detail(pilot, app, "bplp-16")
        await _cursor_to(pilot, screen, OPAC)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EvidenceScreen))
        shown = app.screen
        assert isinstance(shown, EvidenceScreen) and shown.check_id == OPAC
        await until(pilot, lambda: shown.evidence is not None and shown.evidence.time is not None)
        assert "http" in _text(app, "#evidence-title")
        # Its footer offers the keys of the registry's evidence scope.
        footer = str(app.screen.query_one("Footer").render()) + "".join(
            str(w.render()) for w in app.screen.query("FooterKey"))
        assert "Re-poll" in footer and "Back" in footer
        fetched = shown.fetches
        first = shown.evidence.time
        await pilot.press("r")
        # The re-poll brings a new result, whose reply the screen fetches again.
        await until(pilot, lambda: shown.fetches > fetched and shown.evidence is not None
                    and (shown.evidence.time or 0) > (first or 0), timeout=10)
        await pilot.press("backspace")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))


def test_evidence_lines_say_why_there_is_none_and_what_was_left_out() -> None:
    from bibnet_ops.tui.i18n import use_language

    use_language("en")
    assert evidence_lines(Evidence("s/d/c", "http"), "http") == "no raw reply kept (not polled yet)"
    refused = Evidence("s/d/c", "http", CheckStatus.CRITICAL, "connection refused", 1.0)
    assert evidence_lines(refused, "http") == "no raw reply kept (connection refused)"
    quiet = Evidence("s/d/c", "snmp", CheckStatus.OK, "", 1.0)
    assert evidence_lines(quiet, "snmp") == "no raw reply kept (the snmp probe kept none for this result)"
    long = Evidence("s/d/c", "http", CheckStatus.OK, "", 1.0, "HTTP/1.1 200 OK\n\nbody", cut=120)
    lines = evidence_lines(long, "http").splitlines()
    assert lines == ["HTTP/1.1 200 OK", "", "body", "… 120 more characters not kept"]
    use_language("fr")
    try:
        assert evidence_lines(refused, "http") == "aucune réponse brute conservée (connection refused)"
    finally:
        use_language("en")


async def test_a_still_picture_shows_the_reply_its_samples_carried() -> None:
    """Without a collector process (a StaticSource), the screen shows the evidence of the last sample it got."""
    from test_tui_support import fixed_events, fixed_inventory, frozen_clock, frozen_host

    from bibnet_ops.tui.source import StaticSource

    reply = "HTTP/1.1 503 Service Unavailable\nRetry-After: 120\n\n<h1>Koha is under maintenance</h1>"
    events = [*fixed_events(), Sample(OPAC, CheckStatus.CRITICAL, "HTTP 503", time=frozen_clock() - 5,
                                      evidence=reply)]
    inventory = fixed_inventory()
    app = DashboardApp(inventory, StaticSource(events), lang="en", clock=frozen_clock, host=frozen_host, refresh=60.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.open_site("bplp-16")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EvidenceScreen) and app.screen.evidence is not None)
        body = _text(app, "#evidence-text")
        assert "HTTP/1.1 503 Service Unavailable" in body and "Koha is under maintenance" in body
        assert "CRITICAL" in _text(app, "#evidence-title") and "HTTP 503" in _text(app, "#evidence-title")
