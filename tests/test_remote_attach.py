"""Several dashboards on one collector process (what `bibnet-ops serve` runs: one per browser tab).

A real child collector polls the real simulator and listens on a Unix socket; real `CollectorProcess.attach`
consoles connect to it. Each gets every state at once and then the stream, asks for re-polls and raw replies,
and leaves without stopping the others; the process that started the collector stops it for everyone.
"""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

from test_remote import Seen, simulated, slow_inventory, wait_for

from bibnet_ops.engine import Evidence
from bibnet_ops.events import StateChange
from bibnet_ops.model import CheckStatus
from bibnet_ops.remote import CollectorProcess, Reloaded


async def test_dashboards_attach_to_one_collector_and_leave_without_stopping_it(tmp_path: Path) -> None:
    async with simulated(tmp_path) as (_sim, config):
        inv = slow_inventory(config)
        sock = tmp_path / "run" / "collector.sock"
        sock.parent.mkdir(mode=0o700)
        owner = CollectorProcess(inv, store=False, alerts=False, first_spread=0.1, ship_inventory=True,
                                 listen=sock, stream=False).start()
        first = second = None
        try:
            await wait_for(lambda: owner.ready is not None)
            assert stat.S_IMODE(sock.stat().st_mode) == 0o600  # only this user may attach
            first = CollectorProcess.attach(inv, sock).start()
            seen_first = Seen(first)
            await wait_for(lambda: {s.check_id for s in seen_first.samples()} == {c.id for c in inv.checks})
            assert first.attached and first.running and first.ready is not None
            assert first.ready.pid == owner.pid  # the same collector, not one of its own
            await wait_for(lambda: first.poll_health() is not None)
            # A dashboard attaching later gets every current state at once, before any new result.
            second = CollectorProcess.attach(inv, sock).start()
            seen_second = Seen(second)
            await wait_for(lambda: {e.check_id for e in seen_second.pull().events if isinstance(e, StateChange)}
                           == {c.id for c in inv.checks}, timeout=10)
            # The owner started the collector for others: it gets no event stream, only replies and health.
            assert owner.drain() == []
            await wait_for(lambda: owner.poll_health() is not None)
            # Commands from an attached dashboard run in the shared collector and answer that dashboard.
            polled_at = time.time()
            assert second.poll_now("bplp-16")
            await wait_for(lambda: any(s.time >= polled_at for s in seen_first.samples("bplp-16")), timeout=10)
            evidence = await asyncio.wrap_future(second.evidence("bplp-16/catalogue/opac"))
            assert isinstance(evidence, Evidence) and evidence.status == CheckStatus.OK and evidence.time is not None
            # One dashboard leaves: the collector and the other dashboard carry on.
            await asyncio.to_thread(first.stop)
            count = len(seen_second.samples())
            assert second.poll_now("bplp-13")
            await wait_for(lambda: len(seen_second.samples()) > count, timeout=10)
            assert owner.collector_stopped() is None and second.collector_stopped() is None
        finally:
            await asyncio.to_thread(owner.stop)
        # The owner stopped it: the dashboards still attached are told, and the socket is gone.
        assert second is not None
        await wait_for(lambda: second.collector_stopped() is not None, timeout=10)
        assert second.collector_stopped() == "the dashboard exited"
        assert owner.proc is not None and owner.proc.returncode == 0
        assert not sock.exists()
        await asyncio.to_thread(second.stop)


async def test_attaching_to_no_collector_is_a_stopped_source_not_a_crash(tmp_path: Path) -> None:
    async with simulated(tmp_path) as (_sim, config):
        inv = slow_inventory(config)
        lone = CollectorProcess.attach(inv, tmp_path / "nobody.sock").start()
        reason = lone.collector_stopped()
        assert reason is not None and "cannot reach the collector" in reason and "nobody.sock" in reason
        assert not lone.running and not lone.poll_now("bplp-16")
        failed = lone.evidence("bplp-16/catalogue/opac")
        assert failed.exception() is not None
        lone.stop()


async def test_a_reload_asked_by_an_attached_dashboard_is_made_by_the_shared_collector(tmp_path: Path) -> None:
    """ctrl+r in a writable served tab: the one collector re-reads its directory and answers that tab."""
    from bibnet_ops.inventory import load_inventory

    async with simulated(tmp_path) as (_sim, config):
        inv = load_inventory(config)
        sock = tmp_path / "collector.sock"
        owner = CollectorProcess(inv, store=False, alerts=False, first_spread=30.0, listen=sock, stream=False).start()
        try:
            await wait_for(lambda: owner.ready is not None)
            tab = CollectorProcess.attach(inv, sock).start()
            other = CollectorProcess.attach(inv, sock).start()
            seen_other = Seen(other)
            # a site no other depends on (a parent cannot be removed under its children)
            gone = next(s for s in sorted(inv.sites) if not any(x.parent == s for x in inv.sites.values()))
            (config / "sites" / f"{gone}.toml").unlink()
            answer = await asyncio.wrap_future(tab.reload_config())
            assert gone not in answer["inventory"].sites
            assert "1 site removed" in answer["result"].summary()
            assert not tab.poll_now(gone)  # the tab now matches the reloaded checks
            # Every other tab learns it in its stream, in order, and follows the new checks too.
            await wait_for(lambda: any(isinstance(e, Reloaded) for e in seen_other.pull().events), timeout=10)
            (told,) = [e for e in seen_other.events if isinstance(e, Reloaded)]
            assert gone not in told.inventory.sites and "1 site removed" in told.summary
            assert not other.poll_now(gone)
            assert not any(isinstance(e, Reloaded) for e in Seen(tab).pull().events)  # the asker got the reply
            await asyncio.to_thread(tab.stop)
            await asyncio.to_thread(other.stop)
            assert owner.collector_stopped() is None
        finally:
            await asyncio.to_thread(owner.stop)
