"""Shared HTTP plumbing for the `http` and `oaipmh` probes: one connection pool per site, bounded reads.

Why one pool per site rather than one for the whole collector: httpx's single shared connection pool
degrades sharply under concurrency (encode/httpx#3215, measured here: ~370 GET/s with 100 requests in
flight on one client against ~1,400/s with a client per worker). Sites are the natural unit: their
checks share a host, so keep-alive connections are reused, while different sites never contend for the
same pool lock. Each site's entry is created lazily, keyed by site and TLS settings, admits at most
`MAX_IN_FLIGHT` requests at a time, and at most `MAX_CLIENTS` entries are kept (least recently used
evicted first; entries idle longer than `IDLE_SECONDS` are closed). Entries belong to the event loop
that created them, so the pool is kept per loop. Call `close_clients()` at shutdown.

A plain request (no redirect to follow) goes straight to httpx's transport layer, an
`httpcore.AsyncConnectionPool` on the asyncio network backend of `_httpnet`, with a request built once
by `prepare()` (URL parsed, headers merged and validated by httpx) and reused by every poll of the check:
that skips, per poll, what the probes never use of `httpx.AsyncClient` (URL and header merging, cookie
jar, auth and redirect machinery, event hooks) and anyio's per-read cancel scopes, about half the CPU of
a keep-alive GET. The reply is still read through `httpx.Response`, so content codings are decoded as
before. Checks that follow redirects use an `httpx.AsyncClient` over the same pool (`PoolTransport`),
created on first use. Either way, a request that meets a kept-alive connection the server has just
closed is sent once more on a new connection (see `_httprequest`). No proxy is ever consulted (the
transport reads no environment) and no cookie is ever kept.

`fetch()` is the one entry point the probes use: it streams the reply, stops reading at `max_body`
bytes, optionally captures the server certificate's expiry, and turns every transport failure into a
`FetchError` whose message a library technician can act on.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

from bibnet_ops.probes._httperrors import FetchError, describe
from bibnet_ops.probes._httpnet import EXCHANGE, AsyncioBackend, Exchange
from bibnet_ops.probes._httprequest import USER_AGENT, PoolTransport, PreparedRequest, prepare, send

__all__ = [
    "IDLE_SECONDS",
    "MAX_CLIENTS",
    "MAX_IN_FLIGHT",
    "FetchError",
    "FetchResult",
    "PreparedRequest",
    "close_clients",
    "fetch",
    "pool_size",
    "prepare",
]

MAX_CLIENTS = 2048  # a whole regional network keeps its keep-alive connections; idle ones still close
MAX_IN_FLIGHT = 8
IDLE_SECONDS = 300.0
# an idle connection is closed after this long: just under Apache's default KeepAliveTimeout (5 s), so
# that a connection to the commonest server is dropped by us before its timer can race our request
KEEPALIVE_SECONDS = 4.0
# how often idle sites' expired connections are looked for
_SWEEP_SECONDS = 1.0

_ClientKey = tuple[str, bool, str]
_BACKEND = AsyncioBackend()


@dataclass
class _Entry:
    """One site's connections for one TLS setting."""

    ssl_context: ssl.SSLContext
    pool: httpcore.AsyncConnectionPool
    slots: asyncio.Semaphore
    client: httpx.AsyncClient | None = None  # only for checks that follow redirects
    last_used: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    retired: bool = False

    def redirect_client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = _new_client(PoolTransport(self.pool, self.fresh_connection))
        return self.client

    def fresh_connection(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        """A connection outside the pool, for resending a request that met a closed keep-alive."""
        return httpcore.AsyncHTTPConnection(
            origin, ssl_context=self.ssl_context, keepalive_expiry=0.0, network_backend=_BACKEND
        )

    async def aclose(self) -> None:
        await self.pool.aclose()
        if self.client is not None:
            await self.client.aclose()


class _Pool:
    """LRU of site entries for one event loop."""

    def __init__(self) -> None:
        self.entries: OrderedDict[_ClientKey, _Entry] = OrderedDict()
        self.swept = time.monotonic()

    def get(self, key: _ClientKey) -> _Entry:
        now = time.monotonic()
        if now - self.swept >= _SWEEP_SECONDS:
            self.swept = now
            self._sweep(now)
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
            return entry
        entry = _new_entry(key)
        self.entries[key] = entry
        self._evict()
        return entry

    def _sweep(self, now: float) -> None:
        """Close the connections of sites idle past the keep-alive time, not at their next poll a minute later.

        httpcore drops an expired connection only when its pool is used again; meanwhile each one keeps its
        socket and TLS state (tens of KiB), which at 2,000 sites polled every minute is most of the HTTP
        side's memory.
        """
        for entry in self.entries.values():
            if entry.in_flight == 0 and now - entry.last_used > KEEPALIVE_SECONDS and entry.pool.connections:
                task = asyncio.get_running_loop().create_task(_close_idle(entry))
                _closing.add(task)
                task.add_done_callback(_closing.discard)

    def _evict(self) -> None:
        now = time.monotonic()
        for key, entry in list(self.entries.items()):
            too_many = len(self.entries) > MAX_CLIENTS
            idle = entry.in_flight == 0 and now - entry.last_used > IDLE_SECONDS
            if too_many or idle:
                del self.entries[key]
                _retire(entry)

    async def close(self) -> None:
        entries = list(self.entries.values())
        self.entries.clear()
        for entry in entries:
            entry.retired = True
            await entry.aclose()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()
_closing: set[asyncio.Task[None]] = set()


async def _close_idle(entry: _Entry) -> None:
    """Close an idle entry's connections (the pool stays usable); a request started meanwhile keeps them."""
    if entry.in_flight == 0 and not entry.retired:
        await entry.pool.aclose()  # empties the pool's list before its first await: nothing can pick one up


def _retire(entry: _Entry) -> None:
    """Close an evicted entry now if idle, else when its last request finishes."""
    entry.retired = True
    if entry.in_flight == 0:
        task = asyncio.get_running_loop().create_task(entry.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)


_ssl_contexts: dict[tuple[bool, str, float], ssl.SSLContext] = {}


def _ssl_context(verify: bool, ca_file: str) -> ssl.SSLContext:
    """One shared context per TLS setting: building one loads the CA bundle, ~10 ms of CPU each time."""
    try:
        stamp = os.stat(ca_file).st_mtime if ca_file else 0.0
    except OSError:
        stamp = -1.0  # a missing CA file: let ssl raise its own error below, and do not cache it
    key = (verify, ca_file, stamp)
    ctx = _ssl_contexts.get(key)
    if ctx is None:
        ctx = _build_ssl_context(verify, ca_file)
        if stamp >= 0:
            _ssl_contexts[key] = ctx
    return ctx


def _build_ssl_context(verify: bool, ca_file: str) -> ssl.SSLContext:
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return httpx.create_ssl_context()


class _NoCookies(DefaultCookiePolicy):
    """Refuse every cookie: a probe must be stateless, and one device's cookie must not reach another."""

    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        return False


def _new_entry(key: _ClientKey) -> _Entry:
    _site, verify, ca_file = key
    context = _ssl_context(verify, ca_file)
    pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=MAX_IN_FLIGHT,
        max_keepalive_connections=MAX_IN_FLIGHT,
        keepalive_expiry=KEEPALIVE_SECONDS,
        network_backend=_BACKEND,
    )
    return _Entry(ssl_context=context, pool=pool, slots=asyncio.Semaphore(MAX_IN_FLIGHT))


