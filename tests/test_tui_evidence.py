"""Why is it failing: the last raw reply of a check, from the real collector process, on the site screen.

The collector runs in a child process against the real simulator (HTTP catalogues, SNMP scanners on loopback);
the reply is fetched over its socket only when asked, and follows the check's new results while shown.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_tui_live import _all_up, live, until
from test_tui_support import fixed_inventory as fixed_inventory_

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


@pytest.mark.parametrize(("lang", "label"), [("en", "Last reply"), ("fr", "Dernière réponse")])
async def test_the_key_is_in_the_footer_and_the_palette_in_both_languages(lang: str, label: str) -> None:
    from test_tui_support import fixed_source, frozen_clock, frozen_host

    app = DashboardApp(fixed_inventory_(), fixed_source(), lang=lang, clock=frozen_clock, host=frozen_host,
                       refresh=60.0)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        app.open_site("bplp-25")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
        await pilot.pause()
        footer = {(k.key_display, k.description) for k in app.screen.query("FooterKey")}  # type: ignore[attr-defined]
        assert ("e", label) in footer
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*label[:8])
        await pilot.pause(0.3)
        await pilot.press("enter")  # the palette runs the same action
        await until(pilot, lambda: isinstance(app.screen, EvidenceScreen))
        assert app.screen.check_id == "bplp-25/catalogue/opac"


async def test_a_keymap_rebinds_it_and_f3_still_works_until_rebound() -> None:
    from test_tui_support import fixed_source, frozen_clock, frozen_host

    app = DashboardApp(fixed_inventory_(), fixed_source(), lang="en", clock=frozen_clock, host=frozen_host,
                       refresh=60.0, keymap={"detail_evidence": "y"})
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_site("bplp-25")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, SiteDetailScreen)  # rebound: e no longer opens it
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, EvidenceScreen))


async def test_an_oai_pmh_check_shows_its_requests_and_answers(tmp_path: Any) -> None:
    """The OAI-PMH probe keeps the request URLs and what each answered; the screen shows them as they came."""
    import asyncio
    import dataclasses

    from test_tui_live import REPO, SITES, quick_inventory

    from bibnet_ops.inventory import load_inventory
    from bibnet_ops.probes import snmp
    from bibnet_ops.remote import CollectorProcess
    from bibnet_ops.sim import Simulator

    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True)
    snmp.forget_baselines()
    async with sim:
        config = sim.write_config(tmp_path / "config")
        quick = quick_inventory(config)
        oai = [dataclasses.replace(c, interval=5.0, retries=1, timeout=5.0)
               for c in load_inventory(config).checks if c.site_id == "bplp-16" and c.device_id == "oai"]
        assert oai, "the simulated bplp-16 has no OAI-PMH provider"
        inv = dataclasses.replace(quick, checks=[*quick.checks, *oai])
        collector = CollectorProcess(inv, store=False, alerts=False, first_spread=0.1, ship_inventory=True).start()
        app = DashboardApp(inv, collector, lang="en", refresh=0.2, host=lambda: (1.0, 2.0), tiles=False)
        try:
            async with app.run_test(size=(120, 30)) as pilot:
                await until(pilot, lambda: all(app.state.checks[c.id].status is not None for c in oai))
                screen = await _open_detail(pilot, app, "bplp-16")
                await _cursor_to(pilot, screen, oai[0].id)
                await pilot.press("e")
                await until(pilot, lambda: isinstance(app.screen, EvidenceScreen)
                            and app.screen.evidence is not None and app.screen.evidence.time is not None)
                shown = app.screen
                assert isinstance(shown, EvidenceScreen) and shown.evidence is not None
                body = _text(app, "#evidence-text")
                assert shown.evidence.text, "the OAI-PMH probe keeps its requests"
                assert "GET http" in body and "oai.pl?verb=" in body
                assert "oaipmh" in _text(app, "#evidence-title")
        finally:
            await asyncio.to_thread(collector.stop)
            snmp.forget_baselines()


def test_last_reply_80x24(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing catalogue's reply as a technician sees it over SSH at 80x24."""
    from test_tui_support import fixed_events, frozen_clock, frozen_host

    from bibnet_ops.tui.source import StaticSource

    monkeypatch.delenv("NO_COLOR", raising=False)
    reply = ("HTTP/1.1 503 Service Unavailable\nServer: Apache/2.4.62 (Debian)\nRetry-After: 120\n"
             "Content-Type: text/html; charset=utf-8\nSet-Cookie: <redacted>\n\n"
             "<html><body><h1>Koha est en maintenance</h1><p>Retour prévu à 14h.</p></body></html>")
    cid = "bplp-25/catalogue/opac"
    events = [*fixed_events(), Sample(cid, CheckStatus.CRITICAL, "HTTP 503 Service Unavailable",
                                      time=frozen_clock() - 65, evidence=reply)]
    app = DashboardApp(fixed_inventory_(), StaticSource(events), lang="en", clock=frozen_clock, host=frozen_host,
                       refresh=60.0)

    async def open_reply(pilot: Any) -> None:
        await pilot.pause()
        app.open_site("bplp-25")
        await until(pilot, lambda: isinstance(app.screen, SiteDetailScreen))
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EvidenceScreen) and app.screen.evidence is not None)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_reply)
