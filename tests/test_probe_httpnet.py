"""The asyncio network backend under httpcore, against real loopback sockets.

The probes never pass per-operation timeouts (their deadline covers the whole request), but the backend
honours them as httpcore's contract says; and it must not buffer without bound, must keep the socket
error behind a failure, and must tell an idle connection that the server closed from one still usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpcore
import pytest
import trustme

from bibnet_ops.probes._httperrors import describe
from bibnet_ops.probes._httpnet import HIGH_WATER, AsyncioBackend

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(handler: Handler, context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def test_read_timeout_and_read_of_what_arrived() -> None:
    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await asyncio.sleep(30)

    async with serving(hello) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        assert await stream.read(3, timeout=2) == b"hel"
        assert await stream.read(100, timeout=2) == b"lo"
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(100, timeout=0.1)
        await stream.aclose()


async def test_server_close_seen_while_idle_and_read_as_end() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with serving(close_at_once) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        for _ in range(100):
            if stream.get_extra_info("is_readable"):
                break
            await asyncio.sleep(0.01)
        assert stream.get_extra_info("is_readable") is True
        assert await stream.read(100) == b""
    async with serving(silent) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        await asyncio.sleep(0.05)
        assert stream.get_extra_info("is_readable") is False
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        assert stream.get_extra_info("ssl_object") is None
        await stream.aclose()


async def test_reading_pauses_when_the_reader_lags() -> None:
    total = 8 * HIGH_WATER

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"z" * total)
        await writer.drain()
        await asyncio.sleep(30)

    async with serving(flood) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        await asyncio.sleep(0.3)  # the server has written all it could; the client did not read
        protocol = stream._protocol  # type: ignore[attr-defined]
        assert protocol.reading_paused
        assert len(protocol.buffer) < 2 * HIGH_WATER
        received = 0
        while received < total:
            received += len(await stream.read(65536, timeout=2))
        assert received == total
        await stream.aclose()


async def test_write_waits_for_a_peer_that_does_not_read() -> None:
    async with serving(silent) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        with pytest.raises(httpcore.WriteTimeout):
            for _ in range(200):
                await stream.write(b"x" * (1 << 20), timeout=0.2)
        await stream.aclose()


async def test_refused_connection_keeps_its_cause() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpcore.ConnectError) as info:
        await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
    assert describe(info.value, f"http://127.0.0.1:{port}/", 3).reason == f"connection refused on 127.0.0.1:{port}"


async def test_reset_mid_reply_keeps_its_cause() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    async with serving(reset) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        await stream.write(b"G")
        with pytest.raises(httpcore.ReadError) as info:
            await stream.read(100, timeout=2)
        assert isinstance(info.value.__context__, ConnectionResetError)
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"ET / HTTP/1.1\r\n")
        reason = describe(info.value, f"http://127.0.0.1:{port}/", 3).reason
        assert reason == f"connection reset by 127.0.0.1:{port} during the reply"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_handshake_verified_and_refused(ca: trustme.CA) -> None:
    cert = ca.issue_cert("127.0.0.1", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=5))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await asyncio.sleep(30)

    async with serving(echo, server_context) as port:
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        plain = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        stream = await plain.start_tls(trusting, server_hostname="127.0.0.1", timeout=2)
        assert stream.get_extra_info("ssl_object").getpeercert()["subjectAltName"] == (("IP Address", "127.0.0.1"),)
        await stream.write(b"ping")
        assert await stream.read(100, timeout=2) == b"ping"
        await stream.aclose()

        plain = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        with pytest.raises(httpcore.ConnectError) as info:
            await plain.start_tls(ssl.create_default_context(), server_hostname="127.0.0.1", timeout=2)
        reason = describe(info.value, f"https://127.0.0.1:{port}/", 3).reason
        assert reason.startswith(f"TLS certificate rejected by 127.0.0.1:{port}: ")

    async with serving(silent) as port:
        plain = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        with pytest.raises(httpcore.ConnectTimeout):
            await plain.start_tls(ssl.create_default_context(), server_hostname="127.0.0.1", timeout=0.2)


async def test_a_connect_cut_by_its_deadline_leaves_no_socket_behind() -> None:
    """Deadlines falling at every point of a connect: each socket is closed, none left to the garbage collector."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    backend = AsyncioBackend()
    opened: list[socket.socket] = []
    real_socket = socket.socket

    class Tracked(real_socket):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            opened.append(self)

    try:
        socket.socket = Tracked  # type: ignore[misc]
        # an address, and a name with one address (where this machine's localhost has only 127.0.0.1)
        names = {info[4][0] for info in socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)}
        name = "localhost" if names == {"127.0.0.1"} else "127.0.0.1"
        for i in range(400):
            host = "127.0.0.1" if i % 2 else name
            with contextlib.suppress(httpcore.ConnectTimeout, httpcore.ConnectError):
                stream = await backend.connect_tcp(host, port, timeout=0.00002 * (i % 50))
                await stream.aclose()
            with contextlib.suppress(BlockingIOError):
                while True:
                    listener.accept()[0].close()
        await asyncio.sleep(0.05)
    finally:
        socket.socket = real_socket  # type: ignore[misc]
        listener.close()
    assert len(opened) > 50
    assert [s for s in opened if s.fileno() != -1] == []
