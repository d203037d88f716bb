"""AlertManager.reconfigure: a reload keeps open alerts, tells a new rule's receivers once, drops removed things."""

from __future__ import annotations

from test_alert_manager import DOWN, UP, Rig, inventory
from test_alert_support import WebhookSink, webhook_sink

from bibnet_ops.alerts import parse_alerts

__all__ = ["webhook_sink"]


def _config(sink: WebhookSink, rules: list[dict[str, object]]) -> object:
    receivers = {name: {"kind": "webhook", "url": sink.url, "backoff": 0.05, "retries": 2} for name in ("chat", "boss")}
    return parse_alerts({"settle": 5, "settle_max": 60, "receivers": receivers, "rules": rules})


async def test_unchanged_rules_send_nothing_again_and_a_new_rule_tells_its_receivers_once(
        webhook_sink: WebhookSink) -> None:
    rig = Rig(webhook_sink, [{"receivers": ["chat"]}])
    rig.site("lib-16", DOWN)
    assert await rig.at(10) == [("problem", "site:lib-16")]
    rig.manager.reconfigure(_config(webhook_sink, [{"receivers": ["chat"]}]), inventory())  # type: ignore[arg-type]
    assert await rig.at(20) == [("problem", "site:lib-16")]  # nothing repeated
    rules = [{"receivers": ["chat"]}, {"receivers": ["boss"], "regions": ["centre"]}]
    rig.manager.reconfigure(_config(webhook_sink, rules), inventory())  # type: ignore[arg-type]
    sent = await rig.at(30)
    assert sent == [("problem", "site:lib-16"), ("problem", "site:lib-16")]
    ids = {post["alert_id"] for post in webhook_sink.posts}
    assert len(ids) == 1  # the same alert, routed to one more receiver, not a new alert
    assert await rig.at(40) == sent  # once
    rig.site("lib-16", UP, old=DOWN)
    recovered = await rig.at(60)
    assert recovered.count(("recovery", "site:lib-16")) == 2  # both who were told hear of the recovery


async def test_a_removed_site_forgets_its_problem_and_alert_without_a_notification(
        webhook_sink: WebhookSink) -> None:
    rig = Rig(webhook_sink, [{"receivers": ["chat"]}])
    rig.site("lib-16", DOWN)
    assert await rig.at(10) == [("problem", "site:lib-16")]
    smaller = inventory()
    del smaller.sites["lib-16"]
    closed = rig.manager.reconfigure(rig.config, smaller, removed_sites=["lib-16"])
    assert len(closed) == 1
    assert "site:lib-16" not in rig.manager.alerts and "site:lib-16" not in rig.manager.tracker.problems
    assert await rig.at(100) == [("problem", "site:lib-16")]  # no recovery for a removal
