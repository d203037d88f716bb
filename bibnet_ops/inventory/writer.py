"""Write sites back to `config/sites/<id>.toml` with tomli-w, one file per site so no other file is rewritten."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomli_w

from bibnet_ops.model import Device, OpeningHours, Site

__all__ = ["device_to_dict", "site_path", "site_to_dict", "write_site"]


def device_to_dict(device: Device) -> dict[str, Any]:
    """A device as its `[[devices]]` table (credentials as their references, never values)."""
    out: dict[str, Any] = {"id": device.id, "template": device.template, "address": device.address}
    if device.description:
        out["description"] = device.description
    if device.params:
        out["params"] = dict(device.params)
    if device.credentials:
        out["credentials"] = {k: v.ref for k, v in device.credentials.items()}
    if device.overrides:
        out["overrides"] = {k: dict(v) for k, v in device.overrides.items()}
    return out


def site_to_dict(site: Site, default_hours: OpeningHours | None = None) -> dict[str, Any]:
    """A site as the table written to its file; opening hours only when they differ from the default."""
    out: dict[str, Any] = {
        "id": site.id,
        "name_fr": site.name_fr,
        "name_ar": site.name_ar,
        "wilaya": site.wilaya,
        "region": site.region,
        "kind": site.kind,
        "lat": round(site.lat, 4),
        "lon": round(site.lon, 4),
        "tags": list(site.tags),
    }
    if not site.region:
        del out["region"]
    if site.parent:
        out["parent"] = site.parent
    hours = site.opening_hours
    if default_hours is None or hours != default_hours:
        table: dict[str, Any] = {
            "days": list(hours.days),
            "open": hours.open.strftime("%H:%M"),
            "close": hours.close.strftime("%H:%M"),
        }
        if hours.holidays:
            table["holidays"] = list(hours.holidays)
        out["opening_hours"] = table
    out["devices"] = [device_to_dict(d) for d in site.devices]
    return out


def site_path(config_dir: Path, site_id: str) -> Path:
    return config_dir / "sites" / f"{site_id}.toml"


def write_site(
    config_dir: Path, site: Site, default_hours: OpeningHours | None = None, header: str = ""
) -> Path:
    """Write one site's file atomically (temp file + rename) so a crash never leaves half a file."""
    path = site_path(config_dir, site.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = tomli_w.dumps(site_to_dict(site, default_hours))
    if header:
        text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + "\n" + text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{site.id}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
