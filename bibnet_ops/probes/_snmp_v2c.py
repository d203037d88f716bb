"""SNMPv2c on pysnmp's v1arch dispatcher: no SnmpEngine, no per-agent configuration, replies matched strictly.

pysnmp's full engine (v3arch) configures every agent into its local configuration datastore (~22 KiB and
~2 ms each) and runs each message through its message and security models; for v2c none of that is
needed. Here one `V2cDispatcher` per event loop sends pysnmp-built GET and GETBULK PDUs from one UDP
socket per address family, and a reply is accepted only when its request id is one of ours, it comes
from the agent that request went to and it carries the request's community; anything else is noted on
the session's `Wire` (wrong request id, another community, not a response, another version, unreadable)
so that a check ending without an answer says what did arrive. pysnmp builds and parses every message:
nothing here reads or writes BER itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any, NamedTuple

from pyasn1.codec.ber import decoder, encoder
from pyasn1.type.univ import OctetString
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.hlapi.transport import AbstractTransportTarget
from pysnmp.hlapi.v1arch.asyncio import SnmpDispatcher, Udp6TransportTarget, UdpTransportTarget
from pysnmp.proto import api
from pysnmp.proto.api import verdec
from pysnmp.proto.api.v1 import getNextRequestID
from pysnmp.proto.rfc1902 import ObjectName

from bibnet_ops.probes._snmp_wire import (
    JUNK,
    NOT_RESPONSE,
    VERSION,
    WRONG_COMMUNITY,
    WRONG_ID,
    DrainingDispatcher,
    Wire,
    agent_key,
)

__all__ = ["Reply", "V2cDispatcher", "v2c_target"]

_V2C: Any = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
_RESPONSE_TAGS = _V2C.ResponsePDU.tagSet
_NULL = _V2C.Null("")
_VERSION_NAMES = {0: "SNMPv1", 1: "SNMPv2c", 3: "SNMPv3"}
_MESSAGE_SPEC = _V2C.Message()
# pysnmp's own timer forgets an unanswered request after this long; until then its late reply is recognised
_FORGET_AFTER = 120.0


class Reply(NamedTuple):
    """A response PDU's error status, error index and varbinds (name, value)."""

    status: Any
    index: Any
    var_binds: list[tuple[Any, Any]]


async def v2c_target(host: str, port: int) -> AbstractTransportTarget:
    """pysnmp's v1arch transport target for an agent; an IP literal needs no resolver round trip.

    Raises:
        Exception: pysnmp's PySnmpError when a host name does not resolve.
    """
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return await UdpTransportTarget.create((host, port), timeout=_FORGET_AFTER, retries=0)
    cls = Udp6TransportTarget if literal.version == 6 else UdpTransportTarget
    target = cls.__new__(cls)
    target.transport_address = (str(literal), port)
    target.__init__(timeout=_FORGET_AFTER, retries=0)
    return target


class _Carrier(DrainingDispatcher):
    """The v2c socket's dispatcher; datagrams of acceptable size go to the v1arch dispatcher's callback."""


