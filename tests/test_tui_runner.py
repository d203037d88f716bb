"""The in-process runner driving a real Collector (engine, history, alerting) against the real simulator.

The Collector forwards nothing implicitly: what the runner asks of it (run, stop, subscribe, health,
poll_now, snapshot, evidence) must be part of what it offers, or these fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from test_tui_live import REPO, SITES, quick_inventory

from bibnet_ops.collector import Collector
from bibnet_ops.events import Sample, SiteStatusChange, StateChange
from bibnet_ops.inventory import load_inventory
from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.probes import snmp
from bibnet_ops.sim import Simulator
from bibnet_ops.store import SqliteStore
from bibnet_ops.tui.runner import EngineThread


async def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_collector_runs_in_the_dashboard_thread(tmp_path: Path) -> None:
    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True)
    snmp.forget_baselines()
    async with sim:
        inv = quick_inventory(sim.write_config(tmp_path / "config"))
        collector = Collector(inv, store=tmp_path / "history.db", first_spread=0.1)
        runner = EngineThread(collector, limit=100_000).start()
        seen: list[object] = []
        try:
            def drained(kind: type, check: Callable[[object], bool] = lambda _e: True) -> bool:
                seen.extend(runner.buffer.drain())
                return any(isinstance(e, kind) and check(e) for e in seen)

            await _until(lambda: drained(SiteStatusChange, lambda e: e.site_id == "bplp-16" and e.new == SiteStatus.UP))
            assert any(isinstance(e, Sample) for e in seen)
            health = runner.buffer.poll_health()
            assert health is not None and health.checks_per_second > 0

            assert runner.buffer.poll_now("bplp-16") and not runner.buffer.poll_now("no-such-site")
            evidence = await asyncio.wrap_future(runner.buffer.evidence("bplp-16/catalogue/opac"))
            assert evidence.check_id == "bplp-16/catalogue/opac"

            sim.set_fault("bplp-16", "outage")
            await _until(lambda: drained(StateChange, lambda e: e.check_id.startswith("bplp-16/") and e.hard
                                          and e.new == CheckStatus.CRITICAL))

            # A dashboard that fell behind gets every current state again, each as a change from itself to itself.
            seen.clear()
            runner._resync()
            await _until(lambda: drained(SiteStatusChange, lambda e: e.site_id == "bplp-16" and e.old == e.new))
            resynced = [e for e in seen if isinstance(e, StateChange | SiteStatusChange) and e.old == e.new]
            assert {e.site_id for e in resynced} >= set(SITES)
        finally:
            await asyncio.to_thread(runner.stop)
            snmp.forget_baselines()
        assert not runner.running and runner.buffer.collector_stopped() == "stopped"
        store = SqliteStore(tmp_path / "history.db", readonly=True)  # the collector's history was kept too
        try:
            assert any(t.check_id.startswith("bplp-16/") and t.new == "CRITICAL"
                       for t in store.recent_transitions(100, "bplp-16"))
        finally:
            store.close()
