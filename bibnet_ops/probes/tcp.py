"""The `tcp` probe: can a TCP connection be opened, and how long does it take.

The device address is `host:port` (`[v6addr]:port` for IPv6); the param `port` overrides the port.
The metric is the connect time in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket

from bibnet_ops.model import CheckSpec, CheckStatus, Sample
from bibnet_ops.probes._common import ParamError, judge_metric, make_sample, param_int

__all__ = ["parse_hostport", "probe"]


def parse_hostport(address: str, port_param: object = None) -> tuple[str, int]:
    """Split `host:port` / `[v6]:port` (an optional URL scheme is ignored).

    Raises:
        ParamError: No usable host or port.
    """
    text = address.split("://", 1)[-1].split("/", 1)[0]
    port_text = ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
    if port_param is not None:
        port = param_int({"port": port_param}, "port", 0, minimum=1)
    elif port_text.isdigit():
        port = int(port_text)
    else:
        raise ParamError(f"address {address!r} has no port (expected host:port)")
    if not host or not 0 < port < 65536:
        raise ParamError(f"address {address!r} is not a valid host:port")
    return host, port


async def probe(check: CheckSpec) -> Sample:
    """Open (and immediately close) a TCP connection to the device.

    Args:
        check: The resolved check; `check.timeout` bounds the connect.

    Returns:
        OK/WARNING/CRITICAL by connect time, CRITICAL when refused, unreachable or silent.
    """
    try:
        host, port = parse_hostport(check.address, check.params.get("port"))
    except ParamError as exc:
        return make_sample(check, CheckStatus.UNKNOWN, f"bad check configuration: {exc}")
    where = f"{host}:{port}"
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(check.timeout):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        reason = f"no answer within {check.timeout:.1f} s from {where}"
        evidence = f"TCP connect {where}: no SYN-ACK within {check.timeout:.1f} s (filtered or host down)"
        return make_sample(check, CheckStatus.CRITICAL, reason, latency=loop.time() - started, evidence=evidence)
    except OSError as exc:
        if exc.errno:
            evidence = f"TCP connect {where}: {errno.errorcode.get(exc.errno, '')} {os.strerror(exc.errno)}"
        else:
            evidence = f"TCP connect {where}: {type(exc).__name__} {exc}"
        return make_sample(
            check, CheckStatus.CRITICAL, _describe(exc, where), latency=loop.time() - started, evidence=evidence
        )
    elapsed = loop.time() - started
    peer = writer.get_extra_info("peername")
    local = writer.get_extra_info("sockname")
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    status, reason = judge_metric(check.thresholds, elapsed, "connected in", "s")
    evidence = f"TCP connect {where}: connected in {elapsed * 1000:.1f} ms"
    if peer and local:
        evidence += f" ({local[0]}:{local[1]} -> {peer[0]}:{peer[1]})"
    return make_sample(check, status, f"{where} {reason}", value=elapsed, latency=elapsed, evidence=evidence)


def _describe(exc: OSError, where: str) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused on {where}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name in {where}"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"no route to {where}"
    return f"cannot connect to {where}: {exc.strerror or exc}"
