"""The http probe over kept-alive connections, against a real loopback HTTP/1.1 server that keeps them.

What the pooled, prepared-once request path must keep: connections reused between polls, a connection
the server closed while idle noticed before reuse, each check's own URL and headers (a request built for
one check never goes out for another), a configuration change taking effect at the next poll, the same
request headers httpx's client sends, gzip bodies decoded, and TLS expiry read on a reused connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import gzip
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from bibnet_ops.model import CheckSpec, CheckStatus, Thresholds
from bibnet_ops.probes import _httpclient, oaipmh
from bibnet_ops.probes._httpclient import close_clients
from bibnet_ops.probes._httprequest import USER_AGENT
from bibnet_ops.probes.http import probe


@dataclass
class Seen:
    """One request as the server received it."""

    connection: int
    method: str
    target: str
    headers: dict[str, str]


@dataclass
class KeepAliveServer:
    """HTTP/1.1 on 127.0.0.1 that answers any number of requests per connection.

    The reply echoes the request line and headers as JSON-ish text; `/gzip` answers gzip-encoded;
    a connection idle for `idle_close` seconds is closed by the server, as Apache's KeepAliveTimeout does.
    """

    ssl_context: ssl.SSLContext | None = None
    idle_close: float | None = None
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{port}"

    async def __aenter__(self) -> KeepAliveServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        try:
            while True:
                async with contextlib.AsyncExitStack() as stack:
                    if self.idle_close is not None:
                        await stack.enter_async_context(asyncio.timeout(self.idle_close))
                    head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                self.seen.append(Seen(number, method, target, headers))
                body = f"{method} {target} {headers.get('x-library', '-')} Koha".encode()
                extra = ""
                if target == "/gzip":
                    body, extra = gzip.compress(body * 50), "Content-Encoding: gzip\r\n"
                head = f"HTTP/1.1 200 OK\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
                writer.write(head if method == "HEAD" else head + body)
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    async with KeepAliveServer() as srv:
        yield srv
    await close_clients()


def check(address: str, name: str = "web", **params: Any) -> CheckSpec:
    return CheckSpec("bplp-31", "catalogue", name, "http", address, params=params, timeout=3.0)


async def test_polls_reuse_one_connection(server: KeepAliveServer) -> None:
    spec = check(server.url, body_contains="Koha")
    for _ in range(5):
        sample = await probe(spec)
        assert sample.status is CheckStatus.OK, sample.reason
    assert len(server.seen) == 5
    assert server.connections == 1


async def test_connection_closed_by_server_while_idle_is_not_reused() -> None:
    async with KeepAliveServer(idle_close=0.1) as srv:
        spec = check(srv.url, body_contains="Koha")
        first = await probe(spec)
        await asyncio.sleep(0.4)  # the server has closed the idle connection by now
        second = await probe(spec)
        assert (first.status, second.status) == (CheckStatus.OK, CheckStatus.OK), second.reason
        assert srv.connections == 2
    await close_clients()


async def test_an_idle_sites_connections_are_closed_once_past_the_keepalive_time(
    server: KeepAliveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sites polled a minute apart do not each hold a connection (and its TLS state) for that minute."""
    monkeypatch.setattr(_httpclient, "KEEPALIVE_SECONDS", 0.2)
    monkeypatch.setattr(_httpclient, "_SWEEP_SECONDS", 0.0)
    quiet = dataclasses.replace(check(server.url, body_contains="Koha"), site_id="quiet-site")
    busy = check(server.url, body_contains="Koha")
    assert (await probe(quiet)).status is CheckStatus.OK
    assert (await probe(busy)).status is CheckStatus.OK
    entries = _httpclient._pools[asyncio.get_running_loop()].entries
    (quiet_entry,) = [e for key, e in entries.items() if key[0] == "quiet-site"]
    assert len(quiet_entry.pool.connections) == 1
    await asyncio.sleep(0.3)
    assert (await probe(busy)).status is CheckStatus.OK  # any poll sweeps the sites idle past the keep-alive
    await asyncio.sleep(0.05)
    assert quiet_entry.pool.connections == []
    assert (await probe(quiet)).status is CheckStatus.OK  # the site's next poll opens a new one
    assert server.connections == 4  # quiet, busy, busy again (its own idled too), quiet again


