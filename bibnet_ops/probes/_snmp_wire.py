"""What the SNMP sockets saw from each agent, and the reasons a failed request gives from it.

Both SNMP paths (v2c on pysnmp's v1arch dispatcher, v3 on its full SnmpEngine) receive on one socket per
event loop. Every datagram that answers no request of ours is noted here per agent address (unreadable,
another SNMP version, not a response, a wrong request id, another community, too big for our limit), so
that a check that ends without an answer says what did arrive instead of blaming a down agent or a wrong
community. Requests in flight and replies that came after their request gave up are tracked here too: a
late reply turns the next timeout into "agent or link slow".
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher

from bibnet_ops.probes._snmp_values import Credentials, Target

__all__ = [
    "DRAIN_REPLIES",
    "MAX_REPLY_BYTES",
    "DrainingDispatcher",
    "Wire",
    "agent_key",
    "error_status_reason",
    "timeout_reason",
]

MAX_REPLY_BYTES = 16_384
"""Largest datagram decoded; a bigger one is dropped unread (a sane GET or GETBULK reply is a few KiB)."""

# asyncio reads one datagram per loop iteration: when one arrives, up to this many more waiting replies
# are read at once, or a busy loop would fall behind the replies and let their requests time out
DRAIN_REPLIES = 64
# a reply this long after its request timed out still tells that the agent is alive but slow
_LATE_WINDOW = 120.0
# how long a late reply keeps explaining this agent's timeouts
_LATE_MEMORY = 900.0
# past this many agents noted, the records are dropped (a flood of spoofed senders cannot grow memory)
_MAX_AGENTS = 10_000

# kinds of datagram that answered no request, in the order a reason lists them
OVERSIZED, JUNK, VERSION, NOT_RESPONSE, WRONG_ID, WRONG_COMMUNITY = range(6)
_KINDS = 6

_STATUS_MEANING = {
    "tooBig": "the reply would exceed the agent's message size limit",
    "noSuchName": "SNMPv1-style answer: the agent has no such OID",
    "badValue": "the agent refused a value",
    "readOnly": "the agent says the OID is read-only",
    "genErr": "general error: the agent failed to read the value",
    "noAccess": "the community or user may not read this OID",
    "authorizationError": "the community or user is not allowed this request",
    "resourceUnavailable": "the agent lacks the resources to answer",
}


def agent_key(address: Any) -> tuple[str, int]:
    """An agent's (host, port) from a socket address (IPv6 addresses carry flow info and scope)."""
    try:
        return (str(address[0]), int(address[1]))
    except (TypeError, ValueError, IndexError):
        return ("?", 0)


@dataclass(slots=True)
class _Seen:
    """Odd datagrams from one agent: a count per kind, the largest size and the last detail per kind."""

    counts: list[int] = field(default_factory=lambda: [0] * _KINDS)
    details: list[str] = field(default_factory=lambda: [""] * _KINDS)
    largest: int = 0


class Wire:
    """Per-session record of each agent's odd datagrams, requests in flight and late replies."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, int], _Seen] = {}
        self.in_flight: dict[tuple[str, int], int] = {}
        # agent -> monotonic send time of its latest request that ended unanswered
        self.expired: dict[tuple[str, int], float] = {}
        # agent -> (seconds its late reply took, monotonic time it arrived)
        self.late: dict[tuple[str, int], tuple[float, float]] = {}

    def note(self, key: tuple[str, int], kind: int, detail: str = "", size: int = 0) -> None:
        """Record one datagram from `key` that answered no request, and why."""
        seen = self.seen.get(key)
        if seen is None:
            if len(self.seen) >= _MAX_AGENTS:
                self.seen.clear()
            seen = self.seen[key] = _Seen()
        seen.counts[kind] += 1
        if detail:
            seen.details[kind] = detail[:60]
        seen.largest = max(seen.largest, size)

    def mark(self, key: tuple[str, int]) -> tuple[int, ...]:
        """The agent's counts now, to tell later what arrived during one request."""
        seen = self.seen.get(key)
        return tuple(seen.counts) if seen is not None else ()

    def junk(self, key: tuple[str, int]) -> int:
        """How many unreadable datagrams the agent has sent so far."""
        seen = self.seen.get(key)
        return seen.counts[JUNK] if seen is not None else 0

    def note_late(self, key: tuple[str, int]) -> None:
        """A valid reply arrived from `key`: if its last request had given up, this was its late answer."""
        sent = self.expired.get(key)
        if sent is None or self.in_flight.get(key):
            return
        now = time.monotonic()
        del self.expired[key]
        if now - sent <= _LATE_WINDOW:
            if len(self.late) > _MAX_AGENTS:
                self.late.clear()
            self.late[key] = (now - sent, now)

    def odd_since(self, key: tuple[str, int], mark: tuple[int, ...]) -> str:
        """What odd datagrams the agent sent since `mark`, in words ("" when none)."""
        seen = self.seen.get(key)
        if seen is None:
            return ""
        before = mark or (0,) * _KINDS
        parts: list[str] = []
        for kind in range(_KINDS):
            count = seen.counts[kind] - before[kind]
            if count > 0:
                parts.append(_describe(kind, count, seen.details[kind], seen.largest))
        return "; ".join(parts)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _replies(count: int) -> str:
    return "1 reply" if count == 1 else f"{count} replies"


