"""SNMP plumbing for the snmp probe: one session per event loop, v2c and v3 requests alike, plain values.

pysnmp binds its dispatchers and UDP sockets to the event loop that created them, so the session is keyed
by the running loop: a new loop (each test, or a restarted collector) gets a fresh session and the old
one is closed. v2c requests go through pysnmp's light v1arch dispatcher (`_snmp_v2c`: one socket, an
agent costs a small transport target and nothing else); the full SnmpEngine (`_snmp_v3`) is created by
the first v3 check only. GETs go through `_snmp_batch`, which coalesces those made to one agent at once;
walks are sent from here. Replies are turned into `SnmpValue`s and failures into `SnmpError`s carrying a
reason a technician understands (those types live in `_snmp_values`, the reasons in `_snmp_wire`);
nothing here builds a `Sample`.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import ObjectName
from pysnmp.proto.rfc1905 import EndOfMibView

from bibnet_ops.model import CheckStatus
from bibnet_ops.probes._snmp_v2c import V2cDispatcher, v2c_target
from bibnet_ops.probes._snmp_values import (
    AUTH_PROTOCOLS,
    PRIV_PROTOCOLS,
    Credentials,
    SnmpError,
    SnmpValue,
    Target,
    convert,
)
from bibnet_ops.probes._snmp_wire import DRAIN_REPLIES, Wire, error_status_reason, timeout_reason

if TYPE_CHECKING:
    from bibnet_ops.probes._snmp_v3 import V3Engine

__all__ = [
    "AUTH_PROTOCOLS",
    "DRAIN_REPLIES",
    "PRIV_PROTOCOLS",
    "Credentials",
    "SnmpError",
    "SnmpValue",
    "Target",
    "close_session",
    "open_session",
    "snmp_walk",
    "snmp_walk_columns",
]

_MAX_WALK_ROWS = 20_000
_MAX_TARGETS = 100_000

_Result = tuple[Any, Any, Any, Any]


class _Session:
    """The dispatchers, agents' transport targets and pending batches living on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop_ref = weakref.ref(loop)
        self.wire = Wire()
        self.v2c = V2cDispatcher(loop, self.wire)
        self._v3: V3Engine | None = None
        # v2c agents' pysnmp v1arch transport targets (an address and a timeout: no engine configuration)
        self.targets: dict[tuple[str, int], Any] = {}
        self.guard: AsyncIterator[None] | None = None
        # GETs waiting to be coalesced, per (host, port, credentials), and the requests sending them
        self.batches: dict[tuple[str, int, Credentials], list[Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def v3(self) -> V3Engine:
        """The full SNMP engine, created by the first v3 request (its import and set-up cost ~0.1 s)."""
        if self._v3 is None:
            from bibnet_ops.probes._snmp_v3 import V3Engine

            loop = self.loop_ref()
            assert loop is not None
            self._v3 = V3Engine(loop, self.wire)
        return self._v3

    def close(self) -> None:
        """Close every socket, also when the loop is already closed."""
        from bibnet_ops.probes._snmp_v3 import dispatcher_transports, release_sockets

        carrier = self.v2c.carrier
        transports = [getattr(t, "transport", None) for t in dispatcher_transports(carrier)]
        try:
            self.v2c.close()
        except RuntimeError:  # the loop is closed, so asyncio cannot finish closing
            release_sockets(transports)
        if self._v3 is not None:
            self._v3.close()


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
    """Create the running loop's SNMP session now, so its start-up cost is not charged to a check's timeout."""
    await _get_session()


def close_session(session: _Session | None = None) -> None:
    """Close the SNMP session (the given one, or the current one) and forget its agents.

    Call it when the collector stops; the next request opens a fresh session.
    """
    global _session
    target = session if session is not None else _session
    if target is None:
        return
    target.close()
    if _session is target:
        _session = None


async def _v2c_target(session: _Session, target: Target) -> Any:
    key = (target.host, target.port)
    try:
        created = await v2c_target(target.host, target.port)
    except Exception as exc:  # pysnmp wraps resolver errors in PySnmpError
        raise SnmpError(f"cannot resolve SNMP address {target.label}: {exc}") from None
    if len(session.targets) >= _MAX_TARGETS:
        session.targets.clear()
    session.targets[key] = created
    return created


def _mark(session: _Session, target: Target) -> tuple[int, ...]:
    """The agent's odd-datagram counts now; compare after a request to tell what arrived during it."""
    return session.wire.mark((target.host, target.port))


def _junk_seen(session: _Session, target: Target) -> int:
    """How many unreadable datagrams the target has sent so far."""
    return session.wire.junk((target.host, target.port))


def _timeout_reason(session: _Session, target: Target, creds: Credentials, mark: tuple[int, ...]) -> str:
    return timeout_reason(session.wire, target, creds, mark)


def _timeout_evidence(session: _Session, target: Target, oids: list[str], mark: tuple[int, ...]) -> str:
    odd = session.wire.odd_since((target.host, target.port), mark)
    asked = ", ".join(oids[:5]) + (f" and {len(oids) - 5} more" if len(oids) > 5 else "")
    return f"asked {asked}; received " + (odd or "no datagram at all")


def _raise_for(
    session: _Session,
    target: Target,
    creds: Credentials,
    indication: Any,
    status: Any,
    index: Any,
    oids: list[str],
    mark: tuple[int, ...] = (),
) -> None:
    """Raise SnmpError for a pysnmp error indication or a PDU error status."""
    if indication:
        if isinstance(indication, errind.RequestTimedOut):
            reason = _timeout_reason(session, target, creds, mark)
            raise SnmpError(reason, CheckStatus.CRITICAL, _timeout_evidence(session, target, oids, mark))
        raise SnmpError(f"SNMP error from {target.label}: {indication}", evidence=f"pysnmp: {indication}")
    if status and int(status):
        evidence = f"response error-status {status.prettyPrint() if hasattr(status, 'prettyPrint') else status}"
        evidence += f" ({int(status)}), error-index {index}; asked " + ", ".join(oids[:20])
        raise SnmpError(error_status_reason(target, status, index, oids), evidence=evidence)


async def _open(target: Target, creds: Credentials, deadline: float | None) -> tuple[_Session, Any]:
    """The loop's session and the agent's transport target, opened within `deadline` if they are new."""
    session = _session
    v3 = creds.version == "3"
    if session is not None and session.loop_ref() is asyncio.get_running_loop():
        cached = (session.v3.targets if v3 else session.targets).get((target.host, target.port))
        if cached is not None:
            return session, cached
    session = await _get_session()  # local work only: creating the dispatcher is not the device's time
    engine = session.v3 if v3 else None  # nor is creating the v3 engine (~0.1 s, more on a busy machine)
    try:
        async with asyncio.timeout_at(deadline):
            if engine is not None:
                return session, await engine.target(target)
            cached = session.targets.get((target.host, target.port))
            return session, cached if cached is not None else await _v2c_target(session, target)
    except TimeoutError:
        raise SnmpError(f"could not open SNMP transport to {target.label} within {target.timeout:.1f} s") from None


async def _v2c_result(future: Awaitable[Any]) -> _Result:
    reply = await future
    return None, reply.status, reply.index, reply.var_binds


def _send_get(session: _Session, creds: Credentials, transport: Any, oids: list[str]) -> Awaitable[_Result]:
    """A GET of `oids` to the agent: pysnmp's (error indication, error status, error index, varbinds)."""
    if creds.version == "3":
        return session.v3.get(creds, transport, oids)
    return _v2c_result(session.v2c.request(creds.community, transport, oids))


def _send_bulk(
    session: _Session, creds: Credentials, transport: Any, oids: list[Any], repetitions: int
) -> Awaitable[_Result]:
    """A GETBULK from each of `oids` (numeric OID strings or the last names a reply gave) for `repetitions` rows."""
    if creds.version == "3":
        return session.v3.bulk(creds, transport, oids, repetitions)
    return _v2c_result(session.v2c.request(creds.community, transport, oids, repetitions))


async def _exchange(
    session: _Session,
    target: Target,
    creds: Credentials,
    request: Awaitable[_Result],
    deadline: float | None,
) -> _Result:
    """Await one request, cut off at `deadline` (loop time), tracking it for late replies."""
    wire = session.wire
    key = (target.host, target.port)
    wire.in_flight[key] = wire.in_flight.get(key, 0) + 1
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
        left = wire.in_flight[key] - 1
        if left:
            wire.in_flight[key] = left
        else:
            del wire.in_flight[key]
        if answered:
            wire.expired.pop(key, None)
            wire.late.pop(key, None)
        else:
            wire.expired[key] = sent


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
    columns, elapsed = await snmp_walk_columns(target, creds, [base], max_repetitions, deadline)
    return columns[base], elapsed


async def snmp_walk_columns(
    target: Target,
    creds: Credentials,
    bases: list[str],
    max_repetitions: int = 25,
    deadline: float | None = None,
) -> tuple[dict[str, list[tuple[str, SnmpValue]]], float]:
    """Walk several columns of one table side by side: each GETBULK asks the next rows of every unfinished one.

    A table's value and name columns then cost one request per `max_repetitions` rows instead of one each.

    Returns:
        Each column's (index suffix, value) pairs in order, and the total time in seconds.

    Raises:
        SnmpError: as `snmp_walk`.
    """
    session, transport = await _open(target, creds, deadline)
    starts = {base: ObjectName(base) for base in bases}
    rows: dict[str, list[tuple[str, SnmpValue]]] = {base: [] for base in bases}
    last = dict(starts)
    unfinished = list(dict.fromkeys(bases))
    mark = _mark(session, target)
    started = time.monotonic()
    total = 0
    while unfinished and total < _MAX_WALK_ROWS:
        asked = [base if last[base] is starts[base] else last[base] for base in unfinished]
        request = _send_bulk(session, creds, transport, asked, max_repetitions)
        indication, status, index, var_binds = await _exchange(session, target, creds, request, deadline)
        if total and isinstance(indication, errind.RequestTimedOut):
            raise SnmpError(
                f"walk of {unfinished[0]} on {target.label} not finished within {target.timeout:.1f} s "
                f"({len(rows[unfinished[0]])} rows read; agent slow or table large?)",
                CheckStatus.CRITICAL,
                _timeout_evidence(session, target, [str(name) for name in asked], mark),
            )
        _raise_for(session, target, creds, indication, status, index, unfinished, mark)
        if not var_binds:
            break
        done: set[str] = set()
        for position, (name, value) in enumerate(var_binds):
            # a GETBULK reply lists each repetition's varbinds in the order the columns were asked
            base = unfinished[position % len(unfinished)]
            if base in done:
                continue
            oid = str(name)
            if not oid.startswith(base + ".") or isinstance(value, EndOfMibView):
                done.add(base)
                continue
            if tuple(name) <= tuple(last[base]):
                # a broken agent would otherwise keep us walking in circles
                raise SnmpError(f"agent {target.label} returned OIDs out of order under {base}")
            rows[base].append((oid[len(base) + 1 :], convert(value)))
            last[base] = name
            total += 1
        unfinished = [base for base in unfinished if base not in done]
    return rows, time.monotonic() - started