async def test_each_check_sends_its_own_url_and_headers(server: KeepAliveServer) -> None:
    oran = check(server.url, "oran", path="/oran", headers={"X-Library": "ORAN"}, body_contains="/oran ORAN")
    tlemcen = check(server.url, "tlem", path="/tlem", headers={"X-Library": "TLEM"}, body_contains="/tlem TLEM")
    bare = check(server.url, "bare", path="/oran", body_contains="/oran -")
    samples = await asyncio.gather(*(probe(spec) for _ in range(10) for spec in (oran, tlemcen, bare)))
    assert all(s.status is CheckStatus.OK for s in samples), [s.reason for s in samples if s.reason]
    by_target: dict[str, set[str]] = {}
    for seen in server.seen:
        by_target.setdefault(seen.target, set()).add(seen.headers.get("x-library", "-"))
    assert by_target == {"/oran": {"ORAN", "-"}, "/tlem": {"TLEM"}}
    assert sum(1 for seen in server.seen if seen.target == "/tlem") == 10


async def test_changed_configuration_takes_effect_at_next_poll(server: KeepAliveServer) -> None:
    before = check(server.url, path="/v1", headers={"X-Library": "ORAN"})
    assert (await probe(before)).status is CheckStatus.OK
    # a configuration reload builds a new CheckSpec with the same id
    after = dataclasses.replace(before, params={"path": "/v2", "headers": {"X-Library": "TLEM"}})
    assert after.id == before.id
    assert (await probe(after)).status is CheckStatus.OK
    moved = dataclasses.replace(before, address=server.url + "/koha", params={"path": "/v3"})
    assert (await probe(moved)).status is CheckStatus.OK
    assert [(s.target, s.headers.get("x-library")) for s in server.seen] == [
        ("/v1", "ORAN"),
        ("/v2", "TLEM"),
        ("/koha/v3", None),
    ]


async def test_request_headers_are_those_of_an_httpx_client(server: KeepAliveServer) -> None:
    assert (await probe(check(server.url))).status is CheckStatus.OK
    overriding = check(server.url, "ua", headers={"User-Agent": "probe-test", "Accept": "text/html"})
    assert (await probe(overriding)).status is CheckStatus.OK
    first, second = server.seen
    host = server.url.removeprefix("http://")
    assert first.headers == {
        "host": host,
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "connection": "keep-alive",
        "user-agent": USER_AGENT,
    }
    assert (second.headers["user-agent"], second.headers["accept"]) == ("probe-test", "text/html")
    assert "cookie" not in second.headers


async def test_gzip_body_is_decoded(server: KeepAliveServer) -> None:
    sample = await probe(check(server.url, path="/gzip", body_regex="(GET /gzip - Koha){50}"))
    assert sample.status is CheckStatus.OK, sample.reason
    assert sample.values["body_bytes"] == 50 * len("GET /gzip - Koha")


async def test_methods_other_than_get(server: KeepAliveServer) -> None:
    for method in ("HEAD", "POST"):
        sample = await probe(check(server.url, method.lower(), method=method))
        assert sample.status is CheckStatus.OK, sample.reason
    head, post = server.seen
    assert (head.method, post.method, post.headers.get("content-length")) == ("HEAD", "POST", "0")
    assert server.connections == 1  # the HEAD reply's Content-Length did not leave a body on the wire


async def test_bad_url_parameter_is_unknown() -> None:
    for url in ("http://127.0.0.1:99999/", "ftp://127.0.0.1/catalogue", "http:///opac"):
        sample = await probe(check("http://127.0.0.1:1/", url=url))
        assert sample.status is CheckStatus.UNKNOWN, sample.reason
        assert sample.reason.startswith(f"bad URL {url!r}: ")


async def test_oaipmh_queries_go_out_with_their_parameters(server: KeepAliveServer) -> None:
    spec = CheckSpec("bplp-31", "oai", "identify", "oaipmh", server.url, params={"path": "/oai"}, timeout=3.0)
    sample = await oaipmh.probe(spec)
    # the echo server is no OAI-PMH provider: what matters here is the request it received
    assert sample.status is CheckStatus.CRITICAL
    assert server.seen[0].target == "/oai?verb=Identify"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_expiry_read_on_a_reused_connection(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = ca.issue_cert("127.0.0.1", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=12.2))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    limits = Thresholds(warning=30, critical=7, direction="below")
    async with KeepAliveServer(ssl_context=context) as srv:
        spec = dataclasses.replace(check(srv.url, tls_expiry=True, ca_file=str(ca_file)), thresholds=limits)
        samples = [await probe(spec) for _ in range(3)]
        assert [s.status for s in samples] == [CheckStatus.WARNING] * 3, samples[0].reason
        assert all(s.reason == "TLS certificate expires in 12 days (warning below 30 days)" for s in samples)
        assert srv.connections == 1
    await close_clients()
