"""Parsing a listen address (`[collector] metrics`, `--metrics`): `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (loopback)."""

from __future__ import annotations

import ipaddress

__all__ = ["MetricsAddressError", "parse_address"]


class MetricsAddressError(ValueError):
    """A listen address that cannot be used; the message says what is expected."""


def parse_address(text: str) -> tuple[str, int]:
    """`"127.0.0.1:9877"` -> `("127.0.0.1", 9877)`; `"[::1]:9877"` -> `("::1", 9877)`; `":9877"` -> loopback.

    Raises:
        MetricsAddressError: not HOST:PORT, or a port outside 0-65535 (0 picks a free port).
    """
    value = text.strip()
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise MetricsAddressError(f"{text!r} is not [IPV6]:PORT (e.g. [::1]:9877)")
    else:
        host, sep, port = value.rpartition(":")
        if not sep:
            raise MetricsAddressError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9877)")
        if ":" in host:
            raise MetricsAddressError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:9877")
    host = host or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise MetricsAddressError(f"{text!r}: the port must be a number, not {port!r}") from None
    if not 0 <= number <= 65535:
        raise MetricsAddressError(f"{text!r}: the port must be between 0 and 65535")
    if not host.replace("-", "").replace(".", "").isalnum():
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise MetricsAddressError(f"{text!r}: {host!r} is neither an IP address nor a host name") from None
    return host, number
