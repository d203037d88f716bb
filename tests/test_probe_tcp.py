"""The tcp probe against real loopback sockets: open, refused, silent (full backlog), bad addresses."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from bibnet_ops.model import CheckSpec, CheckStatus, Thresholds
from bibnet_ops.probes import run_probe
from bibnet_ops.probes._common import ParamError
from bibnet_ops.probes.tcp import parse_hostport, probe


def check(address: str, timeout: float = 2.0, thresholds: Thresholds | None = None, **params: Any) -> CheckSpec:
    return CheckSpec(
        site_id="annexe-16-3",
        device_id="router",
        name="ssh",
        probe="tcp",
        address=address,
        params=params,
        timeout=timeout,
        thresholds=thresholds or Thresholds(),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_open_port_gives_connect_time() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sample = await probe(check(f"127.0.0.1:{port}"))
        assert sample.status is CheckStatus.OK, sample.reason
        assert sample.value is not None and 0 <= sample.value < 1
        assert sample.reason.startswith(f"127.0.0.1:{port} connected in")
        slow = await probe(check(f"127.0.0.1:{port}", thresholds=Thresholds(warning=-1)))
        assert slow.status is CheckStatus.WARNING
        via_param = await run_probe(check("tcp://127.0.0.1", port=port))
        assert via_param.status is CheckStatus.OK
    finally:
        server.close()
        await server.wait_closed()


async def test_refused_port_is_critical() -> None:
    port = free_port()
    sample = await probe(check(f"127.0.0.1:{port}"))
    assert (sample.status, sample.reason) == (CheckStatus.CRITICAL, f"connection refused on 127.0.0.1:{port}")


async def test_silent_port_returns_within_timeout() -> None:
    # a listener with a full backlog drops SYNs, so connect() hangs like a firewalled device
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        started = time.monotonic()
        sample = await probe(check(f"127.0.0.1:{port}", timeout=0.4))
        assert time.monotonic() - started < 0.4 + 0.3
        assert sample.status is CheckStatus.CRITICAL
        assert sample.reason == f"no answer within 0.4 s from 127.0.0.1:{port}"
    finally:
        filler.close()
        listener.close()


async def test_bad_address_is_unknown() -> None:
    sample = await probe(check("127.0.0.1"))
    assert sample.status is CheckStatus.UNKNOWN and "has no port" in sample.reason


def test_parse_hostport() -> None:
    assert parse_hostport("10.0.0.1:22") == ("10.0.0.1", 22)
    assert parse_hostport("[::1]:8080") == ("::1", 8080)
    assert parse_hostport("http://h:80/x") == ("h", 80)
    assert parse_hostport("h", 443) == ("h", 443)
    with pytest.raises(ParamError):
        parse_hostport("h:99999")