def _new_client(transport: PoolTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,  # a collector must not silently route library traffic through a proxy
        headers={"User-Agent": USER_AGENT},
        cookies=CookieJar(policy=_NoCookies()),
    )


def pool_size() -> int:
    """Return how many site entries the current event loop keeps (for tests and diagnostics)."""
    pool = _pools.get(asyncio.get_running_loop())
    return 0 if pool is None else len(pool.entries)


async def close_clients() -> None:
    """Close every site entry (pools and clients) of the running event loop; call once at shutdown."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()
    if _closing:
        await asyncio.gather(*list(_closing), return_exceptions=True)


@dataclass
class FetchResult:
    """A (possibly truncated) HTTP reply."""

    url: str
    status: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytes
    truncated: bool
    latency: float
    cert_not_after: float | None = None

    @property
    def status_text(self) -> str:
        """`HTTP 503 Service Unavailable` style label."""
        return f"HTTP {self.status} {self.reason_phrase}".rstrip()

    def text(self) -> str:
        """Body decoded with the declared charset, falling back to UTF-8 with replacement."""
        charset = _charset(self.headers.get("content-type", ""))
        try:
            return self.body.decode(charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return ""


def _cert_not_after(response: httpx.Response) -> float | None:
    """Expiry (UTC epoch) of the peer certificate, read from the live TLS stream."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    from cryptography import x509  # imported lazily: only TLS-expiry checks need it

    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


