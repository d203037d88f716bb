"""Alerting end to end: the simulator's network, the real engine, a SQLite store, real webhook and SMTP servers.

Check timings are shortened (polls every 0.3 s, HARD after two failures) so that each scenario runs in
seconds; everything else is what `bibnet-ops collect` runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_alert_support import SmtpSink, WebhookSink, smtp_sink, webhook_sink

from bibnet_ops.alerts import AlertLog, AlertManager, build_alerting
from bibnet_ops.events import Sample, SiteStatusChange
from bibnet_ops.inventory import Inventory, load_inventory
from bibnet_ops.model import SiteStatus
from bibnet_ops.probes import snmp
from bibnet_ops.sim import Simulator
from bibnet_ops.store import MaintenanceWindow, SqliteStore

__all__ = ["smtp_sink", "webhook_sink"]

Engine = pytest.importorskip("bibnet_ops.engine").Engine

REPO = Path(__file__).resolve().parent.parent
SITES = ["bna", "bplp-31", "bplp-13", "bplp-14", "bplp-20", "bplp-16"]
KEPT = ("catalogue/opac", "router/uplink")


def alerts_toml(sink: WebhookSink, rule: str = "", smtp: SmtpSink | None = None) -> str:
    text = f"""
[alerts]
enabled = true
settle = "0.6s"
settle_max = "10s"
backoff = "0.1s"
backoff_max = "0.3s"

[alerts.receivers.chat]
kind = "webhook"
url = "{sink.url}"

[alerts.receivers.boss]
kind = "webhook"
url = "{sink.url}"
"""
    if smtp is not None:
        text += f"""
[alerts.receivers.mail]
kind = "email"
host = "127.0.0.1"
port = {smtp.port}
username = "bibnet"
password = "env:TEST_SMTP_PASSWORD"
from = "bibnet-ops <noc@bibnet.dz>"
to = ["astreinte@bibnet.dz"]
ca_file = "{smtp.ca_file}"
timeout = "5s"
"""
    return text + (rule or '\n[[alerts.rules]]\nreceivers = ["chat"]\n')


@dataclass
class Stack:
    """A simulated network polled by the engine with alerting attached."""

    sim: Simulator
    inventory: Inventory
    engine: Any
    manager: AlertManager
    sink: WebhookSink
    db: Path
    events: list[Any] = field(default_factory=list)

    def site_status(self, site: str) -> SiteStatus | None:
        changes = [e for e in self.events if isinstance(e, SiteStatusChange) and e.site_id == site]
        return SiteStatus(changes[-1].new) if changes else None

    async def until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)

    async def settle_sites(self) -> None:
        """Wait until every site is UP (the first polls take a moment)."""
        await self.until(lambda: all(self.site_status(s) == SiteStatus.UP for s in SITES))


@asynccontextmanager
async def stack(tmp_path: Path, sink: WebhookSink, rule: str = "",
                smtp: SmtpSink | None = None) -> AsyncIterator[Stack]:
    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True)
    snmp.forget_baselines()
    async with sim:
        config = sim.write_config(tmp_path / "config")
        net = config / "network.toml"
        net.write_text(net.read_text(encoding="utf-8").split("[alerts]")[0] + alerts_toml(sink, rule, smtp),
                       encoding="utf-8")
        inv = load_inventory(config)  # the loader validates [alerts] too
        checks = [dataclasses.replace(c, interval=0.3, retries=2, retry_interval=0.1, timeout=1.0, recover_after=1)
                  for c in inv.checks if f"{c.device_id}/{c.name}" in KEPT]
        engine = Engine(inv, checks, first_spread=0.1, seed=1)
        db = tmp_path / "bibnet.db"
        manager = build_alerting(inv, db, engine, tick=0.1, maintenance_interval=0.2)
        st = Stack(sim, inv, engine, manager, sink, db)
        engine.subscribe(st.events.append)
        runner = asyncio.create_task(engine.run())
        try:
            async with manager:
                await st.settle_sites()
                yield st
        finally:
            engine.stop()
            await runner
            snmp.close()
            snmp.forget_baselines()


async def test_site_down_one_alert_then_one_recovery_by_webhook_and_mail(
        tmp_path: Path, webhook_sink: WebhookSink, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    rule = '\n[[alerts.rules]]\nreceivers = ["chat", "mail"]\n'
    async with stack(tmp_path, webhook_sink, rule, smtp_sink) as st:
        st.sim.set_fault("bplp-16", "outage")
        await st.until(lambda: len(webhook_sink.posts) >= 1)
        await asyncio.sleep(1.5)  # nothing more: the checks of a DOWN site are folded into its alert
        assert webhook_sink.kinds() == [("problem", "site:bplp-16")]
        st.sim.clear_fault(site="bplp-16")
        await st.until(lambda: len(webhook_sink.posts) >= 2)
        await asyncio.sleep(1.0)
        assert webhook_sink.kinds() == [("problem", "site:bplp-16"), ("recovery", "site:bplp-16")]
        await asyncio.to_thread(smtp_sink.wait, 2)
        subjects = [m["Subject"] for m in smtp_sink.messages]
        assert subjects[0].startswith("[bibnet] DOWN bplp-16") and subjects[1].startswith("[bibnet] RECOVERED bplp-16")
    log = AlertLog(st.db, readonly=True)
    (alert,) = log.alerts()
    assert alert.key == "site:bplp-16" and alert.closed_at is not None
    assert sorted((d.receiver, d.kind, d.outcome) for d in log.deliveries(alert.id)) == [
        ("chat", "problem", "sent"), ("chat", "recovery", "sent"), ("mail", "problem", "sent"),
        ("mail", "recovery", "sent")]
    log.close()


async def test_hub_down_one_alert_listing_children_and_one_recovery(tmp_path: Path, webhook_sink: WebhookSink) -> None:
    async with stack(tmp_path, webhook_sink) as st:
        st.sim.set_fault("bplp-31", "hub_down")
        await st.until(lambda: len(webhook_sink.posts) >= 1)
        await asyncio.sleep(1.5)
        assert webhook_sink.kinds() == [("problem", "site:bplp-31")]
        assert webhook_sink.posts[0]["affected"] == ["bplp-13", "bplp-14", "bplp-20"]
        st.sim.clear_fault(site="bplp-31")
        await st.until(lambda: len(webhook_sink.posts) >= 2)
        await asyncio.sleep(1.5)
        assert webhook_sink.kinds() == [("problem", "site:bplp-31"), ("recovery", "site:bplp-31")]
        assert webhook_sink.posts[1]["still_down"] == []
        assert all(st.site_status(s) == SiteStatus.UP for s in ("bplp-13", "bplp-14", "bplp-20"))


async def test_ack_stops_renotification_and_escalation(tmp_path: Path, webhook_sink: WebhookSink) -> None:
    rule = """
