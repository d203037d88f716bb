"""Real loopback receivers for alerting tests: an HTTP webhook sink and an SMTP server with STARTTLS and AUTH.

Both run in their own threads on 127.0.0.1 so a test's event loop sees them as real remote services.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


class WebhookSink:
    """An HTTP server on 127.0.0.1 that records JSON POSTs; `fail_next` makes it answer 503 a few times."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_next = 0
        self.fail_all = False
        self.attempts = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with sink.lock:
                    sink.attempts += 1
                    failing = sink.fail_all or sink.fail_next > 0
                    if sink.fail_next > 0:
                        sink.fail_next -= 1
                    if not failing:
                        sink.posts.append(json.loads(body))
                        sink.headers.append(dict(self.headers))
                status = 503 if failing else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def kinds(self) -> list[tuple[str, str]]:
        """(kind, key) of every accepted POST, in order."""
        with self.lock:
            return [(p["kind"], p["key"]) for p in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 requiring STARTTLS and AUTH (user `bibnet`, password `s3cret`)."""

    host: str
    port: int
    ca_file: Path
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def wait(self, n: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.sink.messages.append(message_from_bytes(content))
        self.sink.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted"


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.close()


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    sink = SmtpSink("127.0.0.1", free_port(), ca_file)

    def authenticator(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"bibnet" and auth_data.password == b"s3cret"
        if ok:
            sink.logins.append("bibnet")
        return AuthResult(success=ok, handled=False)

    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=sink.port, tls_context=server_ctx,
                            require_starttls=True, auth_require_tls=True, authenticator=authenticator,
                            server_hostname="localhost")
    controller.start()
    yield sink
    controller.stop()


def test_webhook_sink_records_and_fails_on_demand(webhook_sink: WebhookSink) -> None:
    import httpx

    webhook_sink.fail_next = 1
    assert httpx.post(webhook_sink.url, json={"kind": "problem", "key": "k"}).status_code == 503
    assert httpx.post(webhook_sink.url, json={"kind": "problem", "key": "k"}).status_code == 200
    assert webhook_sink.kinds() == [("problem", "k")]
