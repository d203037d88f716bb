"""SNMP plumbing for the snmp probe: one pysnmp engine per event loop, cached targets, plain values.

pysnmp binds an engine and its UDP socket to the event loop that created them, so the session is keyed
by the running loop: a new loop (each test, or a restarted collector) gets a fresh engine and the old
one is closed. GETs go through `_snmp_batch`, which coalesces those made to one agent at once; walks are
sent from here. Replies are turned into `SnmpValue`s (a type name and a Python value) and failures into
`SnmpError`s carrying a reason a technician understands (those types live in `_snmp_values`); nothing
here builds a `Sample`.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
)
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import ObjectName
from pysnmp.proto.rfc1905 import EndOfMibView
from pysnmp.smi.rfc1902 import ObjectIdentity as _ObjectIdentity

from bibnet_ops.model import CheckStatus
from bibnet_ops.probes._snmp_values import (
    AUTH_PROTOCOLS,
    PRIV_PROTOCOLS,
    Credentials,
    SnmpError,
    SnmpValue,
    Target,
    convert,
)

__all__ = [
    "AUTH_PROTOCOLS",
    "PRIV_PROTOCOLS",
    "Credentials",
    "SnmpError",
    "SnmpValue",
    "Target",
    "close_session",
    "open_session",
    "snmp_walk",
]

_MAX_WALK_ROWS = 20_000
# a reply this long after its request timed out still tells that the agent is alive but slow
_LATE_WINDOW = 120.0
# how long a late reply keeps explaining this agent's timeouts
_LATE_MEMORY = 900.0
_MAX_CACHED_OBJECTS = 50_000
# pysnmp keeps ~22 KiB and spends ~2 ms configuring each transport target, so there is one per agent, not one per
# agent and timeout; every request is cut off at its check's own deadline, so pysnmp's timer only has to outlast it
_TRANSPORT_TIMEOUT = 120.0
# asyncio reads one datagram per loop iteration: when one arrives, up to this many more waiting replies
# are read at once, or a busy loop would fall behind the replies and let their requests time out
DRAIN_REPLIES = 64


class _GuardedDispatcher(AsyncioDispatcher):
    """pysnmp's asyncio dispatcher, counting datagrams it cannot decode and replies that came too late.

    pysnmp silently drops a datagram that is not BER at all (it only bumps snmpInASNParseErrs) and lets
    other decoding errors escape into the event loop's exception handler; both are counted per sender
    instead, so a timeout can say that junk arrived rather than blame a down agent or a wrong community.
    A datagram from an agent none of whose requests is pending, shortly after one of them timed out, is
    that request's late reply: its delay is kept so the next timeout can say the agent is slow, not down.
    Every reply arrives on the engine's one socket, so each wake-up reads what else is waiting there.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self.junk: dict[tuple[str, int], int] = {}
        self.in_flight: dict[tuple[str, int], int] = {}
        # agent -> monotonic send time of its latest request that timed out unanswered
        self.expired: dict[tuple[str, int], float] = {}
        # agent -> (seconds its late reply took, monotonic time it arrived)
        self.late: dict[tuple[str, int], tuple[float, float]] = {}
        self.parse_errors: Any = None

    def _callback_function(self, transport: Any, address: Any, message: Any) -> None:
        self._receive(transport, address, message)
        # the selector transport's socket (private, but stable since 3.4); without it, one per iteration
        sock = getattr(getattr(transport, "transport", None), "_sock", None)
        if sock is None:
            return
        for _ in range(DRAIN_REPLIES):
            try:
                message, address = sock.recvfrom(65535)
            except OSError:  # BlockingIOError: nothing more is waiting
                return
            self._receive(transport, address, message)

    def _receive(self, transport: Any, address: Any, message: Any) -> None:
        errors = self.parse_errors
        before = int(errors.syntax) if errors is not None else 0
        try:
            super()._callback_function(transport, address, message)
        except Exception:  # a device's garbage must never reach the loop's error log
            self._count_junk(address)
            return
        if errors is not None and int(errors.syntax) != before:
            self._count_junk(address)
        elif self.expired:
            self._note_late(address)

    def _note_late(self, address: Any) -> None:
        key = _key(address)
        sent = self.expired.get(key)
        if sent is None or self.in_flight.get(key):
            return
        now = time.monotonic()
        del self.expired[key]
        if now - sent <= _LATE_WINDOW:
            if len(self.late) > 10_000:
                self.late.clear()
            self.late[key] = (now - sent, now)

    def _count_junk(self, address: Any) -> None:
        key = _key(address)
        if len(self.junk) > 10_000:
            self.junk.clear()
        self.junk[key] = self.junk.get(key, 0) + 1


