"""The ministry's console: live state of a real collector process read from the central PostgreSQL store."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from _postgres import PgServer
from test_national_failover import Collectors, events, network, query, until

from bibnet_ops.alerts import access_policy
from bibnet_ops.inventory import load_inventory
from bibnet_ops.model import SiteStatus
from bibnet_ops.store import StoreTarget
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.changes import ConsoleChanges, MaintenanceRequest
from bibnet_ops.tui.nationalsource import NationalSource, StoreAcks
from bibnet_ops.tui.screens.collectors import CollectorsScreen
from bibnet_ops.tui.widgets import NavTable, StatusHeader


async def wait(pilot: Any, predicate: Callable[[], bool], timeout: float = 30.0) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)
    return time.monotonic() - start


def header(app: DashboardApp) -> str:
    return str(app.screen.query_one(StatusHeader).render())


async def test_console_follows_a_collector_within_5_seconds(tmp_path: Path, pg_server: PgServer) -> None:
    with network(tmp_path) as (sim, thread, config):
        dsn = pg_server.dsn(pg_server.create_database())
        group = Collectors(config, dsn, tmp_path, sim, thread)
        source = NationalSource(StoreTarget(dsn), interval=0.5).start()
        try:
            group.start("oran-1")
            until(lambda: len(query(dsn, "SELECT 1 FROM national_site_state WHERE status = 'UP'")) >= 3, 60,
                  "sites UP in the central store")
            app = DashboardApp(load_inventory(config), source, lang="en", refresh=0.5, host=None)
            async with app.run_test(size=(120, 30)) as pilot:
                await wait(pilot, lambda: app.state.sites["bplp-31"].status == SiteStatus.UP)
                await wait(pilot, lambda: "1/1 collectors" in header(app))
                group.fault("bplp-31", "outage")
                await wait(pilot, lambda: any(e.get("site") == "bplp-31" and e.get("new") == "DOWN"
                                              for e in events(group.log("oran-1"))), 60)
                printed = next(e for e in events(group.log("oran-1"))
                               if e.get("site") == "bplp-31" and e.get("new") == "DOWN")
                seen_by_collector = datetime.fromisoformat(printed["time"]).timestamp()
                await wait(pilot, lambda: app.state.sites["bplp-31"].status == SiteStatus.DOWN, 30)
                # the collector's event time is whole seconds: allow the one it rounds away
                assert time.time() - seen_by_collector <= 5.0 + 1.0
                # a maintenance window made on the console reaches the collector that polls the site
                changes = ConsoleChanges(access_policy({}, read_only=False), acks=StoreAcks(StoreTarget(dsn)),
                                         store_path=StoreTarget(dsn))
                changes.start_maintenance(MaintenanceRequest("site", "bplp-46", 3600, "onduleur")).result(30)
                changes.close()
                await wait(pilot, lambda: app.state.sites["bplp-46"].status == SiteStatus.MAINTENANCE, 30)
                assert query(dsn, "SELECT collector FROM national_site_state WHERE site = 'bplp-46'") == [("oran-1",)]
                await pilot.press("C")
                await wait(pilot, lambda: isinstance(app.screen, CollectorsScreen))
                table = app.screen.query_one("#collectors", NavTable)
                await wait(pilot, lambda: table.row_count == 1)
                row = [str(c) for c in table.get_row("oran-1")]
                assert row[0] == "oran-1" and "running" in row[2] and row[8] == "reachable", row
                await pilot.press("escape", "q")
        finally:
            source.stop()
            group.stop_all()


async def test_console_says_when_the_store_is_away_and_acks_reach_the_store(tmp_path: Path,
                                                                            pg_server: PgServer) -> None:
    dsn = pg_server.dsn(pg_server.create_database())
    from bibnet_ops.store import open_store

    open_store(StoreTarget(dsn)).close()  # the schema, as a collector would create it
    acks = StoreAcks(StoreTarget(dsn))
    made = acks.acknowledge(["site:bplp-31"], "on it", author="ministere").result(30)
    assert [a.key for a in made] == ["site:bplp-31"]
    assert query(dsn, "SELECT author, comment FROM acks") == [("ministere", "on it")]
    acks.close()
    away = NationalSource(StoreTarget(f"postgresql://postgres:secret@127.0.0.1:{pg_server.port + 1}/x"))
    away.start()
    try:
        until(lambda: away.store_error() is not None, 30, "the console to notice the store is away")
    finally:
        away.stop()
    notice = away.notice()
    assert notice is not None and notice[1] == "down"
    assert notice[0].startswith("central store unreachable: ") and "secret" not in notice[0]
