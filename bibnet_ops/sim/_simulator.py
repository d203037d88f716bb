"""The Simulator: a whole library network served on 127.0.0.1 from an inventory, with faults."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bibnet_ops.inventory import Inventory
from bibnet_ops.model import Region, Site
from bibnet_ops.sim._apply import ActiveFault, apply_fault
from bibnet_ops.sim._config import write_config
from bibnet_ops.sim._endpoints import Endpoint, HttpEndpoint, SnmpEndpoint
from bibnet_ops.sim._faults import Fault, FaultKind, Scenario
from bibnet_ops.sim._koha import KohaSite
from bibnet_ops.sim._mib import scanner_view, switch_view
from bibnet_ops.sim._network import REGIONS, base_network, resize_network
from bibnet_ops.sim._snmp import V2cAgent, V3Agent
from bibnet_ops.sim._state import AgentState, CatalogueState, OpeningClock, ScannerState, SwitchState

__all__ = ["Simulator"]

HTTP_TEMPLATES = {"ils-server", "oai-sync"}
SNMP_TEMPLATES = {"book-scanner": "scanner", "switch": "switch"}
SCANNER_DESCR = "BookEye 4 V3 professional book scanner, firmware 2.31.4"
SWITCH_DESCR = ("Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E8, "
                "RELEASE SOFTWARE (fc3)")


class _PortAllocator:
    """Hands out ports below Linux's ephemeral range, so client sockets never squat a port we reopen."""

    def __init__(self) -> None:
        self.next = random.SystemRandom().randrange(20000, 24000)

    def take(self) -> int:
        port = self.next
        self.next = port + 1 if port < 32767 else 10000
        return port