def _key(address: Any) -> tuple[str, int]:
    return (str(address[0]), int(address[1])) if len(address) >= 2 else ("?", 0)


class _Session:
    """The engine, targets, auth objects and resolved OIDs living on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop_ref = weakref.ref(loop)
        self.engine = SnmpEngine()
        self.dispatcher = _GuardedDispatcher(loop)
        self.engine.register_transport_dispatcher(self.dispatcher)
        builder = self.engine.message_dispatcher.mib_instrum_controller.get_mib_builder()
        (self.dispatcher.parse_errors,) = builder.import_symbols("__SNMPv2-MIB", "snmpInASNParseErrs")
        self.targets: dict[tuple[str, int], UdpTransportTarget] = {}
        self.opening: dict[tuple[str, int], asyncio.Task[UdpTransportTarget]] = {}
        self.auth: dict[Credentials, CommunityData | UsmUserData] = {}
        # pysnmp resolves every ObjectType against its MIB tree once (~0.7 ms); a resolved one is reused
        self.objects: dict[str, ObjectType] = {}
        self.context = ContextData()
        self.guard: AsyncIterator[None] | None = None
        # GETs waiting to be coalesced, per (host, port, credentials), and the requests sending them
        self.batches: dict[tuple[str, int, Credentials], list[Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Close the engine's socket, also when its loop is already closed."""
        dispatcher = self.engine.transport_dispatcher
        if dispatcher is None:
            return
        transports = [getattr(t, "transport", None) for t in _dispatcher_transports(dispatcher)]
        try:
            self.engine.close_dispatcher()
        except RuntimeError:
            # the loop is closed, so asyncio cannot finish closing; release the sockets ourselves
            for tr in transports:
                sock = getattr(tr, "_sock", None)
                if sock is not None:
                    sock.close()
                    tr._sock = None  # type: ignore[union-attr]


def _dispatcher_transports(dispatcher: Any) -> list[Any]:
    """The transports a pysnmp dispatcher holds (its registry is name-mangled private state)."""
    registry = getattr(dispatcher, "_AbstractTransportDispatcher__transports", None)
    return list(registry.values()) if isinstance(registry, dict) else []


_session: _Session | None = None


async def _loop_guard(session: _Session) -> AsyncIterator[None]:
    """An async generator whose finaliser closes the session when the loop shuts its generators down."""
    try:
        yield
        await asyncio.Future()  # never resumed: only aclose() ends this generator
    finally:
        close_session(session)


async def _get_session() -> _Session:
    """Return the session of the running loop, creating it (and dropping a stale one) as needed."""
    global _session
    loop = asyncio.get_running_loop()
    if _session is not None and _session.loop_ref() is loop:
        return _session
    if _session is not None:
        close_session(_session)
    session = _Session(loop)
    # asyncio.run and pytest-asyncio call loop.shutdown_asyncgens() before closing the loop
    guard = _loop_guard(session)
    await guard.__anext__()
    session.guard = guard
    _session = session
    return session


async def open_session() -> None:
    """Create the running loop's SNMP engine now, so its start-up cost is not charged to a check's timeout."""
    await _get_session()


def close_session(session: _Session | None = None) -> None:
    """Close the SNMP engine (of the given session, or the current one) and forget its targets.

    Call it when the collector stops; the next request opens a fresh engine.
    """
    global _session
    target = session if session is not None else _session
    if target is None:
        return
    target.close()
    if _session is target:
        _session = None


