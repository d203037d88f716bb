"""The alert manager fed by hand-made engine events, on a controlled clock, delivering to a real webhook sink."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from test_alert_support import WebhookSink, webhook_sink

from bibnet_ops.alerts import (
    AlertLog,
    AlertManager,
    Dispatcher,
    ReadOnlyError,
    access_policy,
    make_receiver,
    parse_alerts,
)
from bibnet_ops.events import FlappingChange, SiteStatusChange, StateChange
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckStatus, Site, SiteStatus

__all__ = ["webhook_sink"]

T0 = 1_780_000_000.0
OK, CRIT, WARN = CheckStatus.OK, CheckStatus.CRITICAL, CheckStatus.WARNING
UP, DOWN, UNREACH, MAINT = SiteStatus.UP, SiteStatus.DOWN, SiteStatus.UNREACHABLE, SiteStatus.MAINTENANCE


def inventory() -> Inventory:
    inv = Inventory(root=Path("."), name="test")
    for site in (
        Site("bna", "Bibliothèque nationale", wilaya=16, region="centre", kind="national"),
        Site("hub-31", "BPLP Oran", wilaya=31, region="ouest", kind="hub", parent="bna"),
        Site("lib-a", "Annexe A", wilaya=31, region="ouest", parent="hub-31", tags=("annexe",)),
        Site("lib-b", "Annexe B", wilaya=31, region="ouest", parent="hub-31", tags=("annexe",)),
        Site("lib-16", "BPLP Alger", wilaya=16, region="centre", parent="bna"),
    ):
        inv.sites[site.id] = site
    return inv


class Rig:
    """A manager, its clock, its alert log and the webhook sink it delivers to."""

    def __init__(self, sink: WebhookSink, rules: list[dict[str, Any]], *, settle: float = 5,
                 in_maintenance: Callable[[str, float], bool] | None = None, log: AlertLog | None = None) -> None:
        self.now = T0
        self.sink = sink
        self.log = log or AlertLog(None)
        receivers = {name: {"kind": "webhook", "url": sink.url, "backoff": 0.05, "retries": 2}
                     for name in ("chat", "boss")}
        self.config = parse_alerts({"settle": settle, "settle_max": 60, "receivers": receivers,
                                    "rules": rules})
        self.dispatcher = Dispatcher({n: make_receiver(r) for n, r in self.config.receivers.items()}, self.log,
                                     clock=lambda: self.now)
        self.manager = AlertManager(self.config, inventory(), self.dispatcher, self.log,
                                    in_maintenance=in_maintenance, clock=lambda: self.now, ack_refresh=0)

    def check(self, check_id: str, new: CheckStatus, old: CheckStatus = OK, hard: bool = True) -> None:
        self.manager.handle(StateChange(check_id, check_id.split("/")[0], self.now, old, new, hard))

    def site(self, site_id: str, new: SiteStatus, old: SiteStatus = UP, root: str | None = None,
             affected: tuple[str, ...] = ()) -> None:
        self.manager.handle(SiteStatusChange(site_id, self.now, old, new, root_cause=root, affected=affected))

    def flap(self, check_id: str, flapping: bool) -> None:
        percent = 60.0 if flapping else 20.0
        self.manager.handle(FlappingChange(check_id, check_id.split("/")[0], self.now, flapping, percent))

    async def at(self, offset: float) -> list[tuple[str, str]]:
        """Advance the clock to T0 + offset, decide, wait for deliveries; return what the sink has so far."""
        self.now = T0 + offset
        await self.manager.evaluate()
        assert await self.dispatcher.drain(10)
        return self.sink.kinds()


@pytest.fixture
async def rig_factory(webhook_sink: WebhookSink) -> AsyncIterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(rules: list[dict[str, Any]], **kw: Any) -> Rig:
        rigs.append(Rig(webhook_sink, rules, **kw))
        return rigs[-1]

    yield make
    for rig in rigs:
        await rig.manager.stop(1)


async def test_check_down_one_alert_after_delay_then_one_recovery(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"], "after": 60}])
    rig.check("lib-16/catalogue/http", CRIT, hard=False)
    assert await rig.at(100) == []  # SOFT states never alert
    rig.now = T0 + 100
    rig.check("lib-16/catalogue/http", CRIT)
    assert await rig.at(130) == []
    assert await rig.at(161) == [("problem", "lib-16/catalogue/http")]
    assert await rig.at(300) == [("problem", "lib-16/catalogue/http")]  # no renotify configured
    rig.now = T0 + 400
    rig.check("lib-16/catalogue/http", OK, CRIT)
    assert await rig.at(401) == [("problem", "lib-16/catalogue/http"), ("recovery", "lib-16/catalogue/http")]
    (alert,) = rig.log.alerts()
    assert alert.closed_at == T0 + 401 and alert.receivers == ("chat",)
    assert [(d.kind, d.outcome) for d in rig.log.deliveries(alert.id)] == [("problem", "sent"), ("recovery", "sent")]


async def test_short_blip_never_alerts(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"], "after": 60}])
    rig.check("lib-16/catalogue/http", CRIT)
    rig.now = T0 + 30
    rig.check("lib-16/catalogue/http", OK, CRIT)
    assert await rig.at(100) == []


async def test_hub_down_one_alert_listing_children(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"]}], settle=10)
    # The children's checks fail first (their retries ran out before the hub's did) ...
    rig.check("lib-a/catalogue/http", CRIT)
    rig.site("lib-a", DOWN)
    rig.check("hub-31/catalogue/http", CRIT)
    assert await rig.at(3) == []
    # ... then the engine sees the hub as the root cause.
    rig.now = T0 + 4
    rig.site("hub-31", DOWN, affected=("lib-a",))
    rig.site("lib-a", UNREACH, DOWN, root="hub-31")
    rig.site("lib-b", UNREACH, root="hub-31")
    rig.check("lib-b/catalogue/http", CRIT)
    sent = await rig.at(20)
    assert sent == [("problem", "site:hub-31")]
    assert rig.sink.posts[0]["affected"] == ["lib-a", "lib-b"]
    assert "2 site(s) behind it" in rig.sink.posts[0]["text"]
    # The hub comes back: nothing is sent until the children have been re-checked.
    rig.now = T0 + 100
    rig.check("hub-31/catalogue/http", OK, CRIT)
    rig.site("hub-31", UP, DOWN)
    assert await rig.at(101) == sent
    assert await rig.at(120) == sent
    rig.now = T0 + 125
    rig.check("lib-a/catalogue/http", OK, CRIT)
    rig.site("lib-a", UP, UNREACH)
    rig.site("lib-b", DOWN, UNREACH)  # really down, now that it can be seen
    out = await rig.at(126)
    assert out == [("problem", "site:hub-31"), ("recovery", "site:hub-31")]
    assert rig.sink.posts[1]["still_down"] == ["lib-b"]
    # lib-b's own alert only after the settle delay counted from its parent's recovery.
    assert await rig.at(131) == out
    assert await rig.at(136) == [*out, ("problem", "site:lib-b")]
    assert rig.sink.posts[-1]["affected"] == []


async def test_check_alert_folded_into_site_down(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"], "states": ["DOWN", "CRITICAL"]}])
    rig.check("lib-16/catalogue/http", CRIT)
    rig.check("lib-16/scanner-1/pages", CRIT)
    rig.now = T0 + 2
    rig.site("lib-16", DOWN)
    assert await rig.at(10) == [("problem", "site:lib-16")]


async def test_ack_stops_renotify_and_escalation_but_not_recovery(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"], "renotify": 60, "escalate": [{"after": 300, "receivers": ["boss"]}]}])
    rig.check("lib-16/catalogue/http", CRIT)
    assert await rig.at(10) == [("problem", "lib-16/catalogue/http")]
    assert len(await rig.at(71)) == 2  # reminder
    assert rig.sink.posts[1]["kind"] == "reminder"
    with pytest.raises(ReadOnlyError):
        rig.manager.acknowledge(["lib-16/catalogue/http"], "on it", policy=access_policy(read_only=True))
    (ack,) = rig.manager.acknowledge(["lib-16/catalogue/http"], "replacing the switch", author="amina")
    assert rig.manager.ack_for("lib-16/catalogue/http") == ack
    assert len(await rig.at(200)) == 2
    assert len(await rig.at(400)) == 2  # no escalation either
    rig.now = T0 + 500
    rig.check("lib-16/catalogue/http", OK, CRIT)
    sent = await rig.at(501)
    assert sent[-1] == ("recovery", "lib-16/catalogue/http")
    assert rig.sink.posts[-1]["acknowledged"]["author"] == "amina"
    # A non-sticky ack ends with the recovery; the audit says who did what.
    assert rig.log.active_acks(T0 + 502) == {}
    assert [(a.action, a.who) for a in rig.log.audit_log()] == [("ack-recovered", "bibnet-ops"), ("ack", "amina")]


async def test_escalation_fires_on_time_when_unacknowledged(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"], "escalate": [{"after": 300, "receivers": ["boss"]},
                                                           {"after": 600, "receivers": ["boss"]}]}])
    rig.check("lib-16/catalogue/http", CRIT)
    assert len(await rig.at(10)) == 1
    assert len(await rig.at(300)) == 1
    assert await rig.at(311) == [("problem", "lib-16/catalogue/http"), ("escalation", "lib-16/catalogue/http")]
    assert rig.sink.posts[1]["escalation_level"] == 1
    assert len(await rig.at(611)) == 3
    rig.now = T0 + 700
    rig.check("lib-16/catalogue/http", OK, CRIT)
    # Recovery goes to everyone told: chat and boss, once each.
    sent = await rig.at(701)
    assert sent[3:] == [("recovery", "lib-16/catalogue/http")] * 2
    assert set(rig.log.alerts()[0].receivers) == {"chat", "boss"}


async def test_maintenance_suppresses_and_recovery_still_sent(rig_factory: Callable[..., Rig]) -> None:
    windows = {"lib-16": (T0, T0 + 1000)}

    def in_maint(site: str, t: float) -> bool:
        span = windows.get(site)
        return span is not None and span[0] <= t < span[1]

    rig = rig_factory([{"receivers": ["chat"], "renotify": 60}], in_maintenance=in_maint)
    rig.check("lib-16/catalogue/http", CRIT)
    assert await rig.at(500) == []
    # Problem outlasts the window: it alerts once the window is over (after the settle delay).
    assert await rig.at(1006) == [("problem", "lib-16/catalogue/http")]
    # An alert already sent, then a window begins: reminders stop, the recovery still goes out.
    windows["lib-16"] = (T0 + 1010, T0 + 5000)
    assert len(await rig.at(1100)) == 1
    rig.now = T0 + 1200
    rig.check("lib-16/catalogue/http", OK, CRIT)
    assert (await rig.at(1201))[-1] == ("recovery", "lib-16/catalogue/http")


async def test_maintenance_status_from_engine_silences_site(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"]}])
    rig.site("lib-16", MAINT)
    rig.check("lib-16/catalogue/http", CRIT)
    assert await rig.at(100) == []
    rig.now = T0 + 200
    rig.site("lib-16", DOWN, MAINT)
    assert await rig.at(204) == []
    assert await rig.at(206) == [("problem", "site:lib-16")]


async def test_sticky_ack_survives_recovery_and_silences_next_occurrence(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"]}])
    rig.manager.acknowledge(["lib-16"], "known flaky uplink", author="karim", sticky=True, expires_at=T0 + 3600)
    rig.site("lib-16", DOWN)
    assert await rig.at(10) == []  # acknowledged before anyone was told: nobody is told
    rig.now = T0 + 20
    rig.site("lib-16", UP, DOWN)
    rig.now = T0 + 30
    rig.site("lib-16", DOWN)
    assert await rig.at(40) == []
    assert await rig.at(3700) == [("problem", "site:lib-16")]  # the ack expired


async def test_acks_from_another_process_are_picked_up(tmp_path: Path, rig_factory: Callable[..., Rig]) -> None:
    from bibnet_ops.alerts import acknowledge

    db = tmp_path / "bibnet.db"
    rig = rig_factory([{"receivers": ["chat"], "renotify": 60}], log=AlertLog(db))
    rig.check("lib-16/catalogue/http", CRIT)
    assert len(await rig.at(10)) == 1
    other = AlertLog(db)
    acknowledge(other, ["lib-16/catalogue/http"], "looking", author="cli-user", now=T0 + 20)
    other.close()
    assert len(await rig.at(100)) == 1  # re-read the acks: no reminder


async def test_restart_adopts_open_alerts_and_sends_their_recovery(tmp_path: Path,
                                                                    rig_factory: Callable[..., Rig]) -> None:
    db = tmp_path / "bibnet.db"
    first = rig_factory([{"receivers": ["chat"]}], log=AlertLog(db))
    first.site("lib-16", DOWN)
    assert await first.at(10) == [("problem", "site:lib-16")]
    await first.manager.stop(1)
    second = rig_factory([{"receivers": ["chat"]}], log=AlertLog(db))
    second.now = T0 + 100
    second.manager.startup_grace = 300
    await second.manager.start()
    assert await second.at(200) == [("problem", "site:lib-16")]
    assert await second.at(401) == [("problem", "site:lib-16"), ("recovery", "site:lib-16")]
    assert second.log.alerts(open_only=True) == []


async def test_flapping_check_opens_no_alert_until_it_settles(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"], "after": 60}])
    key = "lib-16/catalogue/http"
    rig.check(key, CRIT)
    rig.now = T0 + 20
    rig.flap(key, True)
    for i in range(1, 13):  # HARD changes every 40 s while flapping: none of them may alert
        rig.now = T0 + 20 + 40 * i
        rig.check(key, OK if i % 2 else CRIT, CRIT if i % 2 else OK)
        assert await rig.at(20 + 40 * i + 30) == []
    assert rig.manager.flapping == {key: T0 + 20}
    rig.now = T0 + 600  # settles in a failing state: now it is a real problem, alerted at once
    rig.flap(key, False)
    assert await rig.at(601) == [("problem", key)]


async def test_flapping_open_alert_pauses_reminders_and_recovery(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([{"receivers": ["chat"], "renotify": 60, "escalate": [{"after": 300, "receivers": ["boss"]}]}])
    key = "lib-16/catalogue/http"
    rig.check(key, CRIT)
    assert await rig.at(10) == [("problem", key)]
    rig.now = T0 + 30
    rig.flap(key, True)
    assert await rig.at(31) == [("problem", key), ("flapping", key)]
    assert rig.sink.posts[-1]["subject"].startswith("[bibnet] FLAPPING lib-16/catalogue/http")
    assert "paused until it settles" in rig.sink.posts[-1]["text"]
    rig.now = T0 + 40
    rig.check(key, OK, CRIT)
    assert len(await rig.at(100)) == 2  # no recovery while flapping
    rig.now = T0 + 120
    rig.check(key, CRIT, OK)
    assert len(await rig.at(400)) == 2  # no reminder, no escalation while flapping
    rig.now = T0 + 450
    rig.flap(key, False)  # stops flapping, still failing: said once, then reminders resume
    sent = await rig.at(451)
    # both go out in one evaluation, delivered concurrently: their order at the sink is not theirs to keep
    assert sorted(sent[2:]) == [("escalation", key), ("flapping_stopped", key)]
    stopped = [p for p in rig.sink.posts if p["kind"] == "flapping_stopped"]
    assert len(stopped) == 1 and stopped[0]["subject"].endswith("(stopped flapping)")
    rig.now = T0 + 500
    rig.check(key, OK, CRIT)
    rig.flap(key, True)
    rig.now = T0 + 600
    rig.flap(key, False)  # settles OK: the recovery goes out now, once, to everyone told
    sent = await rig.at(601)
    assert sent.count(("recovery", key)) == 2
    assert sent.count(("flapping_stopped", key)) == 1


async def test_reconfigure_keeps_alerts_and_unchanged_receivers_and_drops_removed_sites(
    rig_factory: Callable[..., Rig], webhook_sink: WebhookSink
) -> None:
    rig = rig_factory([{"receivers": ["chat"]}])
    rig.check("lib-16/catalogue/http", CRIT)
    rig.check("lib-a/catalogue/http", CRIT)
    assert sorted(await rig.at(30)) == [("problem", "lib-16/catalogue/http"), ("problem", "lib-a/catalogue/http")]
    gone = next(a.id for a in rig.log.alerts() if a.key == "lib-a/catalogue/http")
    chat, boss = rig.dispatcher.receivers["chat"], rig.dispatcher.receivers["boss"]

    receivers = {"chat": {"kind": "webhook", "url": webhook_sink.url, "backoff": 0.05, "retries": 2},
                 "boss": {"kind": "webhook", "url": webhook_sink.url, "backoff": 0.05, "retries": 3}}
    config = parse_alerts({"settle": 5, "settle_max": 60, "receivers": receivers,
                           "rules": [{"receivers": ["chat"]}, {"receivers": ["boss"], "site": ["lib-16"]}]})
    smaller = inventory()
    del smaller.sites["lib-a"]
    closed = rig.manager.reconfigure(config, smaller, ["lib-a/catalogue/http"], ["lib-a"])
    assert closed == [gone]
    assert rig.dispatcher.receivers["chat"] is chat  # unchanged: kept, with its connections
    assert rig.dispatcher.receivers["boss"] is not boss  # changed: rebuilt, the old one closed

    # the kept alert is still followed: the new rule tells boss now, and the recovery goes to both
    assert await rig.at(40) == [("problem", "lib-16/catalogue/http"), ("problem", "lib-a/catalogue/http"),
                                ("problem", "lib-16/catalogue/http")]
    rig.now = T0 + 50
    rig.check("lib-16/catalogue/http", OK, CRIT)
    kinds = await rig.at(60)
    assert kinds[3:] == [("recovery", "lib-16/catalogue/http")] * 2  # nothing about the removed site
    assert rig.log.alerts(open_only=True) == []
    assert await rig.dispatcher.drain(5)