def _describe(kind: int, count: int, detail: str, largest: int) -> str:
    if kind == OVERSIZED:
        size = "a reply" if count == 1 else f"{count} replies of up to"
        return f"{size} {largest:,} bytes long, over our {MAX_REPLY_BYTES:,}-byte limit"
    if kind == JUNK:
        return f"{count} unreadable {'reply' if count == 1 else 'replies'}"
    if kind == VERSION:
        return f"{_replies(count)} in {detail or 'another SNMP version'}"
    if kind == NOT_RESPONSE:
        what = "1 datagram that was" if count == 1 else f"{count} datagrams that were"
        return f"{what} not a response" + (f" ({detail})" if detail else "")
    if kind == WRONG_ID:
        return f"{_replies(count)} to no request of ours: wrong request id{f' {detail}' if detail else ''}"
    return f"{_replies(count)} with another community than ours"


def timeout_reason(wire: Wire, target: Target, creds: Credentials, mark: tuple[int, ...]) -> str:
    """Why a request to `target` got no usable answer by its deadline: what arrived, or a hint."""
    key = (target.host, target.port)
    odd = wire.odd_since(key, mark)
    if odd:
        return f"no valid SNMP answer from {target.label} within {target.timeout:.1f} s ({odd})"
    late = wire.late.get(key)
    if late is not None and time.monotonic() - late[1] < _LATE_MEMORY:
        return (
            f"no SNMP answer from {target.label} within {target.timeout:.1f} s (it answered after the "
            f"{target.timeout:g} s timeout: {late[0]:.1f} s on an earlier request; agent or link slow?)"
        )
    hint = "agent down or wrong community?" if creds.version != "3" else "agent down or wrong v3 user/keys?"
    return f"no SNMP answer from {target.label} within {target.timeout:.1f} s ({hint})"


def error_status_reason(target: Target, status: Any, index: Any, oids: list[str]) -> str:
    """The reason for a response carrying an error status: its name, the OID it names, what it means."""
    name = status.prettyPrint() if hasattr(status, "prettyPrint") else str(status)
    name = f"error status {name}" if name.lstrip("-").isdigit() else name
    try:
        position = int(index) if index else 0
    except (TypeError, ValueError):
        position = 0
    where = f" for OID {oids[position - 1]}" if 0 < position <= len(oids) else ""
    meaning = _STATUS_MEANING.get(name, "")
    if name == "tooBig":
        asked = _plural(len(oids), "OID")
        meaning = f"its reply to {asked} would exceed the agent's message size limit"
    return f"agent {target.label} answered {name}{where}" + (f" ({meaning})" if meaning else "")


class DrainingDispatcher(AsyncioDispatcher):
    """pysnmp's asyncio dispatcher reading every waiting datagram at once and dropping oversized ones.

    Every reply arrives on the dispatcher's one socket, so each wake-up reads what else is waiting there.
    A datagram over `MAX_REPLY_BYTES` is noted for its sender and never decoded.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wire: Wire) -> None:
        super().__init__(loop=loop)
        self.wire = wire

    def _callback_function(self, transport: Any, address: Any, message: Any) -> None:
        self._admit(transport, address, message)
        # the selector transport's socket (private, but stable since 3.4); without it, one per iteration
        sock = getattr(getattr(transport, "transport", None), "_sock", None)
        if sock is None:
            return
        for _ in range(DRAIN_REPLIES):
            try:
                message, address = sock.recvfrom(65536)
            except OSError:  # BlockingIOError: nothing more is waiting
                return
            self._admit(transport, address, message)

    def _admit(self, transport: Any, address: Any, message: Any) -> None:
        if len(message) > MAX_REPLY_BYTES:
            self.wire.note(agent_key(address), OVERSIZED, size=len(message))
            return
        self._receive(transport, address, message)

    def _receive(self, transport: Any, address: Any, message: Any) -> None:
        """Hand one datagram of acceptable size to pysnmp (subclasses add their own checks)."""
        super()._callback_function(transport, address, message)
