"""Problems view: a site whose every check fails is one row (with the count), SOFT as HARD.

The folding rule is checked on the plain `problem_rows` function, then on the screen (a still picture and a
snapshot at 80x24), then live: the real collector process against the real simulator, with an outage caught
while its checks are still spending their retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from test_tui_live import REPO, SITES, _all_up, quick_inventory, until
from test_tui_support import FROZEN_NOW, fixed_events, fixed_inventory, frozen_clock, frozen_host

from bibnet_ops.events import SiteStatusChange, StateChange
from bibnet_ops.inventory import load_inventory
from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.probes import snmp
from bibnet_ops.remote import CollectorProcess
from bibnet_ops.sim import Simulator
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.netstate import NetworkState
from bibnet_ops.tui.problems import problem_rows
from bibnet_ops.tui.screens import ProblemsScreen
from bibnet_ops.tui.source import PollHealth, StaticSource

TLEMCEN = ("bplp-13/catalogue/opac", "bplp-13/scanner-1/pages", "bplp-13/oai/sync-lag")


def _soft(cid: str, minutes: float, reason: str, new: CheckStatus = CheckStatus.CRITICAL,
          hard: bool = False) -> StateChange:
    return StateChange(cid, cid.split("/", 1)[0], FROZEN_NOW - minutes * 60, CheckStatus.OK, new, hard, reason, 2, 3)


def tlemcen_down_soft() -> list[object]:
    """The fixed picture plus Tlemcen's three checks all failing, still SOFT (its site still UP)."""
    return [
        *fixed_events(),
        _soft(TLEMCEN[0], 2, "connection refused"),
        _soft(TLEMCEN[1], 1.5, "no SNMP answer from 10.13.0.5:161 within 1 s"),
        _soft(TLEMCEN[2], 1, "OAI-PMH Identify: connection refused", CheckStatus.WARNING),
    ]


def _state(events: list[object]) -> NetworkState:
    state = NetworkState(fixed_inventory())
    state.apply_many(events)
    return state


def test_a_site_whose_every_check_fails_while_soft_is_one_row_with_the_count() -> None:
    rows = problem_rows(_state(tlemcen_down_soft()))
    mine = [r for r in rows if r.site_id == "bplp-13"]
    assert len(mine) == 1
    (row,) = mine
    assert row.key == "checks:bplp-13" and not row.hard
    # worst check first (CRITICAL, oldest), and the oldest failure's age for the row
    assert row.checks == TLEMCEN and row.status == CheckStatus.CRITICAL
    assert row.reason == "connection refused" and row.since == FROZEN_NOW - 120
    # its place among the others: after the older CRITICALs, before every WARNING
    keys = [r.key for r in rows]
    assert keys.index("bplp-25/catalogue/opac") < keys.index("checks:bplp-13") < keys.index("bplp-07/oai/sync-lag")
    # Constantine (DOWN, but its scanner answers) keeps one row per failing check
    assert "bplp-25/catalogue/opac" in keys and "bplp-25/oai/sync-lag" in keys


def test_the_row_hardens_in_place_and_unfolds_when_one_check_answers_again() -> None:
    events = tlemcen_down_soft()
    state = _state(events)
    state.apply_many([_soft(c, 0.5, "connection refused", hard=True) for c in TLEMCEN])
    state.apply(SiteStatusChange("bplp-13", FROZEN_NOW - 30, SiteStatus.UP, SiteStatus.DOWN, "nothing answers"))
    (row,) = [r for r in problem_rows(state) if r.site_id == "bplp-13"]
    assert row.key == "checks:bplp-13" and row.hard and len(row.checks) == 3
    state.apply(StateChange(TLEMCEN[1], "bplp-13", FROZEN_NOW, CheckStatus.CRITICAL, CheckStatus.OK, True, "ok"))
    assert sorted(r.key for r in problem_rows(state) if r.site_id == "bplp-13") == sorted([TLEMCEN[0], TLEMCEN[2]])


def test_sites_behind_a_site_failing_whole_are_folded_under_its_row() -> None:
    state = _state(tlemcen_down_soft())
    # bplp-13 has no children in the fixture: make Es Senia's hub (bplp-31) fail whole instead
    hub = ("bplp-31/catalogue/opac", "bplp-31/scanner-1/pages", "bplp-31/oai/sync-lag")
    state.apply_many([_soft(c, 5, "connection refused", hard=True) for c in hub])
    state.apply(SiteStatusChange("bplp-31", FROZEN_NOW - 200, SiteStatus.UP, SiteStatus.DOWN, "nothing answers"))
    state.apply(SiteStatusChange("bm-31-01", FROZEN_NOW - 190, SiteStatus.UP, SiteStatus.UNREACHABLE, "behind",
                                 "bplp-31"))
    keys = [r.key for r in problem_rows(state)]
    assert keys[keys.index("checks:bplp-31") + 1] == "fold:bplp-31"
    assert not any(k.startswith("bplp-31/") or k.startswith("bm-31-01/") for k in keys)


