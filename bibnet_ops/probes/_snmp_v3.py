"""SNMPv3 on pysnmp's full SnmpEngine (USM security, engine discovery), created by the first v3 check only.

The engine configures each agent it talks to into its local configuration datastore (~22 KiB and ~2 ms
each), so it is kept for v3 agents: v2c ones go through `_snmp_v2c`. Its socket shares the session's
`Wire`, so odd datagrams and late replies explain v3 timeouts as they do v2c ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.smi.rfc1902 import ObjectIdentity as _ObjectIdentity

from bibnet_ops.probes._snmp_values import Credentials, SnmpError, Target
from bibnet_ops.probes._snmp_wire import JUNK, DrainingDispatcher, Wire, agent_key

__all__ = ["V3Engine"]

# one transport target per agent, not per agent and timeout: every request is cut off at its check's own
# deadline, so pysnmp's timer only has to outlast it
_TRANSPORT_TIMEOUT = 120.0
_MAX_CACHED_OBJECTS = 50_000

_Result = tuple[Any, Any, Any, Any]


class _GuardedDispatcher(DrainingDispatcher):
    """The engine's dispatcher, noting datagrams pysnmp cannot decode instead of letting them escape.

    pysnmp silently drops a datagram that is not BER at all (it only bumps snmpInASNParseErrs) and lets
    other decoding errors escape into the event loop's exception handler; both are noted per sender.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wire: Wire) -> None:
        super().__init__(loop, wire)
        self.parse_errors: Any = None

    def _receive(self, transport: Any, address: Any, message: Any) -> None:
        errors = self.parse_errors
        before = int(errors.syntax) if errors is not None else 0
        try:
            super()._receive(transport, address, message)
        except Exception:  # a device's garbage must never reach the loop's error log
            self.wire.note(agent_key(address), JUNK)
            return
        if errors is not None and int(errors.syntax) != before:
            self.wire.note(agent_key(address), JUNK)
        elif self.wire.expired:
            self.wire.note_late(agent_key(address))


class V3Engine:
    """pysnmp's SnmpEngine on one loop, with its transport targets, users and resolved OIDs cached."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wire: Wire) -> None:
        self.engine = SnmpEngine()
        self.dispatcher = _GuardedDispatcher(loop, wire)
        self.engine.register_transport_dispatcher(self.dispatcher)
        builder = self.engine.message_dispatcher.mib_instrum_controller.get_mib_builder()
        (self.dispatcher.parse_errors,) = builder.import_symbols("__SNMPv2-MIB", "snmpInASNParseErrs")
        self.targets: dict[tuple[str, int], UdpTransportTarget] = {}
        self.opening: dict[tuple[str, int], asyncio.Task[UdpTransportTarget]] = {}
        self.auth: dict[Credentials, CommunityData | UsmUserData] = {}
        # pysnmp resolves every ObjectType against its MIB tree once (~0.7 ms); a resolved one is reused
        self.objects: dict[str, ObjectType] = {}
        self.context = ContextData()

    def close(self) -> None:
        """Close the engine's socket, also when its loop is already closed."""
        dispatcher = self.engine.transport_dispatcher
        if dispatcher is None:
            return
        transports = [getattr(t, "transport", None) for t in dispatcher_transports(dispatcher)]
        try:
            self.engine.close_dispatcher()
        except RuntimeError:
            release_sockets(transports)

    async def target(self, target: Target) -> UdpTransportTarget:
        """The agent's cached transport target; checks opening it together wait for one creation."""
        key = (target.host, target.port)
        cached = self.targets.get(key)
        if cached is not None:
            return cached
        opening = self.opening.get(key)
        if opening is None:
            opening = self.opening[key] = asyncio.get_running_loop().create_task(self._create(target))
            opening.add_done_callback(self._forget_opening(key))
        return await asyncio.shield(opening)

    async def _create(self, target: Target) -> UdpTransportTarget:
        try:
            created = await UdpTransportTarget.create((target.host, target.port), timeout=_TRANSPORT_TIMEOUT, retries=0)
        except Exception as exc:  # pysnmp wraps resolver errors in PySnmpError
            raise SnmpError(f"cannot resolve SNMP address {target.label}: {exc}") from None
        self.targets[(target.host, target.port)] = created
        return created

    def _forget_opening(self, key: tuple[str, int]) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            self.opening.pop(key, None)
            if not task.cancelled():
                task.exception()  # read here too, so a creation whose callers all gave up logs nothing
        return done

    def _auth(self, creds: Credentials) -> CommunityData | UsmUserData:
        cached = self.auth.get(creds)
        if cached is None:
            cached = self.auth[creds] = creds.build()
        return cached

    def _object(self, oid: str) -> ObjectType:
        cached = self.objects.get(oid)
        if cached is None:
            if len(self.objects) >= _MAX_CACHED_OBJECTS:
                self.objects.clear()
            cached = self.objects[oid] = ObjectType(ObjectIdentity(oid))
        return cached

    def get(self, creds: Credentials, transport: UdpTransportTarget, oids: list[str]) -> Awaitable[_Result]:
        """A GET of `oids`: pysnmp's (error indication, error status, error index, varbinds)."""
        objects = [self._object(oid) for oid in oids]
        return get_cmd(self.engine, self._auth(creds), transport, self.context, *objects, lookupMib=False)

    def bulk(
        self, creds: Credentials, transport: UdpTransportTarget, oids: list[Any], repetitions: int
    ) -> Awaitable[_Result]:
        """A GETBULK from each of `oids` (numeric OID strings, or the last names a previous reply gave)."""
        starts = [self._object(oid) if isinstance(oid, str) else ObjectType(_ObjectIdentity(oid)) for oid in oids]
        return bulk_cmd(
            self.engine, self._auth(creds), transport, self.context, 0, repetitions, *starts, lookupMib=False
        )


def dispatcher_transports(dispatcher: Any) -> list[Any]:
    """The transports a pysnmp dispatcher holds (its registry is name-mangled private state)."""
    registry = getattr(dispatcher, "_AbstractTransportDispatcher__transports", None)
    return list(registry.values()) if isinstance(registry, dict) else []


def release_sockets(transports: list[Any]) -> None:
    """Close the sockets of transports whose loop is closed (asyncio can no longer close them)."""
    for tr in transports:
        sock = getattr(tr, "_sock", None)
        if sock is not None:
            sock.close()
            tr._sock = None
