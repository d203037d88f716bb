"""`bibnet-ops config validate|show` and `bibnet-ops site add|remove`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bibnet_ops.inventory import ConfigError, Inventory, load_inventory, resolve_config_dir
from bibnet_ops.inventory.writer import site_path, write_site
from bibnet_ops.model import CheckSpec, Device, SecretRef, Site

__all__ = ["inventory_or_exit", "redact_url", "register"]

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@]*):[^@/]*@", re.I)


def redact_url(address: str) -> str:
    """Hide a password written inside a URL (`http://user:pw@host` -> `http://user:***@host`)."""
    return _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", address)


def _print_issues(err: ConfigError) -> None:
    for issue in err.issues:
        print(f"error: {issue}", file=sys.stderr)
    n = len(err.issues)
    print(f"{n} error{'s' if n != 1 else ''} in the inventory", file=sys.stderr)


def inventory_or_exit(args: argparse.Namespace, directory: str | None = None) -> Inventory:
    """Load the inventory named by the arguments; print every issue and exit 2 if it is invalid."""
    root = Path(directory) if directory else resolve_config_dir(getattr(args, "config", None))
    try:
        return load_inventory(root)
    except ConfigError as err:
        _print_issues(err)
        raise SystemExit(2) from None


def _cmd_validate(args: argparse.Namespace) -> int:
    inv = inventory_or_exit(args, args.dir)
    devices = sum(len(s.devices) for s in inv.sites.values())
    print(
        f"OK: {len(inv.sites)} sites, {devices} devices, {len(inv.checks)} checks "
        f"({len(inv.templates)} templates) in {inv.root}"
    )
    return 0


def _check_dict(check: CheckSpec) -> dict[str, Any]:
    return {
        "id": check.id,
        "probe": check.probe,
        "address": redact_url(check.address),
        "params": check.params,
        "credentials": {k: v.redacted() for k, v in check.credentials.items()},
        "interval": check.interval,
        "timeout": check.timeout,
        "retries": check.retries,
        "retry_interval": check.retry_interval,
        "recover_after": check.recover_after,
        "thresholds": {
            "warning": check.thresholds.warning,
            "critical": check.thresholds.critical,
            "direction": check.thresholds.direction,
        },
        "metric": check.metric,
        "unit": check.unit,
        "description": check.description,
    }


def _site_dict(inv: Inventory, site: Site) -> dict[str, Any]:
    hours = site.opening_hours
    return {
        "id": site.id,
        "name_fr": site.name_fr,
        "name_ar": site.name_ar,
        "wilaya": site.wilaya,
        "region": site.region,
        "kind": site.kind,
        "lat": site.lat,
        "lon": site.lon,
        "tags": list(site.tags),
        "parent": site.parent,
        "opening_hours": {
            "days": list(hours.days),
            "open": hours.open.strftime("%H:%M"),
            "close": hours.close.strftime("%H:%M"),
            "timezone": hours.timezone,
            "holidays": list(hours.holidays),
        },
        "devices": [
            {
                "id": d.id,
                "template": d.template,
                "address": redact_url(d.address),
                "checks": [_check_dict(c) for c in inv.checks if c.device_key == f"{site.id}/{d.id}"],
            }
            for d in site.devices
        ],
    }


def _cmd_show(args: argparse.Namespace) -> int:
    inv = inventory_or_exit(args)
    if args.json:
        doc = {
            "network": {"name": inv.name, "timezone": inv.timezone, "root": str(inv.root)},
            "regions": {r.id: {"name_fr": r.name_fr, "name_ar": r.name_ar} for r in inv.regions.values()},
            "settings": {k: v for k, v in inv.settings.items() if k in ("collector", "sla")},
            "sites": [_site_dict(inv, s) for s in inv.sites.values()],
        }
        json.dump(doc, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    print(f"{inv.name}  ({len(inv.sites)} sites, {len(inv.checks)} checks, timezone {inv.timezone})")
    for site in inv.sites.values():
        parent = f" <- {site.parent}" if site.parent else ""
        print(f"\n{site.id}  {site.name_fr}  [{site.region or '-'}, wilaya {site.wilaya:02d}]{parent}")
        for dev in site.devices:
            creds = ", ".join(f"{k}={v.redacted()}" for k, v in dev.credentials.items())
            print(f"  {dev.id:<12} {dev.template:<15} {redact_url(dev.address)}" + (f"  {creds}" if creds else ""))
            for check in inv.checks:
                if check.device_key == f"{site.id}/{dev.id}":
                    print(f"    {check.name:<10} {check.probe:<7} every {check.interval:g}s  {check.description}")
    return 0


def _parse_device(text: str) -> Device:
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise SystemExit(f"error: --device must be ID:TEMPLATE:ADDRESS, not {text!r}")
    return Device(parts[0], parts[1], parts[2])


def _cmd_site_add(args: argparse.Namespace) -> int:
    inv = inventory_or_exit(args)
    if args.id in inv.sites:
        print(f"error: site '{args.id}' already exists ({inv.sites[args.id].source})", file=sys.stderr)
        return 2
    path = site_path(inv.root, args.id)
    if path.exists():
        print(f"error: {path} already exists", file=sys.stderr)
        return 2
    devices = [_parse_device(d) for d in args.device]
    for cred in args.credential:
        key, _, ref = cred.partition("=")
        dev_id, _, cred_key = key.partition(".")
        matches = [i for i, d in enumerate(devices) if d.id == dev_id]
        if not matches or not cred_key or not ref:
            print(f"error: --credential must be DEVICE.KEY=env:NAME|file:PATH for a --device, not {cred!r}",
                  file=sys.stderr)
            return 2
        dev = devices[matches[0]]
        devices[matches[0]] = replace(dev, credentials={**dev.credentials, cred_key: SecretRef(ref)})
    site = Site(
        id=args.id, name_fr=args.name_fr, name_ar=args.name_ar or "", wilaya=args.wilaya,
        region=args.region or "", lat=args.lat, lon=args.lon, kind=args.kind,
        tags=tuple(args.tag), parent=args.parent, devices=tuple(devices),
    )
    written = write_site(inv.root, site, default_hours=site.opening_hours)
    try:
        new_inv = load_inventory(inv.root)
    except ConfigError as err:
        # the new file is what broke the inventory: take it back out so nothing else is affected
        written.unlink()
        _print_issues(err)
        print(f"site '{args.id}' was not added", file=sys.stderr)
        return 2
    n = len(new_inv.checks_of(args.id))
    print(f"added site '{args.id}' with {len(devices)} devices and {n} checks: {written}")
    return 0


def _cmd_site_remove(args: argparse.Namespace) -> int:
    inv = inventory_or_exit(args)
    site = inv.sites.get(args.id)
    if site is None:
        print(f"error: no site '{args.id}' in {inv.root}", file=sys.stderr)
        return 2
    children = inv.children(args.id)
    if children:
        names = ", ".join(c.id for c in children[:8]) + (", ..." if len(children) > 8 else "")
        print(
            f"error: refusing to remove '{args.id}': {len(children)} site(s) depend on it ({names}); "
            "give them another parent first",
            file=sys.stderr,
        )
        return 2
    # the loader guarantees a site's id is its file name, so the path follows from the id
    site_path(inv.root, args.id).unlink()
    print(f"removed site '{args.id}'")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cfg = sub.add_parser("config", help="validate or show the inventory")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    val = cfg_sub.add_parser("validate", help="check the inventory and templates; exit 2 on any error")
    val.add_argument("dir", nargs="?", help="inventory directory (default: --config, $BIBNET_OPS_CONFIG, ./config)")
    val.set_defaults(func=_cmd_validate)
    show = cfg_sub.add_parser("show", help="print the resolved inventory (secrets redacted)")
    show.add_argument("--json", action="store_true", help="machine-readable JSON")
    show.set_defaults(func=_cmd_show)

    site = sub.add_parser("site", help="add or remove a site file")
    site_sub = site.add_subparsers(dest="site_command", metavar="ACTION", required=True)
    add = site_sub.add_parser("add", help="write config/sites/<ID>.toml, validated against the whole inventory")
    add.add_argument("id", help="stable site id, e.g. bplp-16 or annexe-16-bab-el-oued")
    add.add_argument("--name-fr", required=True, help="French name")
    add.add_argument("--name-ar", help="Arabic name")
    add.add_argument("--wilaya", type=int, required=True, help="wilaya code (1-69)")
    add.add_argument("--lat", type=float, required=True, help="latitude (decimal degrees)")
    add.add_argument("--lon", type=float, required=True, help="longitude (decimal degrees)")
    add.add_argument("--region", help="region id from network.toml")
    add.add_argument("--kind", default="library", help="national | hub | library | annex | municipal")
    add.add_argument("--parent", help="site this one depends on (its uplink)")
    add.add_argument("--tag", action="append", default=[], help="tag (repeatable)")
    add.add_argument("--device", action="append", default=[], metavar="ID:TEMPLATE:ADDRESS",
                     help="device (repeatable), e.g. catalogue:ils-server:https://opac.example")
    add.add_argument("--credential", action="append", default=[], metavar="DEVICE.KEY=REF",
                     help="credential reference, e.g. router.community=env:SNMP_COMMUNITY")
    add.set_defaults(func=_cmd_site_add)
    rm = site_sub.add_parser("remove", help="delete a site's file (refused while other sites depend on it)")
    rm.add_argument("id")
    rm.set_defaults(func=_cmd_site_remove)
