"""Failures of an HTTP request, worded for a library technician.

`describe()` turns what httpx, httpcore (httpx's transport layer, which the probes' plain requests use
directly), the operating system or the TLS library raised into a `FetchError` naming the endpoint:
"connection refused on 10.31.0.5:8080", "TLS certificate rejected by ...: certificate has expired".
"""

from __future__ import annotations

import errno
import re
import ssl
from urllib.parse import urlsplit

import httpcore
import httpx

from bibnet_ops.probes._reasons import plural

__all__ = ["FetchError", "describe"]

_TIMEOUTS = (httpx.TimeoutException, httpcore.TimeoutException, TimeoutError)
_BAD_CONFIG = (
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
    httpx.LocalProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.LocalProtocolError,
)
_REMOTE_PROTOCOL = (httpx.RemoteProtocolError, httpcore.RemoteProtocolError)
_CONNECT = (httpx.ConnectError, httpcore.ConnectError)
_SHORT_BODY = re.compile(r"received (\d+) bytes, expected (\d+)")
_BROKEN = (httpx.ReadError, httpx.WriteError, httpcore.ReadError, httpcore.WriteError)


class FetchError(Exception):
    """A request failed before a complete HTTP reply was read; `str()` is the technician's reason.

    `timeout` is True when the deadline (not the device) ended the attempt; `config` is True when the
    check itself is wrong (a bad URL), which the probes report as UNKNOWN rather than CRITICAL.
    """

    def __init__(self, reason: str, *, timeout: bool = False, config: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timeout = timeout
        self.config = config


def _hostport(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{host}:{port}"


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _printable(data: bytes) -> str:
    """The first line of what a device sent, as text a technician can read (bytes as dots)."""
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    return "".join(chr(b) if 32 <= b < 127 else "." for b in line[:48])


def describe(exc: Exception, url: str, timeout: float, received: int = 0, start: bytes = b"") -> FetchError:
    """Translate an httpx/httpcore/OS/TLS failure into a short reason naming the endpoint.

    `received` is how many bytes of a reply had arrived and `start` the first of them, when the
    caller knows (they tell a device that trickles, or one that does not speak HTTP at all).
    """
    where = _hostport(url)
    if start and not b"HTTP/".startswith(start[:5]) and isinstance(exc, _REMOTE_PROTOCOL + _TIMEOUTS):
        return FetchError(f"{where} does not speak HTTP: it answered {_printable(start)!r}")
    if isinstance(exc, _TIMEOUTS):
        if received:
            amount = plural(received, "byte") if received < 10_000 else f"{received / 1024:.0f} KiB"
            return FetchError(
                f"reply from {where} incomplete after {timeout:.1f} s: only {amount} arrived"
                " (the device sends too slowly)",
                timeout=True,
            )
        return FetchError(f"no answer within {timeout:.1f} s from {where}", timeout=True)
    if isinstance(exc, _BAD_CONFIG):
        return FetchError(f"bad URL {url!r}: {exc}", config=True)
    chain = _cause_chain(exc)
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or "verification failed"
            return FetchError(f"TLS certificate rejected by {where}: {detail}")
        if isinstance(cause, ssl.SSLError):
            return FetchError(f"TLS handshake with {where} failed: {cause.reason or cause}")
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return FetchError(f"connection refused on {where}")
        if isinstance(cause, ConnectionResetError):
            return FetchError(f"connection reset by {where} during the reply")
        if isinstance(cause, OSError) and "Name or service not known" in str(cause):
            return FetchError(f"cannot resolve host name in {where}")
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return FetchError(f"no route to {where}")
    if isinstance(exc, _REMOTE_PROTOCOL):
        text = str(exc)
        short = _SHORT_BODY.search(text)
        if short:
            got, announced = short.groups()
            return FetchError(
                f"{where} closed the connection mid-reply: {got} of the {announced} body bytes it announced"
            )
        if "Receive buffer too long" in text:
            return FetchError(f"reply header from {where} too large (over 100 KiB), refused")
        if "without sending complete" in text or "peer closed" in text.lower():
            return FetchError(f"{where} closed the connection mid-reply")
        if "disconnected without sending" in text:
            if received:
                got = plural(received, "byte")
                return FetchError(f"{where} closed the connection mid-reply, after {got} of its header")
            return FetchError(f"{where} closed the connection without replying")
        # h11 appends the offending bytes as a bytearray repr, which tells a technician nothing
        return FetchError(f"malformed HTTP reply from {where}: {text.split(': bytearray', 1)[0][:80]}")
    if isinstance(exc, _CONNECT):
        return FetchError(f"cannot connect to {where}: {str(exc)[:80] or type(exc).__name__}")
    if isinstance(exc, _BROKEN):
        return FetchError(f"connection to {where} broke during the reply")
    if isinstance(exc, httpx.DecodingError):
        return FetchError(f"undecodable reply from {where}: {str(exc)[:80]}")
    return FetchError(f"request to {where} failed: {type(exc).__name__}: {str(exc)[:80]}")