def _app(events: list[object], **kwargs: Any) -> DashboardApp:
    source = StaticSource(events, PollHealth(checks_per_second=12.5, lag=0.2, last_poll_age=1.0))
    return DashboardApp(fixed_inventory(), source, lang=kwargs.pop("lang", "en"), clock=frozen_clock,
                        host=frozen_host, refresh=60.0, **kwargs)


@pytest.mark.parametrize(("lang", "count", "every", "soft"), [
    ("en", "all 3 checks", "every check fails: connection refused", "(SOFT)"),
    ("fr", "les 3 contrôles", "tous les contrôles échouent : connection refused", "(PROVISOIRE)"),
])
async def test_the_screen_shows_the_site_row_its_checks_and_acks_them_all(
    lang: str, count: str, every: str, soft: str
) -> None:
    app = _app(tlemcen_down_soft(), lang=lang)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        screen = app.screen
        assert isinstance(screen, ProblemsScreen)
        table: Any = screen.query_one("#problems")
        assert count in str(table.get_cell("checks:bplp-13", "check"))
        assert every in str(table.get_cell("checks:bplp-13", "reason"))
        assert soft in str(table.get_cell("checks:bplp-13", "severity"))
        table.move_cursor(row=[r.key for r in screen.rows].index("checks:bplp-13"))
        await pilot.pause()
        detail = str(screen.query_one("#problem-detail").render())
        for cid in TLEMCEN:
            assert cid.split("/", 1)[1] in detail  # every folded check named under the table
        row = screen.rows[table.cursor_row]
        assert screen._targets(row) == list(TLEMCEN)  # `a` acknowledges each of the site's checks


def test_problems_with_a_site_failing_whole_80x24(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert snap_compare(_app(tlemcen_down_soft()), terminal_size=(80, 24),
                        press=["exclamation_mark", "j", "j", "j"])


async def test_live_outage_is_one_row_while_soft_then_hard(tmp_path: Path) -> None:
    """The real collector against the real simulator: a whole site goes silent and spends its retries."""
    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True)
    snmp.forget_baselines()
    async with sim:
        inv = quick_inventory(sim.write_config(tmp_path / "config"))
        # Four retries 0.5 s apart: two seconds of SOFT to see, then HARD.
        inv = dataclasses.replace(inv, checks=[dataclasses.replace(c, retries=4, retry_interval=0.5)
                                               for c in inv.checks])
        collector = CollectorProcess(inv, store=False, alerts=False, first_spread=0.1, ship_inventory=True).start()
        app = DashboardApp(inv, collector, lang="en", refresh=0.2, host=lambda: (1.0, 2.0), tiles=False)
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await until(pilot, lambda: _all_up(app))
                await pilot.press("exclamation_mark")
                await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
                screen = app.screen
                assert isinstance(screen, ProblemsScreen)
                checks = tuple(c.id for c in inv.checks if c.site_id == "bplp-16")
                assert len(checks) >= 2
                sim.set_fault("bplp-16", "outage")
                seen_soft: list[bool] = []

                def folded() -> bool:
                    rows = [r for r in screen.rows if r.site_id == "bplp-16"]
                    # never one row per check once every check fails
                    assert not (len(rows) > 1 and all(app.state.checks[c].status not in (None, "OK") for c in checks))
                    if len(rows) == 1 and rows[0].checks:
                        seen_soft.append(not rows[0].hard)
                        return rows[0].hard
                    return False

                await until(pilot, folded)
                assert True in seen_soft, "the fold was not seen while the checks were SOFT"
                (row,) = [r for r in screen.rows if r.site_id == "bplp-16"]
                assert sorted(row.checks) == sorted(checks)
                sim.clear_fault(site="bplp-16")
                await until(pilot, lambda: not any(r.site_id == "bplp-16" for r in screen.rows))
        finally:
            await asyncio.to_thread(collector.stop)
            snmp.forget_baselines()


async def test_why_on_a_problem_row_shows_its_checks_last_reply() -> None:
    from test_tui_actions import _notes

    from bibnet_ops.tui.screens.evidence import EvidenceScreen

    app = _app(tlemcen_down_soft())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, ProblemsScreen))
        screen = app.screen
        assert isinstance(screen, ProblemsScreen)
        table: Any = screen.query_one("#problems")
        keys = [r.key for r in screen.rows]
        table.move_cursor(row=keys.index("checks:bplp-13"))
        await pilot.pause()
        await pilot.press("w")  # "why": the folded site's worst check
        await until(pilot, lambda: isinstance(app.screen, EvidenceScreen))
        assert app.screen.check_id == TLEMCEN[0]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        table.move_cursor(row=keys.index("fold:bplp-25"))
        await pilot.pause()
        await pilot.press("e")
        await until(pilot, lambda: any("not a check" in n for n in _notes(app)))
        assert app.screen is screen
