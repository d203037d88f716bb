"""The http probe against real loopback servers: status, timeouts, resets, bodies, JSON, TLS, redirects."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from loopback_http import LoopbackServer, Request, reply

from bibnet_ops.model import CheckSpec, CheckStatus, Thresholds
from bibnet_ops.probes import run_probe
from bibnet_ops.probes._httpclient import close_clients, pool_size
from bibnet_ops.probes.http import build_url, probe

CATALOGUE = {"status": "ok", "libraries": [{"library_id": "ORAN"}, {"library_id": "TLEM"}], "queue": 7}


async def catalogue(request: Request, writer: asyncio.StreamWriter) -> None:
    """A Koha-like device with a few misbehaving paths."""
    path = request.path
    if path == "/":
        await reply(writer, 200, "<html><title>Koha online catalog</title> v23.11.05</html>")
    elif path == "/health.json":
        await reply(writer, 200, json.dumps(CATALOGUE), {"Content-Type": "application/json"})
    elif path == "/down":
        await reply(writer, 503, "maintenance")
    elif path == "/moved":
        await reply(writer, 302, "", {"Location": "/"})
    elif path == "/slow":
        await asyncio.sleep(30)
    elif path == "/notjson":
        await reply(writer, 200, "<html>oops</html>")
    elif path == "/reset":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    elif path == "/short":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
    elif path == "/huge":
        # 50 MB streamed without a length: the probe must stop reading long before the end
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        chunk = b"y" * 65536
        for _ in range(800):
            writer.write(chunk)
            await writer.drain()
    elif path == "/garbage":
        writer.write(b"HELLO THIS IS NOT HTTP\r\n\r\n")
        await writer.drain()
    elif path == "/cookie":
        await reply(writer, 200, "", {"Set-Cookie": "session=abc; Path=/"})
    elif path == "/echo-headers":
        await reply(writer, 200, json.dumps(request.headers))
    else:
        await reply(writer, 404, "not found")


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    async with LoopbackServer(catalogue) as srv:
        yield srv
    await close_clients()


def check(address: str, timeout: float = 3.0, thresholds: Thresholds | None = None, **params: Any) -> CheckSpec:
    return CheckSpec(
        site_id="bplp-31",
        device_id="catalogue",
        name="web",
        probe="http",
        address=address,
        params=params,
        timeout=timeout,
        thresholds=thresholds or Thresholds(),
    )


async def test_ok_reply_gives_latency_metric(server: LoopbackServer) -> None:
    before = time.time()
    sample = await probe(check(server.url, body_contains="Koha"))
    assert sample.status is CheckStatus.OK, sample.reason
    assert sample.check_id == "bplp-31/catalogue/web"
    assert sample.value is not None and 0 < sample.value < 2
    assert sample.latency == sample.value
    assert before <= sample.time <= time.time()
    assert sample.values["http_status"] == 200
    assert "HTTP 200 OK" in sample.reason


async def test_wrong_status_is_critical(server: LoopbackServer) -> None:
    sample = await probe(check(server.url, path="/down"))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == "GET /down: HTTP 503 — maintenance"
    accepted = await probe(check(server.url, path="/down", expect_status=[200, 503]))
    assert accepted.status is CheckStatus.OK


async def test_redirect_not_followed_by_default(server: LoopbackServer) -> None:
    sample = await probe(check(server.url, path="/moved"))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == "GET /moved: HTTP 302 — Found, redirects to /"
    followed = await probe(check(server.url, path="/moved", follow_redirects=True, body_contains="Koha"))
    assert followed.status is CheckStatus.OK, followed.reason


async def test_slow_reply_returns_within_timeout(server: LoopbackServer) -> None:
    started = time.monotonic()
    sample = await probe(check(server.url, timeout=0.5, path="/slow"))
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.3
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason.startswith("no answer within 0.5 s")


async def test_refused_port_is_critical() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sample = await probe(check(f"http://127.0.0.1:{port}"))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == f"connection refused on 127.0.0.1:{port}"
    await close_clients()


async def test_reset_and_short_reply_are_critical(server: LoopbackServer) -> None:
    reset = await probe(check(server.url, path="/reset"))
    assert reset.status is CheckStatus.CRITICAL
    assert "127.0.0.1" in reset.reason and ("reset" in reset.reason or "mid-reply" in reset.reason)
    short = await probe(check(server.url, path="/short"))
    assert short.status is CheckStatus.CRITICAL
    assert "closed the connection mid-reply" in short.reason


async def test_garbage_reply_is_critical(server: LoopbackServer) -> None:
    sample = await probe(check(server.url, path="/garbage"))
    assert sample.status is CheckStatus.CRITICAL
    # what came back is quoted, so a technician can tell an SSH daemon or a printer page from a broken server
    where = server.url.removeprefix("http://")
    assert sample.reason == f"{where} does not speak HTTP: it answered 'HELLO THIS IS NOT HTTP'"


async def test_huge_body_stops_at_max_body(server: LoopbackServer) -> None:
    started = time.monotonic()
    sample = await probe(check(server.url, path="/huge", max_body=200_000, body_contains="Koha"))
    assert time.monotonic() - started < 2.0
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == "GET /huge: body lacks 'Koha' (only the first 200000 bytes were read)"
    assert sample.values["body_bytes"] == 200_000
    fine = await probe(check(server.url, path="/huge", max_body=1000, body_regex="y{500}"))
    assert fine.status is CheckStatus.OK, fine.reason


async def test_body_keyword_and_regex(server: LoopbackServer) -> None:
    assert (await probe(check(server.url, body_regex=r"v2[0-9]\.\d+"))).status is CheckStatus.OK
    missing = await probe(check(server.url, body_contains="Evergreen"))
    assert (missing.status, missing.reason) == (CheckStatus.CRITICAL, "GET /: body lacks 'Evergreen'")
    nomatch = await probe(check(server.url, body_regex=r"v9\."))
    assert nomatch.status is CheckStatus.CRITICAL and "does not match" in nomatch.reason


async def test_json_comparisons(server: LoopbackServer) -> None:
    url = server.url + "/health.json"
    ok = await probe(check(url, json_field="status", json_equals="ok"))
    assert ok.status is CheckStatus.OK, ok.reason
    ok = await probe(check(url, json_field="libraries.1.library_id", json_equals="TLEM"))
    assert ok.status is CheckStatus.OK, ok.reason
    bad = await probe(check(url, json_field="libraries.0.library_id", json_equals="ALGER"))
    assert bad.status is CheckStatus.CRITICAL
    assert bad.reason == 'JSON libraries.0.library_id = "ORAN" (expected "ALGER")'
    missing = await probe(check(url, json_field="libraries.5.library_id"))
    assert (missing.status, missing.reason) == (
        CheckStatus.CRITICAL,
        "JSON lacks field 'libraries.5.library_id'",
    )
    assert (await probe(check(url, json_field="libraries", json_min_items=2))).status is CheckStatus.OK
    few = await probe(check(url, json_field="libraries", json_min_items=3))
    assert few.status is CheckStatus.CRITICAL and "has 2 items (expected at least 3)" in few.reason
    assert (await probe(check(url, json_field="queue", json_equals=7.0))).status is CheckStatus.OK
    assert (await probe(check(url, json_field="queue", json_equals="7"))).status is CheckStatus.CRITICAL
    metric = await probe(check(url, json_field="queue", json_metric=True, thresholds=Thresholds(warning=5)))
    assert (metric.status, metric.value) == (CheckStatus.WARNING, 7.0)
    assert metric.reason == "queue 7 (warning above 5)"
    notjson = await probe(check(server.url, path="/notjson", json_field="status"))
    assert notjson.status is CheckStatus.CRITICAL and "not valid JSON" in notjson.reason


async def test_latency_threshold(server: LoopbackServer) -> None:
    sample = await probe(check(server.url, thresholds=Thresholds(warning=0.0, critical=60)))
    assert sample.status is CheckStatus.WARNING
    assert "(warning above 0" in sample.reason


async def test_headers_sent_and_port_override(server: LoopbackServer) -> None:
    sample = await probe(
        check(
            "http://127.0.0.1:1/",
            port=server.port,
            path="/echo-headers",
            headers={"X-Library": "BPLP-31"},
            json_field="x-library",
            json_equals="BPLP-31",
        )
    )
    assert sample.status is CheckStatus.OK, sample.reason


async def test_cookies_are_not_kept(server: LoopbackServer) -> None:
    assert (await probe(check(server.url, path="/cookie"))).status is CheckStatus.OK
    assert (await probe(check(server.url, path="/echo-headers"))).status is CheckStatus.OK
    assert "cookie" not in server.requests[-1].headers


def test_build_url() -> None:
    assert build_url("http://h:80/koha", {"path": "cgi-bin/x.pl?a=1"}) == "http://h:80/koha/cgi-bin/x.pl?a=1"
    assert build_url("h:8080", {}) == "http://h:8080/"
    assert build_url("https://h/", {"port": 8443}) == "https://h:8443/"
    assert build_url("http://h", {"url": "http://other/x"}) == "http://other/x"


async def test_bad_configuration_is_unknown() -> None:
    assert (await probe(check("ftp://127.0.0.1/"))).status is CheckStatus.UNKNOWN
    bad = await probe(check("http://127.0.0.1:1/", body_regex="("))
    assert bad.status is CheckStatus.UNKNOWN and "body_regex" in bad.reason
    assert (await probe(check("http://127.0.0.1:1/", expect_status="200"))).status is CheckStatus.UNKNOWN


async def test_run_probe_dispatches_http(server: LoopbackServer) -> None:
    sample = await run_probe(check(server.url))
    assert sample.status is CheckStatus.OK


async def test_one_client_per_site(server: LoopbackServer) -> None:
    await close_clients()
    for site in ("a", "b", "a"):
        spec = check(server.url)
        spec = CheckSpec(site_id=site, device_id="d", name="n", probe="http", address=spec.address)
        assert (await probe(spec)).status is CheckStatus.OK
    assert pool_size() == 2
    many = await asyncio.gather(*(probe(check(server.url)) for _ in range(40)))
    assert all(s.status is CheckStatus.OK for s in many)
    await close_clients()
    assert pool_size() == 0


async def test_pool_evicts_least_recently_used(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from bibnet_ops.probes import _httpclient

    monkeypatch.setattr(_httpclient, "MAX_CLIENTS", 2)
    await close_clients()
    for site in ("a", "b", "c", "a"):
        spec = CheckSpec(site_id=site, device_id="d", name="n", probe="http", address=server.url)
        assert (await probe(spec)).status is CheckStatus.OK
    assert pool_size() == 2
    await close_clients()


# --- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def tls_server(ca: trustme.CA, days_left: float) -> LoopbackServer:
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=days_left)
    cert = ca.issue_cert("127.0.0.1", not_after=not_after)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return await LoopbackServer(catalogue, ssl_context=ctx).start()


async def test_tls_expiry_thresholds(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    limits = Thresholds(warning=30, critical=7, direction="below")
    servers = [await tls_server(ca, d) for d in (90.2, 12.2, 3.2)]
    try:
        results = [await probe(check(s.url, tls_expiry=True, ca_file=str(ca_file), thresholds=limits)) for s in servers]
        assert [r.status for r in results] == [CheckStatus.OK, CheckStatus.WARNING, CheckStatus.CRITICAL]
        assert results[1].reason == "TLS certificate expires in 12 days (warning below 30 days)"
        assert results[2].value is not None and 3.0 < results[2].value < 3.3
        plain = await probe(check(servers[0].url, ca_file=str(ca_file), body_contains="Koha"))
        assert plain.status is CheckStatus.OK, plain.reason
    finally:
        for s in servers:
            await s.stop()
        await close_clients()


async def test_tls_untrusted_and_unverified(ca: trustme.CA) -> None:
    server = await tls_server(ca, 10)
    try:
        untrusted = await probe(check(server.url))
        assert untrusted.status is CheckStatus.CRITICAL
        assert untrusted.reason.startswith("TLS certificate rejected by 127.0.0.1:")
        unverified = await probe(check(server.url, verify_tls=False, tls_expiry=True))
        assert unverified.status is CheckStatus.OK, unverified.reason
        assert unverified.value is not None and 9 < unverified.value < 10.1
        plain_http = await probe(check(server.url.replace("https", "http")))
        assert plain_http.status is CheckStatus.CRITICAL
    finally:
        await server.stop()
        await close_clients()


async def test_tls_expiry_on_plain_http_is_unknown(server: LoopbackServer) -> None:
    sample = await probe(check(server.url, tls_expiry=True))
    assert sample.status is CheckStatus.UNKNOWN and "not https" in sample.reason
