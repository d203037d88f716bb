"""The MIB objects a simulated agent exposes, as a sorted OID table over a device's live state.

Values are `(syntax, python value)` pairs; the SNMP layer turns them into pyasn1 objects, so this
module stays free of any SNMP library.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from functools import partial
from typing import Any

from bibnet_ops.sim._state import AgentState, ScannerState, SwitchState

__all__ = ["PAGE_COUNTER_OID", "MibView", "Oid", "Value", "scanner_view", "switch_view"]

Oid = tuple[int, ...]
Value = tuple[str, Any]  # syntax in {"str", "oid", "ticks", "c32", "g32", "int"}
Getter = Callable[[float], Value]

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
PAGE_COUNTER_OID: Oid = (1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 4, 1, 1)
HR_DEVICE_STATUS = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 5, 1)


def parse_oid(text: str) -> Oid:
    return tuple(int(p) for p in text.strip(".").split("."))


class MibView:
    """A device's OIDs in lexicographic order with a getter each, for GET and GETNEXT."""

    def __init__(self, getters: dict[Oid, Getter], clock: Callable[[], float] = time.time) -> None:
        self.oids = sorted(getters)
        self.getters = getters
        self.clock = clock

    def get(self, oid: Oid) -> Value | None:
        getter = self.getters.get(oid)
        return getter(self.clock()) if getter else None

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        """The first object strictly after `oid`, or None at the end of the MIB view."""
        i = bisect_right(self.oids, oid)
        if i >= len(self.oids):
            return None
        nxt = self.oids[i]
        return nxt, self.getters[nxt](self.clock())


def _system(agent: AgentState) -> dict[Oid, Getter]:
    return {
        (*SYSTEM, 1, 0): lambda now: ("str", agent.descr),
        (*SYSTEM, 2, 0): lambda now: ("oid", agent.object_id),
        (*SYSTEM, 3, 0): lambda now: ("ticks", agent.uptime_ticks(now)),
        (*SYSTEM, 4, 0): lambda now: ("str", agent.contact),
        (*SYSTEM, 5, 0): lambda now: ("str", agent.name),
        (*SYSTEM, 6, 0): lambda now: ("str", agent.location),
        (*SYSTEM, 7, 0): lambda now: ("int", 72),
    }


def scanner_view(agent: AgentState, scanner: ScannerState, clock: Callable[[], float]) -> MibView:
    """A book scanner: system group, hrDeviceStatus and the Printer-MIB marker life count."""
    getters = _system(agent)
    getters[PAGE_COUNTER_OID] = lambda now: ("c32", scanner.pages(now))
    # prtMarkerCounterUnit: impressions(7); hrDeviceStatus running(2), or warning(3) when idle.
    getters[(1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 3, 1, 1)] = lambda now: ("int", 7)
    getters[HR_DEVICE_STATUS] = lambda now: ("int", 2)
    return MibView(getters, clock)


def _const(syntax: str, value: Any) -> Getter:
    return lambda now: (syntax, value)


def _oper(switch: SwitchState, i: int, now: float) -> Value:
    return ("int", switch.oper[i])


def _counter(fn: Callable[[int, float], int], i: int, up: Callable[[float], float], now: float) -> Value:
    return ("c32", fn(i, up(now)))


def switch_view(agent: AgentState, switch: SwitchState, clock: Callable[[], float]) -> MibView:
    """A switch: system group, ifNumber and the IF-MIB ifTable for uplink and lan1..lan4."""
    getters = _system(agent)
    getters[IF_NUMBER] = lambda now: ("int", len(switch.names))

    def up(now: float) -> float:
        return max(0.0, now - agent.boot_time)

    for i, name in enumerate(switch.names):
        idx = i + 1
        speed = 1_000_000_000 if i == 0 else 100_000_000
        columns: dict[int, Getter] = {
            1: _const("int", idx),
            2: _const("str", name),
            3: _const("int", 6),  # ethernetCsmacd
            4: _const("int", 1500),
            5: _const("g32", speed),
            7: _const("int", 1),  # ifAdminStatus up
            8: partial(_oper, switch, i),
            9: _const("ticks", 0),
            10: partial(_counter, switch.in_octets, i, up),
            13: _const("c32", 0),
            14: partial(_counter, switch.in_errors, i, up),
            16: partial(_counter, switch.out_octets, i, up),
            20: _const("c32", 0),
        }
        for column, getter in columns.items():
            getters[(*IF_ENTRY, column, idx)] = getter
    return MibView(getters, clock)
