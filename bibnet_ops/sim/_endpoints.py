"""The simulator's endpoints (one HTTP server or SNMP agent each) and how faults alter them."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bibnet_ops.sim._http import HttpConditions, HttpServer
from bibnet_ops.sim._koha import KohaSite
from bibnet_ops.sim._mib import MibView
from bibnet_ops.sim._snmp import SnmpConditions, V3Agent
from bibnet_ops.sim._state import AgentState, ScannerState

__all__ = ["Effect", "Endpoint", "HttpEndpoint", "SnmpEndpoint"]

# An effect a fault has on an endpoint: ("down", mode), ("slow", seconds), ("garbage", True) or
# ("hostile", (behaviour, parameters)); the latest hostile behaviour wins.
Effect = tuple[str, Any]
_DOWN_ORDER = ("refuse", "drop", "blackhole")


@dataclass(eq=False)
class Endpoint:
    """One listening socket serving one or more devices of a site."""

    site_id: str
    device_ids: tuple[str, ...]
    port: int = 0
    effects: dict[int, Effect] = field(default_factory=dict)

    @property
    def conditions(self) -> HttpConditions | SnmpConditions:
        raise NotImplementedError

    def serves(self, device_id: str | None) -> bool:
        return device_id is None or device_id in self.device_ids

    def set_effect(self, token: int, effect: Effect | None) -> None:
        """Add (or with None remove) the effect of fault `token`, then apply the resulting state."""
        if effect is None:
            self.effects.pop(token, None)
        else:
            self.effects[token] = effect
        downs = [v for k, v in self.effects.values() if k == "down"]
        cond = self.conditions
        cond.down = min(downs, key=_DOWN_ORDER.index) if downs else None
        cond.delay = max((float(v) for k, v in self.effects.values() if k == "slow"), default=0.0)
        cond.garbage = any(k == "garbage" for k, _ in self.effects.values())
        cond.hostile = next((v for k, v in reversed(self.effects.values()) if k == "hostile"), None)
        self.apply()

    def apply(self) -> None:
        """Make the socket follow the new conditions."""

    def address(self) -> str:
        raise NotImplementedError


@dataclass(eq=False)
class HttpEndpoint(Endpoint):
    """A site's Koha server (OPAC, API, SRU, health and OAI-PMH on one port, as Koha does)."""

    koha: KohaSite | None = None
    tls: bool = False
    cert_days: float | None = None
    server: HttpServer | None = None
    http_conditions: HttpConditions = field(default_factory=HttpConditions)
    paths: dict[str, str] = field(default_factory=dict)  # device id -> path of its original address

    @property
    def conditions(self) -> HttpConditions:
        return self.http_conditions

    def apply(self) -> None:
        if self.server is not None:
            self.server.reconcile()

    def renew_certificate(self, days: float | None) -> None:
        """Serve a certificate expiring in `days` days (None: the normal one-year certificate)."""
        self.cert_days = days
        if self.server is not None:
            self.server.reconcile(relisten=True)

    def address(self, device_id: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.paths.get(device_id or '', '')}"

    def make_server(self, contexts: Callable[[float | None], ssl.SSLContext]) -> HttpServer:
        assert self.koha is not None
        factory = (lambda: contexts(self.cert_days)) if self.tls else None
        self.server = HttpServer(self.koha, self.http_conditions, factory)
        return self.server


@dataclass(eq=False)
class SnmpEndpoint(Endpoint):
    """A scanner's or switch's SNMP agent."""

    kind: str = "scanner"
    agent: AgentState | None = None
    scanner: ScannerState | None = None
    view: MibView | None = None
    version: str = "2c"
    users: list[dict[str, str]] = field(default_factory=list)
    snmp_conditions: SnmpConditions = field(default_factory=SnmpConditions)
    transport: Any = None
    v3: V3Agent | None = None

    @property
    def conditions(self) -> SnmpConditions:
        return self.snmp_conditions

    def address(self, device_id: str | None = None) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.v3 is not None:
            self.v3.close()
            self.v3 = None
