"""Coalesced SNMP GETs: the requests made to one agent within one event-loop turn share one GET PDU.

The scheduler gives the checks of a device one phase, so a book scanner's `uptime` and `pages` probes
ask the same agent for sysUpTime and the page counter within microseconds of each other. Each
`snmp_get` joins the open batch of its agent (same address, port and credentials); the batch is sent
on the loop's next turn (or `WINDOW` seconds after its first request) as GETs of the union of the
OIDs, at most `MAX_VARBINDS` per PDU, one caller's OIDs never split across PDUs, and every caller gets
back exactly the varbinds it asked for:

- a varbind's own exception (noSuchObject, noSuchInstance) or absence reaches only the callers that
  asked for that OID;
- an error indication (timeout, USM error, unreadable reply) reaches every caller, each with its own
  reason (a timeout names the caller's own timeout);
- an error status (tooBig, genErr, noSuchName...) on a PDU shared by several callers says nothing sure
  about any one of them, so each caller's request is sent again alone and gets its own answer;
- a caller still gives up at its own deadline, whatever the batch's other requests allow.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bibnet_ops.model import CheckStatus
from bibnet_ops.probes._snmp_session import (
    Credentials,
    SnmpError,
    SnmpValue,
    Target,
    _exchange,
    _mark,
    _open,
    _raise_for,
    _send_get,
    _Session,
    _timeout_evidence,
    _timeout_reason,
)
from bibnet_ops.probes._snmp_values import convert

__all__ = ["MAX_VARBINDS", "WINDOW", "snmp_get"]

MAX_VARBINDS = 20
"""Most varbinds one coalesced GET carries (small agents answer tooBig to long PDUs)."""

WINDOW = 0.0
"""Seconds a batch waits for more requests after its first one; 0 sends it on the loop's next turn."""

_Result = tuple[dict[str, SnmpValue], float]


@dataclass(slots=True, eq=False)
class _Waiter:
    """One caller of `snmp_get` waiting in a batch."""

    target: Target
    transport: Any  # the agent's pysnmp transport target (v1arch for v2c, v3arch for v3)
    oids: list[str]
    deadline: float  # loop time by which this caller stops waiting
    mark: tuple[int, ...]  # the agent's odd-datagram counts when the caller started
    future: asyncio.Future[_Result]


async def snmp_get(
    target: Target, creds: Credentials, oids: list[str], deadline: float | None = None
) -> tuple[dict[str, SnmpValue], float]:
    """GET several OIDs, in one PDU with the other GETs to the same agent made in the same loop turn.

    Args:
        target: agent address and per-request timeout.
        creds: resolved community or v3 user.
        oids: numeric OIDs without a leading dot.
        deadline: `loop.time()` by which the answer must be in (the whole check's budget), if any.

    Returns:
        The value of each requested OID (exception values included) and the round trip in seconds.

    Raises:
        SnmpError: no answer, a USM/protocol error, an error status, or a reply that is not usable.
    """
    session, transport = await _open(target, creds, deadline)
    loop = asyncio.get_running_loop()
    limit = loop.time() + target.timeout if deadline is None else deadline
    waiter = _Waiter(target, transport, list(dict.fromkeys(oids)), limit, _mark(session, target), loop.create_future())
    key = (target.host, target.port, creds)
    batch = session.batches.get(key)
    if batch is None:
        batch = session.batches[key] = []
        if WINDOW > 0:
            loop.call_later(WINDOW, _flush, session, key, creds)
        else:
            loop.call_soon(_flush, session, key, creds)
    batch.append(waiter)
    try:
        async with asyncio.timeout_at(limit):
            return await waiter.future
    except TimeoutError:
        reason = _timeout_reason(session, target, creds, waiter.mark)
        evidence = _timeout_evidence(session, target, waiter.oids, waiter.mark)
        raise SnmpError(reason, CheckStatus.CRITICAL, evidence) from None


def _flush(session: _Session, key: tuple[str, int, Credentials], creds: Credentials) -> None:
    """Close the agent's batch and send it as one request per chunk of at most MAX_VARBINDS OIDs."""
    waiters = [w for w in session.batches.pop(key, []) if not w.future.done()]
    for chunk in _pack(waiters):
        _spawn(session, _request(session, creds, chunk, alone=len(chunk) == 1))


def _pack(waiters: list[_Waiter]) -> list[list[_Waiter]]:
    """Group callers, in arrival order, into PDUs of at most MAX_VARBINDS distinct OIDs each."""
    chunks: list[list[_Waiter]] = []
    current: list[_Waiter] = []
    seen: set[str] = set()
    for waiter in waiters:
        new = [oid for oid in waiter.oids if oid not in seen]
        if current and len(seen) + len(new) > MAX_VARBINDS:
            chunks.append(current)
            current, seen = [], set()
            new = waiter.oids
        current.append(waiter)
        seen.update(new)
    if current:
        chunks.append(current)
    return chunks


def _spawn(session: _Session, request: Any) -> None:
    task = asyncio.get_running_loop().create_task(request)
    session.tasks.add(task)
    task.add_done_callback(session.tasks.discard)


async def _request(session: _Session, creds: Credentials, waiters: list[_Waiter], alone: bool) -> None:
    """Send one GET for the callers' OIDs and hand each caller its own answer or failure."""
    oids = list(dict.fromkeys(oid for w in waiters for oid in w.oids))
    # the caller allowing the longest wait sets the request's own timeout; the others leave earlier
    widest = max(waiters, key=lambda w: w.target.timeout)
    started = time.monotonic()
    try:
        request = _send_get(session, creds, widest.transport, oids)
        indication, status, index, var_binds = await _exchange(
            session, widest.target, creds, request, max(w.deadline for w in waiters)
        )
        latency = time.monotonic() - started
        if not indication and status and int(status) and not alone:
            # an error status on a shared PDU may come from any caller's OID: ask for each one alone
            for waiter in waiters:
                if not waiter.future.done():
                    _spawn(session, _request(session, creds, [waiter], alone=True))
            return
        values = {} if indication or (status and int(status)) else {str(n): convert(v) for n, v in var_binds}
    except asyncio.CancelledError:
        for waiter in waiters:
            _fail(waiter, SnmpError(f"SNMP request to {waiter.target.label} cancelled (collector stopping)"))
        raise
    except Exception as exc:  # a garbled reply can trip pysnmp anywhere; it is the device's fault
        for waiter in waiters:
            reason = f"unusable SNMP reply from {waiter.target.label}: {type(exc).__name__}: {exc}"
            _fail(waiter, SnmpError(reason))
        return
    for waiter in waiters:
        if waiter.future.done():
            continue
        try:
            _raise_for(session, waiter.target, creds, indication, status, index, oids, waiter.mark)
            mine: dict[str, SnmpValue] = {}
            for oid in waiter.oids:
                value = values.get(oid)
                if value is None:
                    raise SnmpError(f"agent {waiter.target.label} answered without OID {oid}")
                mine[oid] = value
        except SnmpError as exc:
            waiter.future.set_exception(exc)
        else:
            waiter.future.set_result((mine, latency))


def _fail(waiter: _Waiter, error: SnmpError) -> None:
    if not waiter.future.done():
        waiter.future.set_exception(error)
