"""A small library network on 127.0.0.1 for engine tests: one real HTTP server per device.

Each device's behaviour can be switched while the engine runs: `ok` (200), `fail` (503 at once) or
`hang` (accepts the connection and never answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from loopback_http import LoopbackServer, Request, reply

from bibnet_ops.events import Event
from bibnet_ops.inventory import CheckTemplate, Inventory
from bibnet_ops.model import CheckSpec, Device, Site

T = TypeVar("T")


@dataclass
class FakeDevice:
    """A real HTTP server whose behaviour the test switches: `ok`, `fail` or `hang`."""

    mode: str = "ok"
    hits: int = 0
    active: int = 0
    peak_active: int = 0
    server: LoopbackServer | None = None

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        self.hits += 1
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        try:
            if self.mode == "hang":
                await asyncio.sleep(3600)
            elif self.mode == "fail":
                await reply(writer, 503, "down for tests")
            else:
                await reply(writer, 200, "ok")
        finally:
            self.active -= 1

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url


@dataclass
class Network:
    """Sites, their devices (servers) and the resulting inventory."""

    inventory: Inventory
    devices: dict[str, FakeDevice] = field(default_factory=dict)  # "site/device" -> device

    def set(self, mode: str, *keys: str) -> None:
        """Switch the devices named `site/device` (or every device of `site`) to `mode`."""
        for key, device in self.devices.items():
            if any(key == k or key.startswith(k + "/") for k in keys):
                device.mode = mode


def spec(site: str, device: str, url: str, *, name: str = "http", **kw: float) -> CheckSpec:
    """An http check with short test timings (overridable)."""
    timing: dict[str, float] = {
        "interval": 0.2, "timeout": 0.5, "retries": 2, "retry_interval": 0.05, "recover_after": 1,
    }
    timing.update(kw)
    return CheckSpec(
        site_id=site, device_id=device, name=name, probe="http", address=url, template="web",
        params={"path": "/"}, interval=timing["interval"], timeout=timing["timeout"],
        retries=int(timing["retries"]), retry_interval=timing["retry_interval"],
        recover_after=int(timing["recover_after"]),
    )


@asynccontextmanager
async def network(
    layout: Mapping[str, tuple[str | None, list[str]]],
    *,
    network_devices: tuple[str, ...] = ("switch",),
    **timing: float,
) -> AsyncIterator[Network]:
    """Start servers for `{site: (parent, [device ids])}`; devices named in `network_devices` get a
    template of kind `network` (they are the site's uplink)."""
    devices: dict[str, FakeDevice] = {}
    sites: dict[str, Site] = {}
    checks: list[CheckSpec] = []
    try:
        for site_id, (parent, device_ids) in layout.items():
            site_devices = []
            for device_id in device_ids:
                fake = FakeDevice()
                fake.server = await LoopbackServer(fake.handle).start()
                devices[f"{site_id}/{device_id}"] = fake
                template = "uplink" if device_id in network_devices else "web"
                site_devices.append(Device(id=device_id, template=template, address=fake.url))
                checks.append(spec(site_id, device_id, fake.url, **timing))  # type: ignore[arg-type]
            sites[site_id] = Site(id=site_id, name_fr=site_id, parent=parent, devices=tuple(site_devices))
        templates = {
            "uplink": CheckTemplate(name="uplink", kind="network", description="", checks=()),
            "web": CheckTemplate(name="web", kind="catalogue", description="", checks=()),
        }
        inventory = Inventory(root=Path("."), sites=sites, checks=checks, templates=templates,
                              settings={"collector": {"concurrency": 50, "per_site_concurrency": 4}})
        yield Network(inventory, devices)
    finally:
        for fake in devices.values():
            if fake.server is not None:
                await fake.server.stop()


class Recorder:
    """A subscriber keeping every event, with helpers to wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: object, timeout: float = 5.0) -> None:
        """Wait until `predicate(self)` is true."""
        assert callable(predicate)
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


async def test_fake_device_modes() -> None:
    async with network({"s": (None, ["web"])}) as net:
        from bibnet_ops.probes import run_probe

        check = net.inventory.checks[0]
        assert (await run_probe(check)).status.value == "OK"
        net.set("fail", "s")
        assert (await run_probe(check)).status.value == "CRITICAL"
        from bibnet_ops.probes._httpclient import close_clients

        await close_clients()
