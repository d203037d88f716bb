"""A small HTTP/1.1 server on asyncio streams, with keep-alive, optional TLS and outage behaviour.

Each simulated catalogue (and the simulator's admin endpoint) is one `HttpServer`. Its `conditions`
decide how it behaves: down with mode "refuse" closes the listening socket (connection refused),
"drop" accepts then resets, "blackhole" accepts and never answers; `delay` slows every reply;
`garbage` replaces the body with junk; `hostile` plays one of the behaviours of `_hostile` (trickle,
endless body, lying Content-Length, not HTTP, huge headers, closing kept-alive connections, endless
OAI-PMH resumption tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from bibnet_ops.sim._hostile import Hostile, endless_page, endless_plan, is_reply_behaviour, write_reply

__all__ = ["HttpConditions", "HttpServer", "Request", "Response"]

MAX_HEAD = 65536
MAX_BODY = 1 << 20


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    version: str = "HTTP/1.1"


@dataclass
class Response:
    """What a handler answers; `garbage` is the junk body sent instead when the site is garbling."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HttpConditions:
    """The endpoint's current fault state, recomputed by the simulator when faults change."""

    down: str | None = None
    delay: float = 0.0
    garbage: bool = False
    hostile: Hostile | None = None


Handler = Callable[[Request, bool], Response | Awaitable[Response]]


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return method.upper(), target, version.strip(), headers


class HttpServer:
    """One listening endpoint on 127.0.0.1 whose availability follows its `conditions`."""

    def __init__(self, handler: Handler, conditions: HttpConditions | None = None,
                 ssl_context: Callable[[], ssl.SSLContext | None] | None = None) -> None:
        self.handler = handler
        self.conditions = conditions or HttpConditions()
        self.ssl_context = ssl_context or (lambda: None)
        self.port = 0
        self.requests = 0
        self.dropped = 0  # requests read on a kept-alive connection, then closed unanswered
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pending: asyncio.Task[None] | None = None
        self._dirty = False
        self._relisten = False
        self._closed = False

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1:`port` (0 picks one) and return the port bound."""
        await self._listen(port)
        return self.port

    async def _listen(self, port: int) -> None:
        server = await asyncio.start_server(
            self._client, "127.0.0.1", port, ssl=self.ssl_context(), reuse_address=True,
            backlog=256, limit=MAX_HEAD)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.drop_clients()

    def drop_clients(self) -> None:
        """Reset every open connection, as a crashed server or dead link would."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def reconcile(self, relisten: bool = False) -> None:
        """Bring the listening socket in line with the conditions (call after they change).

        `relisten` reopens the socket even if it is up, e.g. to serve a new TLS certificate.
        """
        self._dirty = True
        self._relisten = self._relisten or relisten
        if self.conditions.down:
            self.drop_clients()
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self._apply())

    async def _apply(self) -> None:
        while self._dirty and not self._closed:
            self._dirty = False
            want = self.conditions.down != "refuse"
            if self._relisten and self._server is not None:
                self._relisten = False
                await self._unlisten()
            if want and self._server is None:
                try:
                    await self._listen(self.port)
                except OSError:
                    # The port is briefly unavailable; retry shortly rather than lose the endpoint.
                    await asyncio.sleep(0.2)
                    self._dirty = True
            elif not want and self._server is not None:
                await self._unlisten()

    async def close(self) -> None:
        """Stop listening and drop all connections for good."""
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
        await self._unlisten()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError,
                ValueError):
            writer.transport.abort()
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        idle_since = time.monotonic()
        while True:
            if self.conditions.down == "drop":
                writer.transport.abort()
                return
            keepalive = self._keepalive()
            try:
                if served and keepalive is not None and not keepalive[1]:
                    # the keep-alive timer fires while the connection waits: close without a word, as Apache does
                    async with asyncio.timeout(keepalive[0]):
                        head = await reader.readuntil(b"\r\n\r\n")
                else:
                    head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, TimeoutError):
                return
            if served and keepalive is not None and time.monotonic() - idle_since >= keepalive[0]:
                self.dropped += 1
                return  # the request crossed the server's close on the wire: it is never answered
            if self.conditions.down:
                if self.conditions.down != "blackhole":
                    writer.transport.abort()
                    return
                # A blackholed site swallows the request and never answers.
                await reader.read()
                return
            method, target, version, headers = _parse_head(head)
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_BODY:
                raise ValueError("body too large")
            body = await reader.readexactly(length) if length else b""
            url = urlsplit(target)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            request = Request(method, url.path or "/", query, headers, body, version)
            if self.conditions.delay > 0:
                await asyncio.sleep(self.conditions.delay)
                if self.conditions.down:
                    writer.transport.abort()
                    return
            hostile = self.conditions.hostile
            response = await self._answer(request, hostile)
            self.requests += 1
            keep = (version == "HTTP/1.1" and headers.get("connection", "").lower() != "close") or (
                headers.get("connection", "").lower() == "keep-alive")
            reply = self._encode(response, method == "HEAD", keep)
            if hostile is not None and is_reply_behaviour(hostile):
                await write_reply(hostile, writer, reply)
                return
            writer.write(reply)
            await writer.drain()
            served += 1
            idle_since = time.monotonic()
            if not keep or (keepalive is not None and keepalive == (0.0, False)):
                return

    def _keepalive(self) -> tuple[float, bool] | None:
        """(idle seconds, race) when the server closes kept-alive connections without saying so."""
        hostile = self.conditions.hostile
        if hostile is None or hostile[0] != "keepalive_close":
            return None
        return float(hostile[1].get("idle", 0.0)), bool(hostile[1].get("race", False))

    async def _answer(self, request: Request, hostile: Hostile | None) -> Response:
        plan = endless_plan(request.query) if hostile is not None and hostile[0] == "endless_tokens" else None
        if plan is not None:
            request = replace(request, query=plan[1])
        result = self.handler(request, self.conditions.garbage)
        response = await result if inspect.isawaitable(result) else result
        if plan is not None:
            page = endless_page(response.body, *plan)
            if page is not None:
                response = replace(response, body=page)
        return response

    @staticmethod
    def _encode(response: Response, head_only: bool, keep: bool) -> bytes:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {response.status} {reason}",
                 f"Content-Type: {response.content_type}",
                 f"Content-Length: {len(response.body)}",
                 "Server: Apache/2.4.62 (Debian)",
                 f"Connection: {'keep-alive' if keep else 'close'}"]
        lines += [f"{k}: {v}" for k, v in response.headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + response.body
