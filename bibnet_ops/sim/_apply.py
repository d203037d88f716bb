"""How each fault kind changes the endpoints and device states it targets, and how it is undone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bibnet_ops.sim._endpoints import Endpoint, HttpEndpoint, SnmpEndpoint
from bibnet_ops.sim._faults import FAULT_PARAMS, Fault, FaultKind
from bibnet_ops.sim._hostile import HTTP_BEHAVIOURS, SNMP_BEHAVIOURS

__all__ = ["ActiveFault", "apply_fault"]


@dataclass(eq=False)
class ActiveFault:
    """A fault the simulator has scheduled or applied, with what to do to undo it."""

    id: int
    fault: Fault
    active: bool = False
    started: float | None = None
    handles: list[asyncio.TimerHandle] = field(default_factory=list)
    undo: list[Callable[[], None]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        f = self.fault
        return {"id": self.id, "kind": f.kind.value, "site": f.site, "device": f.device,
                "start": f.start, "duration": f.duration, "params": f.params, "active": self.active}


def apply_fault(
    af: ActiveFault, targets: list[Endpoint], clock: Callable[[], float], warn: Callable[[str], None]
) -> None:
    """Apply `af` to `targets` now, recording in `af.undo` how to revert it.

    Args:
        af: the fault being started.
        targets: the endpoints it affects.
        clock: the simulator's clock (UTC epoch seconds).
        warn: told when the fault cannot take effect (e.g. expiring a certificate the site does not serve).
    """
    fault = af.fault
    kind = fault.kind
    now = clock()
    token = af.id

    def clear_effects() -> None:
        for ep in targets:
            ep.set_effect(token, None)

    if kind in (FaultKind.OUTAGE, FaultKind.HUB_DOWN):
        for ep in targets:
            ep.set_effect(token, ("down", fault.param("mode")))
        af.undo.append(clear_effects)
    elif kind is FaultKind.SLOW:
        for ep in targets:
            ep.set_effect(token, ("slow", float(fault.param("delay"))))
        af.undo.append(clear_effects)
    elif kind is FaultKind.GARBAGE:
        for ep in targets:
            ep.set_effect(token, ("garbage", True))
        af.undo.append(clear_effects)
    elif kind is FaultKind.FLAPPING:
        _flap(af, targets, down=True)
        af.undo.append(clear_effects)
    elif kind is FaultKind.SYNC_STALLED:
        catalogues = {id(ep.koha.catalogue): ep.koha.catalogue for ep in targets
                      if isinstance(ep, HttpEndpoint) and ep.koha is not None}.values()
        lag = float(fault.param("lag") or 0.0)
        for cat in catalogues:
            cat.set_stalled(now, True, lag)

        def resume() -> None:
            for cat in catalogues:
                cat.set_stalled(clock(), False)

        af.undo.append(resume)
    elif kind in (FaultKind.SCANNER_IDLE, FaultKind.COUNTER_WRAP):
        scanners = [ep.scanner for ep in targets if isinstance(ep, SnmpEndpoint) and ep.scanner]
        for sc in scanners:
            if kind is FaultKind.COUNTER_WRAP:
                sc.near_wrap(now, int(fault.param("margin")))
            else:
                sc.set_idle(now, True)
        if kind is FaultKind.SCANNER_IDLE:

            def wake() -> None:
                for sc in scanners:
                    sc.set_idle(clock(), False)

            af.undo.append(wake)
    elif kind is FaultKind.REBOOT:
        downtime = float(fault.param("downtime"))
        for ep in targets:
            if isinstance(ep, SnmpEndpoint) and ep.agent is not None:
                ep.agent.reboot(now + downtime)
            elif isinstance(ep, HttpEndpoint) and ep.koha is not None:
                ep.koha.boot_time = now + downtime
        if downtime > 0:
            for ep in targets:
                ep.set_effect(token, ("down", "refuse"))
            af.handles.append(asyncio.get_running_loop().call_later(downtime, clear_effects))
            af.undo.append(clear_effects)
    elif kind.value in HTTP_BEHAVIOURS or kind.value in SNMP_BEHAVIOURS:
        http = kind.value in HTTP_BEHAVIOURS
        chosen = [ep for ep in targets if isinstance(ep, HttpEndpoint)] if http else [
            ep for ep in targets if isinstance(ep, SnmpEndpoint) and ep.version != "3"]
        if not chosen:
            served = "HTTP endpoint" if http else "v1/v2c SNMP agent"
            warn(f"{fault.describe()}: the target has no {served}, skipped")
        params = {name: fault.param(name) for name in FAULT_PARAMS[kind]}
        for ep in chosen:
            ep.set_effect(token, ("hostile", (kind.value, params)))
        af.undo.append(clear_effects)
    elif kind is FaultKind.CERT_EXPIRY:
        tls = [ep for ep in targets if isinstance(ep, HttpEndpoint) and ep.tls]
        if not tls:
            warn(f"{fault.describe()}: the site serves no TLS endpoint")
        for ep in tls:
            ep.renew_certificate(float(fault.param("days")))

        def restore() -> None:
            for ep in tls:
                ep.renew_certificate(None)

        af.undo.append(restore)


def _flap(af: ActiveFault, targets: list[Endpoint], down: bool) -> None:
    """Take the targets down or up, then schedule the opposite after `period` seconds."""
    if not af.active:
        return
    mode = af.fault.param("mode")
    for ep in targets:
        ep.set_effect(af.id, ("down", mode) if down else None)
    period = float(af.fault.param("period"))
    af.handles.append(asyncio.get_running_loop().call_later(period, _flap, af, targets, not down))