async def _target(session: _Session, target: Target) -> UdpTransportTarget:
    """Return the cached pysnmp transport target of an agent (address and port)."""
    key = (target.host, target.port)
    cached = session.targets.get(key)
    if cached is not None:
        return cached
    # checks of one device opening its target together wait for one creation, so they also wake
    # together and their first GETs can still share a request
    opening = session.opening.get(key)
    if opening is None:
        opening = session.opening[key] = asyncio.get_running_loop().create_task(_create_target(session, target))
        opening.add_done_callback(_forget_opening(session, key))
    return await asyncio.shield(opening)


async def _create_target(session: _Session, target: Target) -> UdpTransportTarget:
    try:
        created = await UdpTransportTarget.create((target.host, target.port), timeout=_TRANSPORT_TIMEOUT, retries=0)
    except Exception as exc:  # pysnmp wraps resolver errors in PySnmpError
        raise SnmpError(f"cannot resolve SNMP address {target.label}: {exc}") from None
    session.targets[(target.host, target.port)] = created
    return created


def _forget_opening(session: _Session, key: tuple[str, int]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        session.opening.pop(key, None)
        if not task.cancelled():
            task.exception()  # read here too, so a creation whose callers all gave up logs nothing
    return done


def _auth(session: _Session, creds: Credentials) -> CommunityData | UsmUserData:
    cached = session.auth.get(creds)
    if cached is None:
        cached = creds.build()
        session.auth[creds] = cached
    return cached


def _junk_seen(session: _Session, target: Target) -> int:
    """How many unreadable datagrams the target has sent so far (compare before and after a request)."""
    return session.dispatcher.junk.get((target.host, target.port), 0)


def _timeout_reason(session: _Session, target: Target, creds: Credentials, junk_before: int) -> str:
    # requests to one agent may run concurrently, so each counts the junk that arrived during it
    junk = max(_junk_seen(session, target) - junk_before, 0)
    if junk:
        return f"no valid SNMP answer from {target.label} within {target.timeout:.1f} s ({junk} unreadable replies)"
    late = session.dispatcher.late.get((target.host, target.port))
    if late is not None and time.monotonic() - late[1] < _LATE_MEMORY:
        return (
            f"no SNMP answer from {target.label} within {target.timeout:.1f} s (it answered after the "
            f"{target.timeout:g} s timeout: {late[0]:.1f} s on an earlier request; agent or link slow?)"
        )
    hint = "agent down or wrong community?" if creds.version != "3" else "agent down or wrong v3 user/keys?"
    return f"no SNMP answer from {target.label} within {target.timeout:.1f} s ({hint})"


def _raise_for(
    session: _Session,
    target: Target,
    creds: Credentials,
    indication: Any,
    status: Any,
    index: Any,
    oids: list[str],
    junk_before: int = 0,
) -> None:
    """Raise SnmpError for a pysnmp error indication or a PDU error status."""
    if indication:
        if isinstance(indication, errind.RequestTimedOut):
            raise SnmpError(_timeout_reason(session, target, creds, junk_before), CheckStatus.CRITICAL)
        raise SnmpError(f"SNMP error from {target.label}: {indication}")
    if status and int(status):
        name = status.prettyPrint() if hasattr(status, "prettyPrint") else str(status)
        name = f"error status {name}" if name.lstrip("-").isdigit() else name
        position = int(index) if index else 0
        where = f" for OID {oids[position - 1]}" if 0 < position <= len(oids) else ""
        raise SnmpError(f"agent {target.label} answered {name}{where}")


def _object(session: _Session, oid: str) -> ObjectType:
    """The OID as an ObjectType, resolved once per session and then reused by every request."""
    cached = session.objects.get(oid)
    if cached is None:
        if len(session.objects) >= _MAX_CACHED_OBJECTS:
            session.objects.clear()
        cached = session.objects[oid] = ObjectType(ObjectIdentity(oid))
    return cached


async def _open(target: Target, deadline: float | None) -> tuple[_Session, UdpTransportTarget]:
    """The loop's session and the target's transport, opened within `deadline` if they are new."""
    session = _session
    if session is not None and session.loop_ref() is asyncio.get_running_loop():
        cached = session.targets.get((target.host, target.port))
        if cached is not None:
            return session, cached
    session = await _get_session()  # local work only: creating the engine is not the device's time
    try:
        async with asyncio.timeout_at(deadline):
            return session, await _target(session, target)
    except TimeoutError:
        raise SnmpError(f"could not open SNMP transport to {target.label} within {target.timeout:.1f} s") from None


async def _exchange(
    session: _Session,
    target: Target,
    creds: Credentials,
    request: Awaitable[tuple[Any, Any, Any, Any]],
    deadline: float | None,
) -> tuple[Any, Any, Any, Any]:
    """Await one pysnmp request, cut off at `deadline` (loop time), tracking it for late replies."""
    dispatcher = session.dispatcher
    key = (target.host, target.port)
    dispatcher.in_flight[key] = dispatcher.in_flight.get(key, 0) + 1
    sent = time.monotonic()
    answered = False
    if deadline is None:
        deadline = asyncio.get_running_loop().time() + target.timeout
    try:
        async with asyncio.timeout_at(deadline):
            result = await request
        answered = not (result[0] and isinstance(result[0], errind.RequestTimedOut))
        return result
    except TimeoutError:
        return errind.RequestTimedOut(), 0, 0, []
    finally:
        left = dispatcher.in_flight[key] - 1
        if left:
            dispatcher.in_flight[key] = left
        else:
            del dispatcher.in_flight[key]
        if answered:
            dispatcher.expired.pop(key, None)
            dispatcher.late.pop(key, None)
        else:
            dispatcher.expired[key] = sent


async def snmp_walk(
    target: Target,
    creds: Credentials,
    base: str,
    max_repetitions: int = 25,
    deadline: float | None = None,
) -> tuple[list[tuple[str, SnmpValue]], float]:
    """Walk the subtree under `base` with GETBULK, in order, stopping at its end.

    Args:
        target: agent address and per-request timeout.
        creds: resolved community or v3 user.
        base: numeric OID of the table column (e.g. ifOperStatus `1.3.6.1.2.1.2.2.1.8`).
        max_repetitions: rows asked per GETBULK request.
        deadline: `loop.time()` by which the whole walk must be done, if any.

    Returns:
        (index suffix, value) pairs, e.g. ("3", SnmpValue("Integer", 1)), and the total time in seconds.

    Raises:
        SnmpError: as for `_snmp_batch.snmp_get`, when the walk is not done by `deadline`, or when the agent returns
            OIDs that do not increase.
    """
    session, transport = await _open(target, deadline)
    base_name = ObjectName(base)
    prefix = base + "."
    rows: list[tuple[str, SnmpValue]] = []
    last = base_name
    junk_before = _junk_seen(session, target)
    started = time.monotonic()
    while len(rows) < _MAX_WALK_ROWS:
        first = last is base_name
        request = bulk_cmd(
            session.engine,
            _auth(session, creds),
            transport,
            session.context,
            0,
            max_repetitions,
            _object(session, base) if first else ObjectType(_ObjectIdentity(last)),
            lookupMib=False,
        )
        indication, status, index, var_binds = await _exchange(session, target, creds, request, deadline)
        if rows and isinstance(indication, errind.RequestTimedOut):
            raise SnmpError(
                f"walk of {base} on {target.label} not finished within {target.timeout:.1f} s "
                f"({len(rows)} rows read; agent slow or table large?)",
                CheckStatus.CRITICAL,
            )
        _raise_for(session, target, creds, indication, status, index, [base], junk_before)
        if not var_binds:
            break
        for name, value in var_binds:
            oid = str(name)
            if not oid.startswith(prefix) or isinstance(value, EndOfMibView):
                return rows, time.monotonic() - started
            if tuple(name) <= tuple(last):
                # a broken agent would otherwise keep us walking in circles
                raise SnmpError(f"agent {target.label} returned OIDs out of order under {base}")
            rows.append((oid[len(prefix) :], convert(value)))
            last = name
    return rows, time.monotonic() - started
