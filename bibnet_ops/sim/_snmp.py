"""Lean SNMP agents for simulated scanners and switches.

v1/v2c agents are one asyncio DatagramProtocol per device that decodes GET/GETNEXT/GETBULK with
pysnmp's protocol API and answers from a MibView, which scales to thousands of agents on one loop.
v3 agents (a handful) use one pysnmp SnmpEngine each for USM, with a MIB controller over the same
MibView; both honour the endpoint's fault state (silent when down, delayed when slow, junk when garbage);
v1/v2c agents also play the hostile SNMP behaviours of `_hostile` (wrong request id, oversized value).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api
from pysnmp.proto.api import v2c

from bibnet_ops.sim._hostile import Hostile, mangle_snmp
from bibnet_ops.sim._mib import MibView, Oid, Value

__all__ = ["SnmpConditions", "V2cAgent", "V3Agent", "answer_v2c", "to_asn1"]

MAX_BULK_VARBINDS = 64


@dataclass
class SnmpConditions:
    """What the agent's site currently suffers: read by the agent for every datagram."""

    down: str | None = None
    delay: float = 0.0
    garbage: bool = False
    hostile: Hostile | None = None  # v1/v2c agents only: a wrong request id, an oversized value


def to_asn1(value: Value) -> Any:
    """A MibView value as the pyasn1 object SNMP carries."""
    syntax, raw = value
    if syntax == "str":
        return v2c.OctetString(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if syntax == "oid":
        return v2c.ObjectIdentifier(raw)
    if syntax == "ticks":
        return v2c.TimeTicks(raw)
    if syntax == "c32":
        return v2c.Counter32(raw)
    if syntax == "g32":
        return v2c.Gauge32(raw)
    return v2c.Integer(raw)


def _next_varbind(view: MibView, oid: Oid) -> tuple[Any, Any]:
    found = view.next(oid)
    if found is None:
        return v2c.ObjectIdentifier(oid), v2c.EndOfMibView()
    return v2c.ObjectIdentifier(found[0]), to_asn1(found[1])


def answer_v2c(view: MibView, community: bytes, data: bytes) -> bytes | None:
    """The encoded response to one v1/v2c request, or None to stay silent (bad community, not SNMP)."""
    try:
        version = int(api.decodeMessageVersion(data))
        if version not in api.PROTOCOL_MODULES:
            return None
        pmod = api.PROTOCOL_MODULES[version]
        request, _ = decoder.decode(data, asn1Spec=pmod.Message())
    except (PyAsn1Error, ValueError, TypeError, KeyError):
        return None
    if bytes(pmod.apiMessage.get_community(request)) != community:
        return None
    req_pdu = pmod.apiMessage.get_pdu(request)
    response = pmod.apiMessage.get_response(request)
    rsp_pdu = pmod.apiMessage.get_pdu(response)
    tag = req_pdu.tagSet
    oids = [tuple(oid) for oid, _ in pmod.apiPDU.get_varbinds(req_pdu)]
    varbinds: list[tuple[Any, Any]] = []
    if tag == pmod.GetRequestPDU.tagSet:
        for i, oid in enumerate(oids):
            value = view.get(oid)
            if value is None:
                if version == api.SNMP_VERSION_1:
                    pmod.apiPDU.set_error_status(rsp_pdu, 2)
                    pmod.apiPDU.set_error_index(rsp_pdu, i + 1)
                    varbinds = [(v2c.ObjectIdentifier(o), v2c.Null("")) for o in oids]
                    break
                varbinds.append((v2c.ObjectIdentifier(oid), v2c.NoSuchInstance()))
            else:
                varbinds.append((v2c.ObjectIdentifier(oid), to_asn1(value)))
    elif tag == pmod.GetNextRequestPDU.tagSet:
        varbinds = [_next_varbind(view, oid) for oid in oids]
        if version == api.SNMP_VERSION_1:
            for i, (_, value) in enumerate(varbinds):
                if isinstance(value, v2c.EndOfMibView):
                    pmod.apiPDU.set_error_status(rsp_pdu, 2)
                    pmod.apiPDU.set_error_index(rsp_pdu, i + 1)
                    varbinds = [(v2c.ObjectIdentifier(o), v2c.Null("")) for o in oids]
                    break
    elif version == api.SNMP_VERSION_2C and tag == v2c.GetBulkRequestPDU.tagSet:
        non_rep = max(0, int(v2c.apiBulkPDU.get_non_repeaters(req_pdu)))
        max_rep = max(0, int(v2c.apiBulkPDU.get_max_repetitions(req_pdu)))
        n = min(non_rep, len(oids))
        varbinds = [_next_varbind(view, oid) for oid in oids[:n]]
        repeaters = oids[n:]
        for _ in range(max_rep):
            if not repeaters or len(varbinds) + len(repeaters) > MAX_BULK_VARBINDS:
                break
            row = [_next_varbind(view, oid) for oid in repeaters]
            varbinds.extend(row)
            if all(isinstance(v, v2c.EndOfMibView) for _, v in row):
                break
            repeaters = [tuple(o) for o, _ in row]
    else:
        # SET and anything else: this agent is read-only.
        pmod.apiPDU.set_error_status(rsp_pdu, 17 if version == api.SNMP_VERSION_2C else 4)
        pmod.apiPDU.set_error_index(rsp_pdu, 1)
        varbinds = [(v2c.ObjectIdentifier(o), v2c.Null("")) for o in oids]
    pmod.apiPDU.set_varbinds(rsp_pdu, varbinds)
    return bytes(encoder.encode(response))


class V2cAgent(asyncio.DatagramProtocol):
    """One device's v1/v2c agent bound to its own UDP port."""

    def __init__(self, view: MibView, community: str, conditions: SnmpConditions) -> None:
        self.view = view
        self.community = community.encode()
        self.conditions = conditions
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        cond = self.conditions
        if cond.down:
            return
        reply = os.urandom(48) if cond.garbage else answer_v2c(self.view, self.community, data)
        if reply is None or self.transport is None:
            return
        if cond.hostile is not None and not cond.garbage:
            reply = mangle_snmp(cond.hostile, reply)
        if cond.delay > 0:
            asyncio.get_running_loop().call_later(cond.delay, self._send, reply, addr)
        else:
            self.transport.sendto(reply, addr)

    def _send(self, reply: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors for a vanished manager are none of the agent's business."""


class V3Agent:
    """One device's SNMPv3 agent: a pysnmp engine for USM and a MIB controller over its MibView."""

    AUTH: ClassVar[dict[str, str]] = {
        "SHA": "USM_AUTH_HMAC96_SHA", "MD5": "USM_AUTH_HMAC96_MD5", "SHA256": "USM_AUTH_HMAC192_SHA256"}
    PRIV: ClassVar[dict[str, str]] = {"AES": "USM_PRIV_CFB128_AES", "DES": "USM_PRIV_CBC56_DES"}

    def __init__(self, view: MibView, conditions: SnmpConditions, users: list[dict[str, str]]) -> None:
        self.view = view
        self.conditions = conditions
        self.users = users
        self.engine: Any = None
        self.port = 0

    async def start(self, port: int) -> int:
        """Listen on 127.0.0.1:`port` (0 picks one) and return the port bound."""
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import cmdrsp, context
        from pysnmp.smi.instrum import AbstractMibInstrumController

        view = self.view
        conditions = self.conditions

        class Instrum(AbstractMibInstrumController):
            def read_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
                out = []
                for oid, _ in var_binds:
                    value = view.get(tuple(oid))
                    out.append((oid, to_asn1(value) if value else v2c.NoSuchInstance()))
                return out

            def read_next_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
                return [_next_varbind(view, tuple(oid)) for oid, _ in var_binds]

        class Transport(udp.UdpAsyncioTransport):
            def datagram_received(self, datagram: bytes, addr: Any) -> None:
                if conditions.down:
                    return
                if conditions.garbage:
                    if self.transport is not None:
                        self.transport.sendto(os.urandom(48), addr)
                    return
                if conditions.delay > 0:
                    asyncio.get_running_loop().call_later(
                        conditions.delay, super().datagram_received, datagram, addr)
                    return
                super().datagram_received(datagram, addr)

        snmp_engine = engine.SnmpEngine()
        transport = Transport().open_server_mode(("127.0.0.1", port))
        await transport._lport
        self.port = transport.transport.get_extra_info("sockname")[1]
        config.add_transport(snmp_engine, udp.DOMAIN_NAME, transport)
        for user in self.users:
            auth = user.get("auth_protocol")
            priv = user.get("priv_protocol")
            kwargs: dict[str, Any] = {}
            if auth and user.get("auth_key"):
                kwargs.update(authProtocol=getattr(config, self.AUTH[auth.upper()]), authKey=user["auth_key"])
            if priv and user.get("priv_key"):
                kwargs.update(privProtocol=getattr(config, self.PRIV[priv.upper()]), privKey=user["priv_key"])
            config.add_v3_user(snmp_engine, user["user"], **kwargs)
        snmp_context = context.SnmpContext(snmp_engine)
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(b"", Instrum())
        for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder,
                          cmdrsp.BulkCommandResponder):
            responder(snmp_engine, snmp_context)
        self.engine = snmp_engine
        return self.port

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close_dispatcher()
            self.engine = None

