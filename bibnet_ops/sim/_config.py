"""Writing the inventory a running simulator serves, in the docs/config-format.md format.

Addresses point at 127.0.0.1 ports; SNMP secrets go to files under `secrets/` and are referenced
as `file:secrets/...`, never written into the TOML.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import tomli_w

from bibnet_ops.inventory import Inventory
from bibnet_ops.inventory.loader import resolve_templates_dir
from bibnet_ops.inventory.writer import site_to_dict
from bibnet_ops.model import Device, OpeningHours, Region, SecretRef, Site
from bibnet_ops.sim._endpoints import Endpoint, HttpEndpoint, SnmpEndpoint

__all__ = ["ServedNetwork", "default_templates_dir", "write_config"]

_SECRET_PARAMS = {"community", "password", "auth_key", "priv_key", "token"}
COMMUNITY_FILE = "secrets/snmp-community"
AUTH_FILE = "secrets/snmp-v3-auth"
PRIV_FILE = "secrets/snmp-v3-priv"
CA_FILE = "secrets/ca.pem"


class ServedNetwork(Protocol):
    """What `write_config` reads of a running simulator (`Simulator` is one)."""

    inventory: Inventory | None
    sites: dict[str, Site]
    regions: dict[str, Region]
    endpoints: list[Endpoint]
    community: str
    v3_auth_key: str
    v3_priv_key: str
    admin_url: str | None

    @property
    def ca(self) -> Any: ...

    def endpoint(self, site_id: str, device_id: str) -> Endpoint: ...


def default_templates_dir() -> Path:
    """The repository's `checks/` directory."""
    return Path(__file__).resolve().parents[2] / "checks"


def _templates_dir(sim: ServedNetwork) -> Path:
    inv = sim.inventory
    if inv is not None:
        return resolve_templates_dir(inv.root, inv.settings.get("templates")).resolve()
    return default_templates_dir()


def _has_check(sim: ServedNetwork, template: str, check: str) -> bool:
    if sim.inventory is not None and template in sim.inventory.templates:
        return any(c.name == check for c in sim.inventory.templates[template].checks)
    return template == "ils-server"


def _write_secret(directory: Path, rel: str, value: str) -> None:
    path = directory / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")


def _served_device(sim: ServedNetwork, site: Site, device: Device, ca_file: str) -> Device:
    try:
        ep = sim.endpoint(site.id, device.id)
    except KeyError:
        return device
    params = {k: v for k, v in device.params.items() if k not in _SECRET_PARAMS}
    creds: dict[str, SecretRef] = {}
    if isinstance(ep, HttpEndpoint):
        if ep.tls:
            params["ca_file"] = ca_file
        creds = dict(device.credentials)
        overrides = dict(device.overrides)
        if ep.tls and _has_check(sim, device.template, "tls") and "tls" not in overrides:
            overrides["tls"] = {"enabled": True}
        return replace(device, address=ep.address(device.id), params=params, credentials=creds,
                       overrides=overrides)
    assert isinstance(ep, SnmpEndpoint)
    if ep.version == "3":
        user = ep.users[0]
        params.update(version="3", user=user["user"])
        params.pop("auth_protocol", None)
        params.pop("priv_protocol", None)
        if "auth_key" in user:
            params["auth_protocol"] = user["auth_protocol"]
            creds["auth_key"] = SecretRef(f"file:{AUTH_FILE}")
        if "priv_key" in user:
            params["priv_protocol"] = user["priv_protocol"]
            creds["priv_key"] = SecretRef(f"file:{PRIV_FILE}")
    else:
        params["version"] = "2c"
        for key in ("user", "auth_protocol", "priv_protocol"):
            params.pop(key, None)
        creds["community"] = SecretRef(f"file:{COMMUNITY_FILE}")
    return replace(device, address=ep.address(), params=params, credentials=creds)


def write_config(sim: ServedNetwork, directory: Path) -> Path:
    """Write network.toml, sites/<id>.toml, secrets/ and simulator.json into `directory`.

    Site files of an earlier run that this simulator does not serve are removed, so the directory
    always describes exactly the running network.
    """
    directory = directory.resolve()
    sites_dir = directory / "sites"
    sites_dir.mkdir(parents=True, exist_ok=True)
    _write_secret(directory, COMMUNITY_FILE, sim.community)
    _write_secret(directory, AUTH_FILE, sim.v3_auth_key)
    _write_secret(directory, PRIV_FILE, sim.v3_priv_key)
    ca_path = directory / CA_FILE
    if any(isinstance(ep, HttpEndpoint) and ep.tls for ep in sim.endpoints):
        sim.ca.cert_pem.write_to_path(str(ca_path))
    default_hours = OpeningHours()
    for site in sim.sites.values():
        served = replace(site, devices=tuple(
            _served_device(sim, site, d, str(ca_path)) for d in site.devices))
        text = tomli_w.dumps(site_to_dict(served, default_hours))
        (sites_dir / f"{site.id}.toml").write_text(
            f"# Served by the bibnet-ops simulator on 127.0.0.1.\n\n{text}", encoding="utf-8")
    for stale in sites_dir.glob("*.toml"):
        if stale.stem not in sim.sites:
            stale.unlink()
    network: dict[str, Any] = {"network": {
        "name": sim.inventory.name if sim.inventory else "Réseau simulé des bibliothèques",
        "timezone": sim.inventory.timezone if sim.inventory else "Africa/Algiers",
        "templates": str(_templates_dir(sim)),
    }}
    settings = sim.inventory.settings if sim.inventory else {}
    for table in ("collector", "sla", "alerts", "dashboard"):
        value = settings.get(table)
        if isinstance(value, dict) and value:
            network[table] = value
    network["defaults"] = {"opening_hours": {
        "days": list(default_hours.days), "open": default_hours.open.strftime("%H:%M"),
        "close": default_hours.close.strftime("%H:%M")}}
    network["regions"] = {r.id: {"name_fr": r.name_fr, "name_ar": r.name_ar}
                          for r in sim.regions.values()}
    (directory / "network.toml").write_text(
        "# Inventory of the simulated network written by `bibnet-ops sim --write-config`.\n\n"
        + tomli_w.dumps(network), encoding="utf-8")
    (directory / "simulator.json").write_text(json.dumps({
        "pid": os.getpid(), "admin": sim.admin_url,
        "sites": len(sim.sites), "endpoints": len(sim.endpoints),
    }, indent=2) + "\n", encoding="utf-8")
    return directory
