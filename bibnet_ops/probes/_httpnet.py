"""An httpcore network backend on plain asyncio transports, for the probes' HTTP connection pools.

httpcore (httpx's transport layer) reads and writes sockets through a pluggable "network backend"; its
default on asyncio goes through anyio, which on this kind of VM costs about a third of a keep-alive GET's
CPU: a cancel scope around every read and write, a dictionary of attribute getters rebuilt on each
`get_extra_info`, and a `poll()` system call each time the pool asks whether an idle connection was
closed by the server. This backend keeps HTTP itself (h11 framing, keep-alive, pooling) in httpcore and
only moves bytes: an `asyncio.Protocol` buffers what arrives, so "was this idle connection closed or
sent something?" is answered from what the event loop already read, without a system call.

Reading stops (`pause_reading`) once `HIGH_WATER` bytes wait unread, so a device streaming an endless
body cannot fill memory while the probe reads only its first `max_body` bytes.

Each request may carry an `Exchange` (set in the `EXCHANGE` context variable by the sender): the
backend notes in it whether a new connection was opened and how many reply bytes were read, which is
what decides whether a failed request may be sent again (RFC 9112 section 9.3.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore

__all__ = ["EXCHANGE", "HIGH_WATER", "AsyncioBackend", "AsyncioStream", "Exchange"]

HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
START_BYTES = 64


@dataclass
class Exchange:
    """What one request attempt did on the wire, recorded by the backend as it happens."""

    connected: bool = False  # a new connection was opened for this attempt
    wrote: bool = False  # the request was (or was about to be) written to a connection
    received: int = 0  # reply bytes read, head and body
    start: bytes = b""  # the first bytes of the reply, to tell a reply that is not HTTP at all
    resent: bool = False  # this is the second attempt, on a connection opened for it

    def start_attempt(self, resent: bool = False) -> None:
        """Forget the previous attempt's traffic before the request goes out again."""
        self.connected = self.wrote = False
        self.received = 0
        self.start = b""
        self.resent = resent

    def note(self, data: bytes) -> None:
        """Count bytes read, keeping the first few."""
        if len(self.start) < START_BYTES:
            self.start += data[: START_BYTES - len(self.start)]
        self.received += len(data)

    @property
    def failed_on_reused_connection(self) -> bool:
        """Whether the request went out on a kept-alive connection and no byte of a reply came back."""
        return self.wrote and not self.connected and self.received == 0


EXCHANGE: ContextVar[Exchange | None] = ContextVar("bibnet_ops_http_exchange", default=None)


class _Protocol(asyncio.Protocol):
    """Buffers received bytes and remembers end of stream and errors for `AsyncioStream`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self.drained is None:
            self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def _wait(future: asyncio.Future[None], timeout: float | None, error: type[Exception], what: str) -> None:
    """Await `future`, turning an expired per-operation timeout into httpcore's exception."""
    if timeout is None:
        await future
        return
    try:
        async with asyncio.timeout(timeout):
            await future
    except TimeoutError:
        raise error(f"{what} timed out after {timeout} s") from None


def _caused(error: Exception, cause: BaseException | None) -> Exception:
    """Attach the socket error as context, which (unlike `__cause__`) survives httpcore's `raise exc from None`."""
    error.__cause__ = error.__context__ = cause
    return error


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection as httpcore sees it."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        proto = self._protocol
        if not proto.buffer and not proto.eof:
            proto.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(proto.waiter, timeout, httpcore.ReadTimeout, "read")
            finally:
                proto.waiter = None
        if proto.buffer:
            data = bytes(proto.buffer[:max_bytes])
            del proto.buffer[:max_bytes]
            if proto.reading_paused and len(proto.buffer) < _LOW_WATER:
                proto.reading_paused = False
                self._transport.resume_reading()
            exchange = EXCHANGE.get()
            if exchange is not None:
                exchange.note(data)
            return data
        if proto.error is not None:
            raise _caused(httpcore.ReadError(str(proto.error) or type(proto.error).__name__), proto.error)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        exchange = EXCHANGE.get()
        if exchange is not None:
            exchange.wrote = True
        proto = self._protocol
        if self._transport.is_closing():
            cause = proto.error
            raise _caused(httpcore.WriteError(str(cause) if cause else "connection closed"), cause)
        self._transport.write(buffer)
        if proto.drained is not None:
            await _wait(proto.drained, timeout, httpcore.WriteTimeout, "write")

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake timed out after {timeout} s") from None
        except OSError as exc:  # ssl.SSLError included
            self._transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # the peer closed the connection during the handshake
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # an idle keep-alive connection that received anything (a close, a stray reply) is unusable
            return bool(self._protocol.buffer) or self._protocol.eof
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[str]:
    """The distinct addresses of a host name, in the resolver's order."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos)) or [host]


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioStream`s; stateless, so one instance serves every pool of every event loop."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        exchange = EXCHANGE.get()
        if exchange is not None:
            exchange.connected = True
        try:
            async with asyncio.timeout(timeout):
                addresses = [host] if _is_ip(host) else await _resolve(loop, host, port)
                # Happy eyeballs (as anyio does) only where a name has several addresses, so that one that hangs
                # does not stall the others: Python 3.11's staggered race drops a socket it connected just as
                # the check's deadline cancels it, leaving the descriptor to the garbage collector.
                transport, protocol = await loop.create_connection(
                    _Protocol,
                    addresses[0] if len(addresses) == 1 else host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    happy_eyeballs_delay=None if len(addresses) == 1 else 0.25,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connect timed out after {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