class Simulator:
    """Serves every site of a network on loopback; `set_fault`/`clear_fault` steer it at run time.

    Args:
        network: an Inventory, a list of Sites, or None for the built-in 58-wilaya network.
        scenario: scripted and random faults (none: a healthy network).
        seed: seeds device behaviour and random faults, for reproducible runs.
        sites: serve the first N sites, or add synthetic annexes up to N.
        always_open: libraries count as open around the clock (scanners keep scanning), for demos.
        tls_sites: sites whose catalogue is served over HTTPS besides those with https addresses.
        v3_devices: `site/device` -> "authPriv" or "noAuthNoPriv" to serve SNMPv3 there.
        catalogue_records: records each catalogue's OAI-PMH repository holds at start (200 by default),
            for every site or per site id; a million cost no more memory than two hundred.
    """

    def __init__(self, network: Inventory | Sequence[Site] | None = None, *,
                 scenario: Scenario | None = None, seed: int | None = None, sites: int | None = None,
                 always_open: bool = False, tls_sites: Iterable[str] = (),
                 v3_devices: dict[str, str] | None = None,
                 catalogue_records: int | dict[str, int] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.inventory = network if isinstance(network, Inventory) else None
        source = list(network.sites.values()) if isinstance(network, Inventory) else (
            list(network) if network is not None else base_network())
        self.seed = seed
        self.sites: dict[str, Site] = {s.id: s for s in resize_network(source, sites, seed or 0)}
        self.regions: dict[str, Region] = dict(self.inventory.regions) if self.inventory else dict(REGIONS)
        self.scenario = scenario or Scenario()
        self.always_open = always_open
        self.tls_sites = set(tls_sites)
        self.v3_devices = dict(v3_devices or {})
        self.catalogue_records = catalogue_records
        self.clock = clock
        self.community = "sim-" + secrets.token_hex(6)
        self.v3_auth_key = secrets.token_hex(12)
        self.v3_priv_key = secrets.token_hex(12)
        self.endpoints: list[Endpoint] = []
        self.by_site: dict[str, list[Endpoint]] = {}
        self.unserved: list[str] = []
        self.warnings: list[str] = []
        self.faults: dict[int, ActiveFault] = {}
        self.started_at = 0.0
        self.admin_url: str | None = None
        self._random_task: asyncio.Task[None] | None = None
        self._next_fault = 1
        self._ca: Any = None
        self._contexts: dict[float | None, ssl.SSLContext] = {}
        self._ports = _PortAllocator()
        self._rng = random.Random(seed)
        self._build()

    # -- building -----------------------------------------------------------------------------

    def _build(self) -> None:
        now = self.clock()
        for site in self.sites.values():
            rng = random.Random(f"{self.seed}:{site.id}")
            eps: list[Endpoint] = []
            https: dict[tuple[str, str], HttpEndpoint] = {}
            records = self.catalogue_records
            size = records.get(site.id, 200) if isinstance(records, dict) else (records or 200)
            catalogue = CatalogueState(rng, now, size)
            opening = OpeningClock(site.opening_hours, self.always_open)
            for device in site.devices:
                url = urlsplit(device.address) if "://" in device.address else None
                if device.template in HTTP_TEMPLATES or (url and url.scheme in ("http", "https")):
                    scheme = url.scheme if url else "http"
                    key = (scheme, url.netloc if url else "")
                    ep = https.get(key)
                    if ep is None:
                        koha = KohaSite(site, catalogue, now - rng.uniform(3600, 40 * 86400))
                        ep = HttpEndpoint(site.id, (), koha=koha,
                                          tls=scheme == "https" or site.id in self.tls_sites)
                        https[key] = ep
                        eps.append(ep)
                    ep.device_ids += (device.id,)
                    ep.paths[device.id] = url.path.rstrip("/") if url else ""
                elif device.template in SNMP_TEMPLATES:
                    eps.append(self._snmp_endpoint(site, device.id, device.template, device.params,
                                                   set(device.credentials), opening, rng, now))
                else:
                    self.unserved.append(f"{site.id}/{device.id}")
            self.by_site[site.id] = eps
            self.endpoints.extend(eps)

    def _snmp_endpoint(self, site: Site, device_id: str, template: str, params: dict[str, Any],
                       creds: set[str], opening: OpeningClock, rng: random.Random,
                       now: float) -> SnmpEndpoint:
        kind = SNMP_TEMPLATES[template]
        agent = AgentState(
            descr=SCANNER_DESCR if kind == "scanner" else SWITCH_DESCR,
            name=f"{device_id}.{site.id}.bibnet.dz", location=site.name_fr,
            object_id="1.3.6.1.4.1.9.1.1208" if kind == "switch" else "1.3.6.1.4.1.55555.1.4",
            boot_time=now - rng.uniform(3600, 60 * 86400))
        ep = SnmpEndpoint(site.id, (device_id,), kind=kind, agent=agent)
        if kind == "scanner":
            ep.scanner = ScannerState(opening, rng, now)
            ep.view = scanner_view(agent, ep.scanner, self.clock)
        else:
            ep.view = switch_view(agent, SwitchState(rng), self.clock)
        level = self.v3_devices.get(f"{site.id}/{device_id}")
        if level is None and str(params.get("version", "2c")).lower().lstrip("v") == "3":
            level = "authPriv" if "priv_key" in creds else ("authNoPriv" if "auth_key" in creds
                                                               else "noAuthNoPriv")
        if level is not None:
            ep.version = "3"
            user: dict[str, str] = {"user": str(params.get("user") or f"sim-{level.lower()}")}
            if level in ("authPriv", "authNoPriv"):
                user.update(auth_protocol=str(params.get("auth_protocol", "SHA")), auth_key=self.v3_auth_key)
            if level == "authPriv":
                user.update(priv_protocol=str(params.get("priv_protocol", "AES")), priv_key=self.v3_priv_key)
            ep.users = [user]
        return ep

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every endpoint and schedule the scenario's faults."""
        self.started_at = self.clock()
        for ep in self.endpoints:
            await self._bind(ep)
        for fault in self.scenario.faults:
            self._schedule(fault)
        if self.scenario.random is not None:
            self._random_task = asyncio.get_running_loop().create_task(self._random_faults())

    async def _random_faults(self) -> None:
        """Schedule random faults one by one as their start comes near, so any rate costs little."""
        assert self.scenario.random is not None
        for fault in self.scenario.random.stream(sorted(self.sites), self.seed):
            wait = self.started_at + fault.start - self.clock() - 1.0
            if wait > 0:
                await asyncio.sleep(wait)
            self._schedule(fault)

    async def _bind(self, ep: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(200):
            port = self._ports.take()
            try:
                if isinstance(ep, HttpEndpoint):
                    if ep.koha is not None:
                        ep.koha.base_url = f"{'https' if ep.tls else 'http'}://127.0.0.1:{port}"
                    await ep.make_server(self.ssl_context).start(port)
                elif isinstance(ep, SnmpEndpoint) and ep.version == "3":
                    assert ep.view is not None
                    ep.v3 = V3Agent(ep.view, ep.snmp_conditions, ep.users)
                    await ep.v3.start(port)
                elif isinstance(ep, SnmpEndpoint):
                    assert ep.view is not None
                    factory = partial(V2cAgent, ep.view, self.community, ep.snmp_conditions)
                    ep.transport, _ = await loop.create_datagram_endpoint(
                        factory, local_addr=("127.0.0.1", port))
            except OSError:
                continue
            ep.port = port
            return
        raise OSError(f"no free port on 127.0.0.1 for {ep.site_id}/{','.join(ep.device_ids)}")

    async def stop(self) -> None:
        """Cancel scheduled faults and close every socket."""
        if self._random_task is not None:
            self._random_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._random_task
        for af in self.faults.values():
            for handle in af.handles:
                handle.cancel()
        servers = [ep.server for ep in self.endpoints if isinstance(ep, HttpEndpoint) and ep.server]
        await asyncio.gather(*(s.close() for s in servers), return_exceptions=True)
        for ep in self.endpoints:
            if isinstance(ep, SnmpEndpoint):
                ep.close()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- TLS ----------------------------------------------------------------------------------

    @property
    def ca(self) -> Any:
        """The trustme CA that signs every simulated catalogue certificate."""
        if self._ca is None:
            import trustme

            self._ca = trustme.CA(organization_name="bibnet-ops simulator")
        return self._ca

    def ssl_context(self, days: float | None) -> ssl.SSLContext:
        """A server context whose certificate expires in `days` days (None: in a year)."""
        if days not in self._contexts:
            not_after = datetime.now(UTC) + timedelta(days=365 if days is None else days)
            cert = self.ca.issue_cert("127.0.0.1", "localhost", not_after=not_after)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert.configure_cert(ctx)
            self._contexts[days] = ctx
        return self._contexts[days]

    # -- lookups ------------------------------------------------------------------------------

    def endpoint(self, site_id: str, device_id: str) -> Endpoint:
        """The endpoint serving `site_id/device_id` (KeyError if none)."""
        for ep in self.by_site.get(site_id, []):
            if device_id in ep.device_ids:
                return ep
        raise KeyError(f"{site_id}/{device_id}")

    def address(self, site_id: str, device_id: str) -> str:
        """The address probes use for a device: a URL for HTTP, `127.0.0.1:PORT` for SNMP."""
        ep = self.endpoint(site_id, device_id)
        return ep.address(device_id) if isinstance(ep, HttpEndpoint | SnmpEndpoint) else ""

    def descendants(self, site_id: str) -> list[str]:
        """Sites depending on `site_id` directly or through others."""
        children: dict[str, list[str]] = {}
        for site in self.sites.values():
            if site.parent:
                children.setdefault(site.parent, []).append(site.id)
        out: list[str] = []
        stack = [site_id]
        while stack:
            for child in children.get(stack.pop(), []):
                out.append(child)
                stack.append(child)
        return out

    # -- faults -------------------------------------------------------------------------------

    def set_fault(self, site: str, kind: FaultKind | str, device: str | None = None,
                  duration: float | None = None, start: float = 0.0, **params: Any) -> int:
        """Inject a fault now (or `start` seconds from now) and return its id for `clear_fault`.

        Raises:
            KeyError: unknown site or device.
            ValueError: unknown fault kind.
        """
        if site not in self.sites:
            raise KeyError(f"unknown site {site!r}")
        if device is not None and not any(ep.serves(device) for ep in self.by_site[site]):
            raise KeyError(f"unknown device {site}/{device}")
        fault = Fault(FaultKind(kind), site, device, start, duration, params)
        return self._schedule(fault, relative_to_now=True)

    def clear_fault(self, fault_id: int | None = None, *, site: str | None = None,
                    kind: FaultKind | str | None = None) -> int:
        """End a fault by id, or every fault matching site and/or kind (all when none given)."""
        chosen = [af for af in self.faults.values()
                  if (fault_id is None or af.id == fault_id)
                  and (site is None or af.fault.site == site)
                  and (kind is None or af.fault.kind == FaultKind(kind))]
        for af in chosen:
            self._end(af)
        return len(chosen)

    def active_faults(self) -> list[ActiveFault]:
        return [af for af in self.faults.values() if af.active]

    def _schedule(self, fault: Fault, relative_to_now: bool = False) -> int:
        af = ActiveFault(self._next_fault, fault)
        self._next_fault += 1
        if fault.site not in self.sites:
            self.warnings.append(f"scenario fault {fault.describe()}: site not served, skipped")
            return af.id
        self.faults[af.id] = af
        loop = asyncio.get_running_loop()
        delay = fault.start if relative_to_now else max(
            0.0, self.started_at + fault.start - self.clock())
        if delay <= 0:
            self._begin(af)
        else:
            af.handles.append(loop.call_later(delay, self._begin, af))
        if fault.duration is not None:
            af.handles.append(loop.call_later(delay + fault.duration, self._end, af))
        return af.id

    def _targets(self, fault: Fault) -> list[Endpoint]:
        sites = [fault.site]
        if fault.kind is FaultKind.HUB_DOWN:
            sites += self.descendants(fault.site)
        return [ep for sid in sites for ep in self.by_site.get(sid, [])
                if fault.kind is FaultKind.HUB_DOWN or ep.serves(fault.device)]

    def _begin(self, af: ActiveFault) -> None:
        if af.active or af.id not in self.faults:
            return
        af.active = True
        af.started = self.clock()
        apply_fault(af, self._targets(af.fault), self.clock, self.warnings.append)

    def _end(self, af: ActiveFault) -> None:
        for handle in af.handles:
            handle.cancel()
        af.handles.clear()
        if af.active:
            for undo in reversed(af.undo):
                with contextlib.suppress(Exception):
                    undo()
        af.undo.clear()
        af.active = False
        self.faults.pop(af.id, None)

    # -- output -------------------------------------------------------------------------------

    def write_config(self, directory: Path) -> Path:
        """Write the inventory this simulator serves (see `_config.write_config`)."""
        return write_config(self, Path(directory))

    def summary(self) -> dict[str, Any]:
        return {"sites": len(self.sites), "endpoints": len(self.endpoints),
                "faults": [af.as_dict() for af in self.faults.values()],
                "uptime_s": round(self.clock() - self.started_at, 1)}