class V2cDispatcher(SnmpDispatcher):
    """pysnmp's v1arch SNMP dispatcher with replies matched by request id, agent and community."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wire: Wire) -> None:
        self.wire = wire
        self.loop = loop
        self.carrier = _Carrier(loop, wire)
        super().__init__(self.carrier)
        self.carrier.register_transport(udp.DOMAIN_NAME, udp.UdpAsyncioTransport(loop=loop).open_client_mode())
        self._ipv6 = False
        self._communities: dict[str, OctetString] = {}
        self._names: dict[str, ObjectName] = {}
        # one request message per OID list (a template's checks ask the same few), re-encoded per request
        self._messages: dict[tuple[tuple[str, ...], int], Any] = {}

    def close(self) -> None:
        """Close the sockets; requests still waiting are ended by their own deadlines."""
        self._pendingReqs.clear()
        self.transport_dispatcher.unregister_recv_callback()
        self.transport_dispatcher.unregister_timer_callback()
        self.carrier.close_dispatcher()

    def request(
        self, community: str, target: AbstractTransportTarget, oids: list[Any], repetitions: int = 0
    ) -> asyncio.Future[Reply]:
        """Send a GET of `oids` (a GETBULK of `repetitions` rows when > 0) and return the reply's future.

        `oids` are numeric OID strings, or names taken from an earlier reply (a walk's next start).

        The future never fails for the agent's sake: the caller cuts it off at its own deadline.
        """
        if isinstance(target, Udp6TransportTarget) and not self._ipv6:
            self.carrier.register_transport(
                udp6.DOMAIN_NAME, udp6.Udp6AsyncioTransport(loop=self.loop).open_client_mode()
            )
            self._ipv6 = True
        encoded = self._communities.get(community)
        if encoded is None:
            if len(self._communities) > 10_000:
                self._communities.clear()
            encoded = self._communities[community] = OctetString(community)
        message = self._message(oids, repetitions)
        request_id = _next_request_id()
        _set(message, 1, encoded)
        _set(_V2C.apiMessage.get_pdu(message), 0, request_id)
        data = encoder.encode(message)
        future: asyncio.Future[Reply] = self.loop.create_future()
        # the state pysnmp's own timer expects (it forgets the request after the target's timeout), plus
        # what a reply must match besides its request id
        self._pendingReqs[request_id] = {
            "outgoingMsg": data,
            "transportTarget": target,
            "cbFun": _answered,
            "cbCtx": future,
            "timestamp": time.time() + target.timeout,
            "retries": 0,
            "community": bytes(encoded),
            "agent": agent_key(target.transport_address),
        }
        self.transport_dispatcher.send_message(data, target.TRANSPORT_DOMAIN, target.transport_address)
        self.transport_dispatcher.job_started(id(self))
        return future

    def _message(self, oids: list[Any], repetitions: int) -> Any:
        """A request message for these OIDs, built once per OID list and reused with a new id and community."""
        key = (tuple(oids), repetitions) if all(isinstance(oid, str) for oid in oids) else None
        message = self._messages.get(key) if key is not None else None
        if message is not None:
            return message
        if repetitions > 0:
            pdu = _V2C.GetBulkRequestPDU()
            _V2C.apiBulkPDU.set_defaults(pdu)
            _V2C.apiBulkPDU.set_non_repeaters(pdu, 0)
            _V2C.apiBulkPDU.set_max_repetitions(pdu, repetitions)
        else:
            pdu = _V2C.GetRequestPDU()
            _V2C.apiPDU.set_defaults(pdu)
        _V2C.apiPDU.set_varbinds(pdu, [(self._name(oid), _NULL) for oid in oids])
        message = _V2C.Message()
        _V2C.apiMessage.set_defaults(message)
        _V2C.apiMessage.set_pdu(message, pdu)
        if key is not None:
            if len(self._messages) > 1_000:
                self._messages.clear()
            self._messages[key] = message
        return message

    def _name(self, oid: Any) -> ObjectName:
        if not isinstance(oid, str):
            return oid
        name = self._names.get(oid)
        if name is None:
            if len(self._names) > 50_000:
                self._names.clear()
            name = self._names[oid] = ObjectName(oid)
        return name

    def _recv_callback(self, dispatcher: Any, domain: Any, address: Any, whole: bytes) -> None:
        """Match one datagram to its request, or note on the wire why it matches none."""
        key = agent_key(address)
        wire = self.wire
        try:
            message, _ = decoder.decode(whole, asn1Spec=_MESSAGE_SPEC)
            version = int(message[0])
            pdu = _V2C.apiMessage.get_pdu(message)
            request_id = int(_V2C.apiPDU.get_request_id(pdu))
        except Exception:  # not a v2c message: say which version it claims, if any
            wire.note(key, *_unreadable(whole))
            return
        if version != api.SNMP_VERSION_2C:
            wire.note(key, VERSION, _VERSION_NAMES.get(version, f"SNMP version {version}"))
            return
        if pdu.tagSet != _RESPONSE_TAGS:
            wire.note(key, NOT_RESPONSE, type(pdu).__name__)
            return
        state = self._pendingReqs.get(request_id)
        if state is None or state.get("agent") != key:
            wire.note(key, WRONG_ID, str(request_id))
            return
        if bytes(_V2C.apiMessage.get_community(message)) != state.get("community"):
            wire.note(key, WRONG_COMMUNITY)
            return
        del self._pendingReqs[request_id]
        self.transport_dispatcher.job_finished(id(self))
        wire.note_late(key)
        _answered(self, request_id, None, pdu, state["cbCtx"])


def _next_request_id() -> int:
    return int(getNextRequestID())


def _set(sequence: Any, position: int, value: Any) -> None:
    """Set a component of a message or PDU already checked by pysnmp when it was built."""
    sequence.setComponentByPosition(
        position, value, verifyConstraints=False, matchTags=False, matchConstraints=False
    )


def _unreadable(whole: bytes) -> tuple[int, str]:
    """How to note a datagram that is not a readable v2c message: its claimed version, else unreadable."""
    try:
        version = int(verdec.decode_message_version(whole))
    except Exception:
        return JUNK, ""
    if version == api.SNMP_VERSION_2C:
        return JUNK, ""
    return VERSION, _VERSION_NAMES.get(version, f"SNMP version {version}")


def _answered(dispatcher: Any, request_id: Any, indication: Any, pdu: Any, future: asyncio.Future[Reply]) -> None:
    """pysnmp's callback: hand the response PDU to the waiting request (a timed-out one is ignored)."""
    if future.done() or indication is not None or pdu is None:
        return  # pysnmp's own timer, long after the caller's deadline
    try:
        reply = Reply(
            _V2C.apiPDU.get_error_status(pdu),
            _V2C.apiPDU.get_error_index(pdu, muteErrors=True),
            [(name, value) for name, value in _V2C.apiPDU.get_varbinds(pdu)],
        )
    except Exception as exc:  # a response with an unusable varbind list is the agent's fault
        future.set_exception(exc)
        return
    future.set_result(reply)

