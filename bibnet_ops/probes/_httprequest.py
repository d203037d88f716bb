"""Requests for httpx's transport layer, built once per check, and their replies as `httpx.Response`.

`prepare()` lets httpx do what it does for `AsyncClient.get`: parse the URL, add the query, merge the
headers over the client defaults (`DEFAULT_HEADERS`) and validate them; the result is an
`httpcore.Request` that carries no per-poll state (timeouts come from the caller's deadline), so the
http probe keeps one per check and sends it on every poll. `send()` hands it to an httpcore pool and
wraps the reply in `httpx.Response`, exactly as httpx's own `AsyncHTTPTransport` does, so content
codings are decoded by httpx. `PoolTransport` puts the same path under an `httpx.AsyncClient` for the
checks that follow redirects.

Keep-alive races (RFC 9112 section 9.3.1): a server closes an idle kept-alive connection when its own
timer fires (Apache after 5 s), and a request sent just then meets a closed connection. An idempotent
request that fails on a reused connection before any byte of a reply arrived is therefore sent once
more, on a connection opened for it (the pool's other idle connections, as old, are closed too); never
when part of a reply came back (the server may have acted on it), never when the connection was new
(the device itself is failing). The resend shares the check's deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpcore
import httpx

from bibnet_ops.probes._httperrors import describe
from bibnet_ops.probes._httpnet import EXCHANGE, Exchange

__all__ = [
    "DEFAULT_HEADERS",
    "IDEMPOTENT_METHODS",
    "USER_AGENT",
    "FreshConnection",
    "PoolTransport",
    "PreparedRequest",
    "prepare",
    "send",
    "send_core",
]

USER_AGENT = "bibnet-ops/0.1 (+library network monitoring)"
# what httpx.AsyncClient sends by default, with the content codings httpx.Response always decodes
DEFAULT_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": USER_AGENT,
}
# RFC 9110 section 9.2.2: requests a client may repeat without asking (the probes send no request body)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_RESENDABLE = (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError)

FreshConnection = Callable[[httpcore.Origin], httpcore.AsyncHTTPConnection]
"""Opens a connection outside the pool, for the one resend of a request that met a closed keep-alive."""


@dataclass(frozen=True)
class PreparedRequest:
    """A request built and validated once by `prepare()`; any number of polls may send it, even at once.

    `url` is the URL as configured (named in failure reasons), `full_url` the one sent (query included).
    """

    url: str
    full_url: str
    method: str
    headers: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...]
    core: httpcore.Request


def prepare(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> PreparedRequest:
    """Build a request once: httpx parses the URL and merges the headers over the defaults.

    Raises:
        FetchError: The URL or a header cannot be sent (`config` is set for a bad URL).
    """
    try:
        merged = httpx.Headers(DEFAULT_HEADERS)
        merged.update(headers or {})
        request = httpx.Request(method, url, params=params, headers=merged)
        if not request.url.host:
            raise httpx.InvalidURL("the URL names no host")
        if request.url.port is not None and not 0 < request.url.port < 65536:
            raise httpx.InvalidURL(f"port {request.url.port} is out of range")
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
        )
    except Exception as exc:
        raise describe(exc, url, 0.0) from None
    return PreparedRequest(
        url=url,
        full_url=str(request.url),
        method=request.method,
        headers=tuple((headers or {}).items()),
        params=tuple((params or {}).items()),
        core=core,
    )


class _CoreStream(httpx.AsyncByteStream):
    """An httpcore reply body as httpx.Response reads it (httpx's own transport wraps it the same way).

    `connection` is the one-off connection of a resent request, closed with the reply.
    """

    def __init__(self, response: httpcore.Response, connection: httpcore.AsyncHTTPConnection | None) -> None:
        self._response = response
        self._connection = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_stream():
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            if self._connection is not None:
                await self._connection.aclose()


async def send_core(
    pool: httpcore.AsyncConnectionPool, request: httpcore.Request, fresh: FreshConnection
) -> tuple[httpcore.Response, httpcore.AsyncHTTPConnection | None]:
    """Send on the pool; resend once on a fresh connection if a reused one closed before replying.

    The attempt is recorded in the caller's `EXCHANGE` if it set one (so it can tell, after a
    timeout, whether part of a reply arrived), else in one of its own.

    Returns:
        The reply (its body left to stream) and the one-off connection it came on, if it was resent.
    """
    exchange = EXCHANGE.get()
    token = None
    if exchange is None:
        exchange = Exchange()
        token = EXCHANGE.set(exchange)
    try:
        exchange.start_attempt()
        try:
            return await pool.handle_async_request(request), None
        except _RESENDABLE:
            if not exchange.failed_on_reused_connection or request.method.decode() not in IDEMPOTENT_METHODS:
                raise
        exchange.start_attempt(resent=True)
        await _close_idle(pool)
        connection = fresh(request.url.origin)
        try:
            return await connection.handle_async_request(request), connection
        except BaseException:
            await connection.aclose()
            raise
    finally:
        if token is not None:
            EXCHANGE.reset(token)


async def _close_idle(pool: httpcore.AsyncConnectionPool) -> None:
    """Close the pool's idle connections: kept alive as long as the one that just failed, they are suspect."""
    for connection in pool.connections:
        if connection.is_idle():
            # the pool drops closed connections, and hands a request another if it had picked this one
            await connection.aclose()


async def send(
    pool: httpcore.AsyncConnectionPool, request: PreparedRequest, fresh: FreshConnection
) -> httpx.Response:
    """Send a prepared request on an httpcore pool; the reply's body is left to stream.

    A request that meets a kept-alive connection the server has just closed is resent once on a
    connection from `fresh` (see the module docstring).
    """
    # no per-operation timeouts: the caller's deadline bounds connect, TLS, writes and reads together
    reply, connection = await send_core(pool, request.core, fresh)
    return httpx.Response(
        reply.status, headers=reply.headers, stream=_CoreStream(reply, connection), extensions=reply.extensions
    )


class PoolTransport(httpx.AsyncBaseTransport):
    """An `httpx.AsyncClient` transport over a site's httpcore pool, with the same resend rule as `send`.

    Closing it leaves the pool open: the pool belongs to whoever made it.
    """

    def __init__(self, pool: httpcore.AsyncConnectionPool, fresh: FreshConnection) -> None:
        self._pool = pool
        self._fresh = fresh

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
        )
        reply, connection = await send_core(self._pool, core, self._fresh)
        return httpx.Response(
            reply.status, headers=reply.headers, stream=_CoreStream(reply, connection), extensions=reply.extensions
        )
