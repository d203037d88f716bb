"""Small hostile SNMP agents for tests: real UDP sockets on 127.0.0.1 that answer wrongly on purpose.

Each agent reads the probe's v2c request with pysnmp's own message API and answers it the way one kind
of broken or malicious device does: not at all, with a wrong request id, with another community, with
garbage, with a reply too big to accept, with an error status, in SNMPv1, or with a request instead of
a response. A well-behaved agent (`behaviour="good"`) serves the same few OIDs for comparison.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api
from pysnmp.proto.rfc1902 import OctetString, TimeTicks

V2C: Any = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
V1: Any = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]

BEHAVIOURS = (
    "good",
    "silent",
    "wrong-id",
    "wrong-community",
    "garbage",
    "oversized",
    "too-big",
    "gen-err",
    "no-such-name",
    "v1",
    "echo",
)

OVERSIZED_VALUE = 60_000


class HostileAgent(asyncio.DatagramProtocol):
    """One misbehaving v2c agent; `received` counts the requests it got."""

    def __init__(self, behaviour: str) -> None:
        assert behaviour in BEHAVIOURS, behaviour
        self.behaviour = behaviour
        self.received = 0
        self.transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        assert self.transport is not None
        return f"127.0.0.1:{self.transport.get_extra_info('sockname')[1]}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        reply = self.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def answer(self, data: bytes) -> bytes | None:
        """The datagram this agent sends back for one request (None: no reply)."""
        kind = self.behaviour
        if kind == "silent":
            return None
        if kind == "garbage":
            return b"\x30\x82" + os.urandom(46)
        request, _ = decoder.decode(data, asn1Spec=V2C.Message())
        if kind == "echo":  # the request itself comes back: not a response
            return data
        response = V2C.apiMessage.get_response(request)
        pdu = V2C.apiMessage.get_pdu(response)
        asked = [name for name, _ in V2C.apiPDU.get_varbinds(V2C.apiMessage.get_pdu(request))]
        bindings: list[tuple[Any, Any]] = [(name, self._value(name)) for name in asked]
        V2C.apiPDU.set_varbinds(pdu, bindings)
        if kind == "wrong-id":
            V2C.apiPDU.set_request_id(pdu, int(V2C.apiPDU.get_request_id(pdu)) + 7)
        elif kind == "wrong-community":
            V2C.apiMessage.set_community(response, "not-yours")
        elif kind in ("too-big", "gen-err", "no-such-name"):
            V2C.apiPDU.set_error_status(pdu, {"too-big": 1, "gen-err": 5, "no-such-name": 2}[kind])
            V2C.apiPDU.set_error_index(pdu, 0 if kind == "too-big" else 1)
        elif kind == "v1":
            message = V1.Message()
            V1.apiMessage.set_defaults(message)
            V1.apiMessage.set_community(message, V2C.apiMessage.get_community(request))
            v1_pdu = V1.GetResponsePDU()
            V1.apiPDU.set_defaults(v1_pdu)
            V1.apiPDU.set_request_id(v1_pdu, V2C.apiPDU.get_request_id(pdu))
            V1.apiPDU.set_varbinds(v1_pdu, [(name, TimeTicks(4200)) for name in asked])
            V1.apiMessage.set_pdu(message, v1_pdu)
            return bytes(encoder.encode(message))
        return bytes(encoder.encode(response))

    def _value(self, name: Any) -> Any:
        if self.behaviour == "oversized":
            return OctetString(b"x" * OVERSIZED_VALUE)
        if str(name) == "1.3.6.1.2.1.1.3.0":
            return TimeTicks(4200)
        return OctetString(b"scanner-1")


async def open_agents(behaviours: list[str]) -> list[tuple[asyncio.DatagramTransport, HostileAgent]]:
    """Bind one agent per behaviour on a free loopback port."""
    loop = asyncio.get_running_loop()
    opened = []
    for behaviour in behaviours:
        transport, agent = await loop.create_datagram_endpoint(
            lambda b=behaviour: HostileAgent(b), local_addr=("127.0.0.1", 0)  # type: ignore[misc]
        )
        opened.append((transport, agent))
    return opened
