"""Hostile devices: HTTP servers and SNMP agents that close, trickle, lie or flood.

Each behaviour is what some real device does (an Apache whose keep-alive timer fires, a firmware web
page behind a saturated link, a proxy announcing a body it never sends, an SSH daemon on the HTTP
port, an agent answering somebody else's request id). The HTTP server calls `write_reply` with the
reply it would have sent, and `endless_plan`/`endless_page` for OAI-PMH lists; the SNMP agent calls
`mangle_snmp` on the reply it encoded. docs/hostile.md says what the console shows for each.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api
from pysnmp.proto.api import v2c

__all__ = [
    "HTTP_BEHAVIOURS",
    "SNMP_BEHAVIOURS",
    "Hostile",
    "endless_page",
    "endless_plan",
    "is_reply_behaviour",
    "mangle_snmp",
    "write_reply",
]

Hostile = tuple[str, dict[str, Any]]
"""A behaviour name and its parameters, as a fault puts it on an endpoint's conditions."""

# behaviours of the reply itself; keepalive_close and endless_tokens act around it (see _http)
_REPLY_BEHAVIOURS = ("trickle", "endless_body", "lying_length", "not_http", "huge_headers")
HTTP_BEHAVIOURS = (*_REPLY_BEHAVIOURS, "keepalive_close", "endless_tokens")
SNMP_BEHAVIOURS = ("wrong_request_id", "oversized_value")

NOT_HTTP = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n\x00\x00\x04\x1c\n\x14\xb3\x9e\xf1\x07Protocol mismatch.\n"
_CHUNK = b"Bibliotheque nationale d'Algerie - journal de numerisation\n" * 1024
_TOKEN_RE = re.compile(rb"<resumptionToken[^>]*?(?:/>|>[^<]*</resumptionToken>)")
_LIST_END_RE = re.compile(rb"</(ListIdentifiers|ListRecords)>")
_TOKEN_PREFIX = "endless-"


def is_reply_behaviour(hostile: Hostile | None) -> bool:
    """Whether the behaviour replaces how the reply is written (then the connection closes after it)."""
    return hostile is not None and hostile[0] in _REPLY_BEHAVIOURS


async def write_reply(hostile: Hostile, writer: asyncio.StreamWriter, reply: bytes) -> None:
    """Write `reply` (head and body, as encoded) the hostile way; the caller closes the connection after.

    Raises:
        ConnectionError: the client went away (what ends an endless body or a trickle).
    """
    kind, params = hostile
    if kind == "trickle":
        pause = 1.0 / max(float(params.get("rate", 1.0)), 0.001)
        for i in range(len(reply)):
            writer.write(reply[i : i + 1])
            await writer.drain()
            await asyncio.sleep(pause)
    elif kind == "endless_body":
        head = reply.split(b"\r\n\r\n", 1)[0]
        head = re.sub(rb"\r\nContent-Length: \d+", b"\r\nTransfer-Encoding: chunked", head)
        writer.write(head + b"\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK)
        while True:  # until the client hangs up: drain() then raises
            writer.write(chunk)
            await writer.drain()
    elif kind == "lying_length":
        extra = int(params.get("extra", 4096))
        head, _, body = reply.partition(b"\r\n\r\n")
        head = re.sub(rb"\r\nContent-Length: \d+", b"\r\nContent-Length: %d" % (len(body) + extra), head)
        writer.write(head + b"\r\n\r\n" + body)
        await writer.drain()
    elif kind == "not_http":
        writer.write(NOT_HTTP)
        await writer.drain()
    elif kind == "huge_headers":
        head, _, body = reply.partition(b"\r\n\r\n")
        writer.write(head + _filler(int(params.get("count", 20_000))) + b"\r\n\r\n" + body)
        await writer.drain()


@functools.lru_cache(maxsize=4)
def _filler(count: int) -> bytes:
    """`count` header lines, built once per count: the simulator serves many sites on one core."""
    return b"".join(b"\r\nX-Koha-Trace-%d: 0123456789abcdef" % i for i in range(count))


def _token(number: int, query: dict[str, str]) -> str:
    packed = base64.urlsafe_b64encode(json.dumps(query, separators=(",", ":")).encode()).decode()
    return f"{_TOKEN_PREFIX}{number}.{packed}"


def _untoken(token: str) -> tuple[int, dict[str, str]] | None:
    if not token.startswith(_TOKEN_PREFIX):
        return None
    try:
        number, packed = token[len(_TOKEN_PREFIX) :].split(".", 1)
        query = json.loads(base64.urlsafe_b64decode(packed.encode()))
        return int(number), {str(k): str(v) for k, v in query.items()}
    except (ValueError, TypeError, AttributeError):
        return None


def endless_plan(query: dict[str, str]) -> tuple[int, dict[str, str]] | None:
    """For an OAI-PMH list request: which endless page it asks for, and the first page's query.

    Every page of an endless list is the first page again with a new resumptionToken; None for
    requests this behaviour does not touch (other verbs, tokens it did not hand out).
    """
    if query.get("verb") not in ("ListIdentifiers", "ListRecords"):
        return None
    if "resumptionToken" not in query:
        return 1, dict(query)
    decoded = _untoken(query["resumptionToken"])
    return None if decoded is None else (decoded[0] + 1, decoded[1])


def endless_page(xml: bytes, number: int, first: dict[str, str]) -> bytes | None:
    """The first page's XML offering page `number + 1`; None if it is no list (an OAI error)."""
    if not _LIST_END_RE.search(xml):
        return None
    tag = b"<resumptionToken>%s</resumptionToken>" % _token(number, first).encode()
    if _TOKEN_RE.search(xml):
        return _TOKEN_RE.sub(lambda _m: tag, xml, count=1)
    return _LIST_END_RE.sub(lambda m: tag + m.group(0), xml, count=1)


def mangle_snmp(hostile: Hostile, reply: bytes) -> bytes:
    """The agent's encoded v1/v2c reply, made hostile: another request id, or a value far too big."""
    kind, params = hostile
    try:
        version = int(api.decodeMessageVersion(reply))
        pmod = api.PROTOCOL_MODULES[version]
        message, _ = decoder.decode(reply, asn1Spec=pmod.Message())
    except (PyAsn1Error, ValueError, TypeError, KeyError):
        return reply
    pdu = pmod.apiMessage.get_pdu(message)
    if kind == "wrong_request_id":
        request_id = int(pmod.apiPDU.get_request_id(pdu))
        pmod.apiPDU.set_request_id(pdu, (request_id + 7919) % 2**31)
    elif kind == "oversized_value":
        size = min(int(params.get("size", 60_000)), 65_000)
        varbinds = list(pmod.apiPDU.get_varbinds(pdu))
        if varbinds:
            varbinds[0] = (varbinds[0][0], v2c.OctetString(b"A" * size))
            pmod.apiPDU.set_varbinds(pdu, varbinds)
    return bytes(encoder.encode(message))
