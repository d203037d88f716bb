"""Receivers and the dispatcher against real services on loopback: HTTP webhook, SMTP with STARTTLS, a program."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest
from test_alert_support import SmtpSink, WebhookSink, free_port, smtp_sink, webhook_sink

from bibnet_ops.alerts import (
    AlertLog,
    DeliveryError,
    Dispatcher,
    Notification,
    NotificationKind,
    ReceiverConfig,
    make_receiver,
)
from bibnet_ops.model import SecretRef

__all__ = ["smtp_sink", "webhook_sink"]


def note(kind: NotificationKind = NotificationKind.PROBLEM, alert_id: int = 7) -> Notification:
    now = time.time()
    return Notification(kind=kind, alert_id=alert_id, key="site:bplp-31", state="DOWN", site_id="bplp-31",
                        since=now - 600, time=now, reason="connection refused", site_name="BPLP d'Oran",
                        site_name_ar="المكتبة الرئيسية للمطالعة العمومية لوهران", wilaya=31, region="ouest",
                        affected=("annexe-31-1", "annexe-31-2"), network="test")


def test_payload_is_documented_shape() -> None:
    payload = note().payload()
    assert payload["version"] == 1 and payload["kind"] == "problem" and payload["state"] == "DOWN"
    assert payload["site"]["wilaya"] == 31 and payload["affected"] == ["annexe-31-1", "annexe-31-2"]
    assert "▲ DOWN bplp-31" in payload["text"] and "2 site(s) behind it" in payload["text"]
    assert payload["subject"].startswith("[bibnet] DOWN bplp-31")
    recovery = note(NotificationKind.RECOVERY).payload()
    assert recovery["recovered"] is True and recovery["text"].startswith("✔ RECOVERED bplp-31")


async def test_webhook_posts_json_with_secret_header(webhook_sink: WebhookSink, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("HOOK_URL", webhook_sink.url)
    (tmp_path / "token").write_text("tok-123\n")
    rc = ReceiverConfig("chat", "webhook", {"headers": {"Authorization": "file:token"}},
                        {"url": SecretRef("env:HOOK_URL"), "header:Authorization": SecretRef("file:token", tmp_path)})
    receiver = make_receiver(rc)
    try:
        detail = await receiver.send(note())
    finally:
        await receiver.aclose()
    assert detail == "HTTP 200"
    assert webhook_sink.posts[0]["site"]["name_ar"].startswith("المكتبة")
    assert webhook_sink.headers[0]["Authorization"] == "tok-123"


async def test_webhook_text_format_for_chat_tools(webhook_sink: WebhookSink) -> None:
    receiver = make_receiver(ReceiverConfig("chat", "webhook", {"url": webhook_sink.url, "format": "text"}))
    try:
        await receiver.send(note())
    finally:
        await receiver.aclose()
    assert list(webhook_sink.posts[0]) == ["text"]


async def test_webhook_refused_connection_is_a_delivery_error() -> None:
    receiver = make_receiver(ReceiverConfig("chat", "webhook", {"url": f"http://127.0.0.1:{free_port()}/"},
                                            timeout=2))
    try:
        with pytest.raises(DeliveryError, match="unreachable"):
            await receiver.send(note())
    finally:
        await receiver.aclose()


async def test_email_over_starttls_with_login(smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    rc = ReceiverConfig("noc", "email", {"host": "127.0.0.1", "port": smtp_sink.port, "username": "bibnet",
                                         "from": "bibnet-ops <noc@bibnet.dz>", "to": ["astreinte@bibnet.dz"],
                                         "ca_file": str(smtp_sink.ca_file)},
                        {"password": SecretRef("env:SMTP_PASSWORD")}, timeout=5)
    detail = await make_receiver(rc).send(note())
    assert detail.startswith("accepted by 127.0.0.1")
    msg = (await asyncio.to_thread(smtp_sink.wait, 1))[0]
    assert msg["Subject"].startswith("[bibnet] DOWN bplp-31")
    raw = msg.get_payload(decode=True)
    assert isinstance(raw, bytes)
    body = raw.decode("utf-8")
    assert "connection refused" in body and "المكتبة" in body
    assert smtp_sink.logins == ["bibnet"] and smtp_sink.envelopes[0][1] == ["astreinte@bibnet.dz"]


async def test_email_wrong_password_is_refused(smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    rc = ReceiverConfig("noc", "email", {"host": "127.0.0.1", "port": smtp_sink.port, "username": "bibnet",
                                         "from": "noc@bibnet.dz", "to": ["a@bibnet.dz"],
                                         "ca_file": str(smtp_sink.ca_file)},
                        {"password": SecretRef("env:SMTP_PASSWORD")}, timeout=5)
    with pytest.raises(DeliveryError, match="login refused"):
        await make_receiver(rc).send(note())
    assert smtp_sink.messages == []


async def test_email_untrusted_certificate_fails(smtp_sink: SmtpSink) -> None:
    rc = ReceiverConfig("noc", "email", {"host": "127.0.0.1", "port": smtp_sink.port, "from": "noc@bibnet.dz",
                                         "to": ["a@bibnet.dz"]}, timeout=5)
    with pytest.raises(DeliveryError, match="SMTP failed"):
        await make_receiver(rc).send(note())


async def test_command_gets_env_and_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    script = ("import json, os, sys; d = json.load(sys.stdin); "
              f"open({str(out)!r}, 'w').write(json.dumps({{'env': os.environ['BIBNET_ALERT_SITE'], "
              "'kind': os.environ['BIBNET_ALERT_KIND'], 'key': d['key']}))")
    receiver = make_receiver(ReceiverConfig("pager", "command", {"command": [sys.executable, "-c", script]}))
    assert (await receiver.send(note())).endswith("exited 0")
    assert json.loads(out.read_text()) == {"env": "bplp-31", "kind": "problem", "key": "site:bplp-31"}


async def test_command_failure_and_timeout(tmp_path: Path) -> None:
    failing = make_receiver(ReceiverConfig("pager", "command", {
        "command": [sys.executable, "-c", "import sys; print('modem busy', file=sys.stderr); sys.exit(3)"]}))
    with pytest.raises(DeliveryError, match="exited with 3: modem busy"):
        await failing.send(note())
    slow = make_receiver(ReceiverConfig("pager", "command", {
        "command": [sys.executable, "-c", "import time; time.sleep(30)"]}, timeout=0.5))
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="timeout"):
        await slow.send(note())
    assert time.monotonic() - started < 5
    missing = make_receiver(ReceiverConfig("pager", "command", {"command": [str(tmp_path / "nope")]}))
    with pytest.raises(DeliveryError, match="cannot run"):
        await missing.send(note())


async def test_dispatcher_retries_with_backoff_and_records(webhook_sink: WebhookSink) -> None:
    webhook_sink.fail_next = 2
    log = AlertLog(None)
    receiver = make_receiver(ReceiverConfig("chat", "webhook", {"url": webhook_sink.url}, retries=3,
                                            backoff=0.05, backoff_max=0.2))
    dispatcher = Dispatcher({"chat": receiver}, log)
    dispatcher.submit(note(), ["chat"])
    dispatcher.submit(note(NotificationKind.RECOVERY), ["chat"])
    assert await dispatcher.drain(10)
    await dispatcher.aclose()
    # The recovery waited for the problem's retries: order is kept per alert and receiver.
    assert webhook_sink.kinds() == [("problem", "site:bplp-31"), ("recovery", "site:bplp-31")]
    assert webhook_sink.attempts == 4
    records = log.deliveries(7)
    assert [(r.kind, r.outcome, r.attempts) for r in records] == [("problem", "sent", 3), ("recovery", "sent", 1)]
    assert dispatcher.stats.retried == 2 and dispatcher.stats.sent == 2


async def test_dispatcher_gives_up_and_never_blocks(webhook_sink: WebhookSink) -> None:
    webhook_sink.fail_all = True
    log = AlertLog(None)
    receiver = make_receiver(ReceiverConfig("chat", "webhook", {"url": webhook_sink.url}, retries=2,
                                            backoff=0.05, backoff_max=0.05))
    dispatcher = Dispatcher({"chat": receiver}, log)
    started = time.perf_counter()
    dispatcher.submit(note(), ["chat"])
    assert time.perf_counter() - started < 0.05  # submitting returns at once
    assert await dispatcher.drain(10)
    await dispatcher.aclose()
    (record,) = log.deliveries(7)
    assert record.outcome == "failed" and record.attempts == 3 and "503" in record.error
    assert dispatcher.stats.failed == 1
