"""`Sample.evidence` from the http and tcp probes: the raw reply, bounded, with secrets redacted."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from loopback_http import LoopbackServer, Request, reply

from bibnet_ops.model import CheckSpec, CheckStatus
from bibnet_ops.probes import run_probe
from bibnet_ops.probes._evidence import BODY_LIMIT, EVIDENCE_LIMIT, http_evidence
from bibnet_ops.probes._httpclient import close_clients

SECRET = "s3ssion-9f2e"


async def _handler(request: Request, writer: asyncio.StreamWriter) -> None:
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Set-Cookie": f"CGISESSID={SECRET}; path=/",
        "X-Api-Key": SECRET,
        "Server": "Apache/2.4.57 (Debian)",
    }
    if request.path == "/big":
        await reply(writer, 200, "<form action='/search'>" + "x" * 10_000, headers)
    else:
        await reply(writer, 500, "Software error:\nCan't connect to MySQL server", headers)


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    async with LoopbackServer(_handler) as srv:
        yield srv
    await close_clients()


def http_check(url: str, **params: object) -> CheckSpec:
    return CheckSpec("bplp-16", "catalogue", "opac", "http", url, params=dict(params), timeout=3.0)


async def test_http_evidence_has_status_line_headers_and_body_head(server: LoopbackServer) -> None:
    sample = await run_probe(http_check(server.url, path="/oops"))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == "GET /oops: HTTP 500 — Software error:"
    lines = sample.evidence.splitlines()
    assert lines[:2] == [f"GET {server.url}/oops", "HTTP 500 Internal Server Error"]
    assert "server: Apache/2.4.57 (Debian)" in lines
    assert "set-cookie: ***" in lines and "x-api-key: ***" in lines
    assert SECRET not in sample.evidence
    assert sample.evidence.endswith("Software error:\nCan't connect to MySQL server")


async def test_http_evidence_is_bounded(server: LoopbackServer) -> None:
    sample = await run_probe(http_check(server.url, path="/big"))
    assert sample.status is CheckStatus.OK, sample.reason
    assert len(sample.evidence) <= EVIDENCE_LIMIT
    body = sample.evidence.split("\n\n", 1)[1]
    assert body.startswith("<form action='/search'>") and body.count("x") == BODY_LIMIT - len("<form action='/search'>")
    assert body.endswith("(10023 bytes read)")


async def test_credentials_in_urls_are_redacted() -> None:
    text = http_evidence("GET", "https://admin:pw@10.0.0.1/api?token=abc&q=1", "HTTP 200 OK", [], b"")
    assert text.splitlines()[0] == "GET https://***@10.0.0.1/api?token=***&q=1"


async def test_transport_failures_and_tcp_have_evidence() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    http = await run_probe(http_check(f"http://user:pw@127.0.0.1:{port}/", path="/opac"))
    assert http.evidence.startswith(f"GET http://***@127.0.0.1:{port}/opac\n(no complete reply) connection refused")
    tcp = await run_probe(CheckSpec("bplp-16", "gw", "ssh", "tcp", f"127.0.0.1:{port}"))
    assert tcp.evidence == f"TCP connect 127.0.0.1:{port}: ECONNREFUSED Connection refused"
    await close_clients()
