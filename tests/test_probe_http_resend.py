"""Keep-alive races (RFC 9112 section 9.3.1) against real loopback HTTP/1.1 servers.

A request that meets a kept-alive connection the server has just closed, before any byte of a reply
came back, is sent once more on a new connection within the same deadline. Never when part of a reply
came back, never when the connection was new. The servers here count every request they read, per
connection, so each test sees exactly what went over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from bibnet_ops.model import CheckSpec, CheckStatus
from bibnet_ops.probes._httpclient import close_clients
from bibnet_ops.probes.http import probe

BODY = b"<html>Koha OPAC</html>"


@dataclass
class RacyServer:
    """HTTP/1.1 on 127.0.0.1 that keeps connections alive (never says `Connection: close`) but:

    - `close_after_reply`: closes every connection right after its first reply;
    - `stale_after`: a request arriving on a connection idle for at least this many seconds is read and
      the connection closed unanswered, what a client meets when the server's keep-alive timer fires
      while the request is on its way (Apache's KeepAliveTimeout is 5 s);
    - `idle_close`: closes a connection idle this many seconds (the timer firing with no request near);
    - `partial_on_reuse`: on a reused connection, sends the first bytes of a status line, then closes;
    - `close_unanswered`: reads every request and closes without a reply, even on a new connection;
    - `hang_after`: connections after this many read their request and never answer.
    """

    close_after_reply: bool = False
    stale_after: float | None = None
    idle_close: float | None = None
    partial_on_reuse: bool = False
    close_unanswered: bool = False
    hang_after: int | None = None
    ssl_context: ssl.SSLContext | None = None
    requests: list[tuple[int, str]] = field(default_factory=list)  # (connection number, target) as read
    answered: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> RacyServer:
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
        served = 0
        idle_since = time.monotonic()
        try:
            while True:
                timeout = self.idle_close if served else None
                async with asyncio.timeout(timeout):
                    head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                self.requests.append((number, target))
                if self.close_unanswered:
                    return
                if self.hang_after is not None and number > self.hang_after:
                    await asyncio.sleep(3600)
                if served and self.stale_after is not None and time.monotonic() - idle_since >= self.stale_after:
                    return
                if served and self.partial_on_reuse:
                    writer.write(b"HTTP/1.1 200")
                    await writer.drain()
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(BODY), BODY))
                await writer.drain()
                served += 1
                self.answered += 1
                idle_since = time.monotonic()
                if self.close_after_reply:
                    return
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def per_connection(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for number, _ in self.requests:
            counts[number] = counts.get(number, 0) + 1
        return counts


@pytest.fixture(autouse=True)
async def _close_pools() -> AsyncIterator[None]:
    yield
    await close_clients()


def check(address: str, timeout: float = 3.0, **params: Any) -> CheckSpec:
    return CheckSpec("bplp-31", "catalogue", "opac", "http", address,
                     params={"body_contains": "Koha", **params}, timeout=timeout)


async def test_request_meeting_a_stale_keepalive_is_resent_once_on_a_new_connection() -> None:
    async with RacyServer(stale_after=0.0) as srv:
        spec = check(srv.url)
        samples = [await probe(spec) for _ in range(4)]
        assert [s.status for s in samples] == [CheckStatus.OK] * 4, [s.reason for s in samples]
        # poll 2 meets connection 1 stale and is resent on connection 2, opened for it and closed after;
        # poll 3 opens connection 3 for the pool, on which poll 4 meets the same race
        assert srv.answered == 4
        assert srv.per_connection() == {1: 2, 2: 1, 3: 2, 4: 1}


async def test_server_closing_after_every_reply_without_saying_so_never_fails_a_check() -> None:
    """Back-to-back requests race the server's FIN: whichever wins, no check fails."""
    async with RacyServer(close_after_reply=True) as srv:
        spec = check(srv.url)
        samples = []
        for _ in range(30):
            samples.append(await probe(spec))
        assert all(s.status is CheckStatus.OK for s in samples), {s.reason for s in samples}
        assert srv.answered == 30
        # every request that went out on a dead connection was sent again, never more than once
        assert len(srv.requests) <= 2 * 30
        assert max(srv.per_connection().values()) <= 2


async def test_polls_around_the_servers_idle_timeout_all_succeed() -> None:
    """Idle timeout 0.3 s (a short Apache KeepAliveTimeout); polls at ages just under, at and over it."""
    async with RacyServer(idle_close=0.3, stale_after=0.29) as srv:
        spec = check(srv.url)
        statuses = []
        for age in (0.05, 0.25, 0.28, 0.29, 0.30, 0.31, 0.35, 0.1, 0.295, 0.305):
            statuses.append((await probe(spec)).status)
            await asyncio.sleep(age)
        statuses.append((await probe(spec)).status)
        assert statuses == [CheckStatus.OK] * len(statuses)
        assert srv.answered == len(statuses)


async def test_apache_default_five_second_keepalive() -> None:
    """Apache's default KeepAliveTimeout (5 s): the pool drops an idle connection after 4 s, before it races."""
    async with RacyServer(idle_close=5.0, stale_after=4.95) as srv:
        spec = check(srv.url, timeout=10.0)
        first = await probe(spec)
        await asyncio.sleep(3.5)  # still kept: reused
        second = await probe(spec)
        await asyncio.sleep(4.97)  # the server's timer is about to fire: we closed the connection first
        third = await probe(spec)
        assert [first.status, second.status, third.status] == [CheckStatus.OK] * 3, third.reason
        assert srv.per_connection() == {1: 2, 2: 1}  # nothing needed resending


async def test_partial_reply_on_a_reused_connection_is_not_resent() -> None:
    async with RacyServer(partial_on_reuse=True) as srv:
        spec = check(srv.url)
        assert (await probe(spec)).status is CheckStatus.OK
        second = await probe(spec)
        assert second.status is CheckStatus.CRITICAL
        assert "mid-reply" in second.reason or "malformed" in second.reason, second.reason
        assert len(srv.requests) == 2  # the server may have acted on it: never sent a second time
        assert srv.connections == 1


async def test_failure_on_a_new_connection_is_not_resent() -> None:
    async with RacyServer(close_unanswered=True) as srv:
        sample = await probe(check(srv.url))
        assert sample.status is CheckStatus.CRITICAL
        assert sample.reason == f"{srv.url.removeprefix('http://')} closed the connection without replying"
        assert len(srv.requests) == 1
        assert srv.connections == 1


async def test_non_idempotent_method_is_not_resent() -> None:
    async with RacyServer(stale_after=0.0) as srv:
        spec = check(srv.url, method="POST", expect_status=[200])
        assert (await probe(spec)).status is CheckStatus.OK
        second = await probe(spec)
        assert second.status is CheckStatus.CRITICAL
        assert "closed the connection without replying" in second.reason
        assert len(srv.requests) == 2


async def test_redirect_following_check_resends_too() -> None:
    async with RacyServer(stale_after=0.0) as srv:
        spec = check(srv.url, follow_redirects=True)
        samples = [await probe(spec) for _ in range(3)]
        assert [s.status for s in samples] == [CheckStatus.OK] * 3, [s.reason for s in samples]
        assert srv.answered == 3
        assert srv.per_connection() == {1: 2, 2: 1, 3: 1}


async def test_resend_stays_within_the_check_deadline() -> None:
    """A stale connection, then a new one that never answers: the check ends at its own timeout."""
    async with RacyServer(stale_after=0.0, hang_after=1) as srv:
        spec = check(srv.url, timeout=1.0)
        assert (await probe(spec)).status is CheckStatus.OK
        started = time.monotonic()
        second = await probe(spec)
        elapsed = time.monotonic() - started
        assert second.status is CheckStatus.CRITICAL
        assert second.reason == f"no answer within 1.0 s from {srv.url.removeprefix('http://')}"
        assert 0.9 < elapsed < 1.5, elapsed
        assert srv.per_connection() == {1: 2, 2: 1}


async def test_resend_over_tls_verifies_the_new_connection(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with RacyServer(stale_after=0.0, ssl_context=context) as srv:
        spec = check(srv.url, ca_file=str(ca_file))
        samples = [await probe(spec) for _ in range(2)]
        assert [s.status for s in samples] == [CheckStatus.OK] * 2, [s.reason for s in samples]
        assert srv.per_connection() == {1: 2, 2: 1}  # resent over a new TLS connection
    await close_clients()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with RacyServer(stale_after=0.0, ssl_context=context) as srv:
        spec = check(srv.url, ca_file=str(ca_file))
        assert (await probe(spec)).status is CheckStatus.OK  # connection 1, trusted, kept alive
        trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
        second = await probe(spec)  # connection 1 is stale; the resend meets the untrusted certificate
        assert second.status is CheckStatus.CRITICAL
        assert second.reason.startswith(f"TLS certificate rejected by {srv.url.removeprefix('https://')}")
        assert srv.per_connection() == {1: 2}  # the resend never got as far as sending the request