async def fetch(
    site_id: str,
    request: str | PreparedRequest,
    *,
    deadline: float,
    method: str = "GET",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    max_body: int = 1 << 20,
    follow_redirects: bool = False,
    verify_tls: bool = True,
    ca_file: str = "",
    want_cert: bool = False,
) -> FetchResult:
    """Perform one request on the site's pool and read at most `max_body` bytes of the body.

    Args:
        site_id: Site the device belongs to; selects the pool.
        request: Absolute URL, or a request from `prepare()` (then `method`, `params` and `headers`
            are ignored: they are part of it).
        deadline: `loop.time()` by which everything, including waiting for a slot, must be done.
        method: HTTP method.
        params: Query parameters added to the URL.
        headers: Extra request headers.
        max_body: Read at most this many bytes of the body; the reply is then marked truncated.
        follow_redirects: Follow 3xx replies.
        verify_tls: Verify the server certificate and host name.
        ca_file: CA bundle used instead of the system/certifi roots.
        want_cert: Capture the server certificate's expiry into `cert_not_after`.

    Returns:
        The reply, possibly truncated.

    Raises:
        FetchError: The device did not give a complete HTTP reply in time (refused, reset, TLS, timeout).
    """
    loop = asyncio.get_running_loop()
    budget = max(deadline - loop.time(), 0.0)
    if not isinstance(request, PreparedRequest):
        request = prepare(request, method=method, headers=headers, params=params)
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
    entry = pool.get((site_id, bool(verify_tls), ca_file or ""))
    entry.in_flight += 1
    exchange = Exchange()
    token = EXCHANGE.set(exchange)
    try:
        async with asyncio.timeout_at(deadline):
            try:
                await entry.slots.acquire()
            except TimeoutError:
                raise FetchError(
                    f"collector busy: no free HTTP slot for site {site_id} within {budget:.1f} s",
                    timeout=True,
                ) from None
            try:
                started = loop.time()
                if follow_redirects:
                    response = await _send_following(entry.redirect_client(), request, max(deadline - started, 0.001))
                    url = str(response.url)
                else:
                    response = await send(entry.pool, request, entry.fresh_connection)
                    url = request.full_url
                return await _read(response, url, started, max_body, want_cert)
            finally:
                entry.slots.release()
    except FetchError:
        raise
    except Exception as exc:
        raise describe(exc, request.url, budget, exchange.received, exchange.start) from None
    finally:
        EXCHANGE.reset(token)
        entry.in_flight -= 1
        entry.last_used = time.monotonic()
        if entry.retired and entry.in_flight == 0:
            _retire(entry)


async def _send_following(client: httpx.AsyncClient, request: PreparedRequest, timeout: float) -> httpx.Response:
    built = client.build_request(
        request.method, request.url, params=dict(request.params), headers=dict(request.headers), timeout=timeout
    )
    return await client.send(built, stream=True, follow_redirects=True)


async def _read(response: httpx.Response, url: str, started: float, max_body: int, want_cert: bool) -> FetchResult:
    """Read at most `max_body` bytes of the reply's body, then close it."""
    try:
        cert = _cert_not_after(response) if want_cert else None
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= max_body:
                # leaving the stream early closes this connection instead of draining a huge body
                truncated = size > max_body or _more_pending(response)
                break
        body = b"".join(chunks)[:max_body]
        return FetchResult(
            url=url,
            status=response.status_code,
            reason_phrase=response.reason_phrase,
            headers=response.headers,
            body=body,
            truncated=truncated,
            latency=asyncio.get_running_loop().time() - started,
            cert_not_after=cert,
        )
    finally:
        await response.aclose()


def _more_pending(response: httpx.Response) -> bool:
    """Whether the body goes on past what was read, without reading much of it."""
    length = response.headers.get("content-length")
    if length is not None and length.isdigit():
        return int(length) > response.num_bytes_downloaded
    return not response.is_stream_consumed
