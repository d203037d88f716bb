"""Requests for httpx's transport layer, built once per check, and their replies as `httpx.Response`.

`prepare()` lets httpx do what it does for `AsyncClient.get`: parse the URL, add the query, merge the
headers over the client defaults (`DEFAULT_HEADERS`) and validate them; the result is an
`httpcore.Request` that carries no per-poll state (timeouts come from the caller's deadline), so the
http probe keeps one per check and sends it on every poll. `send()` hands it to an httpcore pool and
wraps the reply in `httpx.Response`, exactly as httpx's own `AsyncHTTPTransport` does, so content
codings are decoded by httpx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpcore
import httpx

from bibnet_ops.probes._httperrors import describe

__all__ = ["DEFAULT_HEADERS", "USER_AGENT", "PreparedRequest", "prepare", "send"]

USER_AGENT = "bibnet-ops/0.1 (+library network monitoring)"
# what httpx.AsyncClient sends by default, with the content codings httpx.Response always decodes
DEFAULT_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": USER_AGENT,
}


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
    """An httpcore reply body as httpx.Response reads it (httpx's own transport wraps it the same way)."""

    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_stream():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


async def send(pool: httpcore.AsyncConnectionPool, request: PreparedRequest) -> httpx.Response:
    """Send a prepared request on an httpcore pool; the reply's body is left to stream."""
    # no per-operation timeouts: the caller's deadline bounds connect, TLS, writes and reads together
    reply = await pool.handle_async_request(request.core)
    return httpx.Response(reply.status, headers=reply.headers, stream=_CoreStream(reply), extensions=reply.extensions)