[[alerts.rules]]
receivers = ["chat"]
renotify = "0.5s"

[[alerts.rules.escalate]]
after = "3s"
receivers = ["boss"]
"""
    async with stack(tmp_path, webhook_sink, rule) as st:
        st.sim.set_fault("bplp-16", "outage")
        await st.until(lambda: len(webhook_sink.posts) >= 3)
        assert [k for k, _ in webhook_sink.kinds()][:3] == ["problem", "reminder", "reminder"]
        st.manager.acknowledge(["bplp-16"], "on my way", author="amina")
        await asyncio.sleep(0.3)
        count = len(webhook_sink.posts)
        await asyncio.sleep(3.5)  # beyond both the reminder interval and the escalation delay
        assert len(webhook_sink.posts) == count
        st.sim.clear_fault(site="bplp-16")
        await st.until(lambda: webhook_sink.kinds()[-1][0] == "recovery")
        assert webhook_sink.posts[-1]["acknowledged"]["author"] == "amina"


async def test_escalation_fires_on_time(tmp_path: Path, webhook_sink: WebhookSink) -> None:
    rule = """
[[alerts.rules]]
receivers = ["chat"]

[[alerts.rules.escalate]]
after = "1.5s"
receivers = ["boss"]
"""
    async with stack(tmp_path, webhook_sink, rule) as st:
        st.sim.set_fault("bplp-16", "outage")
        await st.until(lambda: len(webhook_sink.posts) >= 1)
        first = time.monotonic()
        await st.until(lambda: len(webhook_sink.posts) >= 2)
        assert 1.3 <= time.monotonic() - first <= 3.0
        assert webhook_sink.kinds()[1] == ("escalation", "site:bplp-16")
        st.sim.clear_fault(site="bplp-16")
        await st.until(lambda: len(webhook_sink.posts) >= 4)
        assert webhook_sink.kinds()[2:] == [("recovery", "site:bplp-16")] * 2  # to chat and to boss


async def test_maintenance_window_silences_and_marks_maintenance(tmp_path: Path, webhook_sink: WebhookSink) -> None:
    async with stack(tmp_path, webhook_sink) as st:
        store = SqliteStore(st.db)
        now = time.time()
        wid = store.add_maintenance(MaintenanceWindow(0, "site", "bplp-16", now - 1, now + 3600, "switch swap"),
                                    "tester", now)
        await st.until(lambda: st.site_status("bplp-16") == SiteStatus.MAINTENANCE)
        st.sim.set_fault("bplp-16", "outage")
        await asyncio.sleep(2.5)
        assert webhook_sink.posts == []
        # Ending the window early with the site still down: now it alerts.
        store.end_maintenance(wid, "tester", time.time())
        store.close()
        await st.until(lambda: len(webhook_sink.posts) >= 1)
        assert webhook_sink.kinds() == [("problem", "site:bplp-16")]


async def test_dead_receiver_is_retried_and_polling_goes_on(tmp_path: Path, webhook_sink: WebhookSink) -> None:
    async with stack(tmp_path, webhook_sink) as st:
        webhook_sink.fail_all = True
        st.sim.set_fault("bplp-16", "outage")
        await st.until(lambda: webhook_sink.attempts >= 2)
        samples = sum(isinstance(e, Sample) for e in st.events)
        await asyncio.sleep(1.0)
        assert sum(isinstance(e, Sample) for e in st.events) > samples + 5  # the engine kept polling
        webhook_sink.fail_all = False
        await st.until(lambda: len(webhook_sink.posts) >= 1)
        assert webhook_sink.kinds() == [("problem", "site:bplp-16")]
        log = AlertLog(st.db, readonly=True)
        await st.until(lambda: log.deliveries()[0].outcome == "sent")
        assert log.deliveries()[0].attempts >= 3
        log.close()
