"""Parse and validate the three kinds of inventory file: network, site and check template."""

from __future__ import annotations

import re
import tomllib
from datetime import time as dtime
from pathlib import Path
from typing import Any

from bibnet_ops.inventory._address import MetricsAddressError, parse_address
from bibnet_ops.inventory._errors import ConfigIssue
from bibnet_ops.inventory._groups import NATIONAL_COLLECTOR_KEYS, parse_groups, validate_collector
from bibnet_ops.inventory._model import CheckTemplate, TemplateCheck
from bibnet_ops.inventory._schema import SECRET_PARAM_KEYS, FileContext, Spec, check_table
from bibnet_ops.inventory._tomlpos import KeyPath, TomlPositions
from bibnet_ops.model import Device, OpeningHours, Region, SecretRef, Site, Thresholds
from bibnet_ops.probes import PROBE_KINDS

__all__ = [
    "display_name",
    "parse_network",
    "parse_site",
    "parse_template",
    "read_toml",
]

SITE_KINDS = ("national", "hub", "library", "annex", "municipal", "datacentre")
DAYS = ("sat", "sun", "mon", "tue", "wed", "thu", "fri")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]+@", re.I)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Algeria's bounding box with a margin: a coordinate outside it is a typo (swapped lat/lon, lost sign).
LAT_RANGE = (18.0, 38.5)
LON_RANGE = (-9.5, 12.5)

HOURS_SCHEMA = {
    "days": Spec("list[str]"),
    "open": Spec("str"),
    "close": Spec("str"),
    "timezone": Spec("str"),
    "holidays": Spec("list[str]"),
}
NETWORK_SCHEMA = {
    "network": Spec("table"),
    "collector": Spec("table"),
    "defaults": Spec("table"),
    "regions": Spec("table"),
    "sla": Spec("table"),
    "alerts": Spec("table"),
    "dashboard": Spec("table"),
    "groups": Spec("table"),
}
NETWORK_TABLE = {"name": Spec("str"), "timezone": Spec("str"), "templates": Spec("str")}
COLLECTOR_TABLE = {
    "concurrency": Spec("int"),
    "per_site_concurrency": Spec("int"),
    "store": Spec("str"),
    "store_password": Spec("str"),
    "rollup_days": Spec("number"),
    "hour_rollup_days": Spec("number"),
    "day_rollup_days": Spec("number"),
    "transition_days": Spec("number"),
    "metrics": Spec("str"),
    "pid_file": Spec("str"),
    **NATIONAL_COLLECTOR_KEYS,
}
SLA_TABLE = {"target": Spec("number"), "pages_per_day": Spec("number")}
REGION_TABLE = {"name_fr": Spec("str", required=True), "name_ar": Spec("str")}
SITE_SCHEMA = {
    "id": Spec("str", required=True),
    "name_fr": Spec("str", required=True),
    "name_ar": Spec("str"),
    "wilaya": Spec("int", required=True),
    "region": Spec("str"),
    "kind": Spec("str", choices=SITE_KINDS),
    "lat": Spec("number", required=True),
    "lon": Spec("number", required=True),
    "tags": Spec("list[str]"),
    "parent": Spec("str"),
    "opening_hours": Spec("table"),
    "devices": Spec("any"),
}
DEVICE_SCHEMA = {
    "id": Spec("str", required=True),
    "template": Spec("str", required=True),
    "address": Spec("str", required=True),
    "description": Spec("str"),
    "params": Spec("table"),
    "credentials": Spec("table"),
    "overrides": Spec("table"),
}
CHECK_TUNABLES = {
    "interval": Spec("number"),
    "timeout": Spec("number"),
    "retries": Spec("int"),
    "retry_interval": Spec("number"),
    "recover_after": Spec("int"),
    "thresholds": Spec("table"),
    "params": Spec("table"),
    "enabled": Spec("bool"),
}
TEMPLATE_SCHEMA = {"template": Spec("table", required=True), "checks": Spec("any", required=True)}
TEMPLATE_TABLE = {
    "name": Spec("str", required=True),
    "kind": Spec("str", required=True),
    "description": Spec("str", required=True),
}
CHECK_SCHEMA = {
    **CHECK_TUNABLES,
    "name": Spec("str", required=True),
    "probe": Spec("str", required=True, choices=tuple(PROBE_KINDS)),
    "description": Spec("str", required=True),
    "metric": Spec("str"),
    "unit": Spec("str"),
}
THRESHOLDS_SCHEMA = {
    "warning": Spec("number"),
    "critical": Spec("number"),
    "direction": Spec("str", choices=("above", "below")),
}


def display_name(path: Path) -> str:
    """Path as the user typed it when possible (relative to the working directory)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_toml(path: Path, issues: list[ConfigIssue]) -> tuple[dict[str, Any], FileContext] | None:
    """Read one TOML file; a syntax or encoding error becomes an issue with the line tomllib reports."""
    name = display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(ConfigIssue(name, None, "", f"cannot read file: {exc}"))
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        issues.append(ConfigIssue(name, int(m.group(1)) if m else None, "", f"invalid TOML: {msg}"))
        return None
    return data, FileContext(name, TomlPositions(text))


def parse_hours(ctx: FileContext, data: Any, path: KeyPath, base: OpeningHours) -> OpeningHours:
    """Opening hours table, each field defaulting to `base`."""
    good = check_table(ctx, data, HOURS_SCHEMA, path, "opening_hours")
    days = base.days
    if "days" in good:
        bad = [d for d in good["days"] if d not in DAYS]
        if bad:
            ctx.error(path + ("days",), f"unknown day(s) {', '.join(bad)}; use {', '.join(DAYS)}")
        else:
            days = tuple(good["days"])
    times = {"open": base.open, "close": base.close}
    for key in ("open", "close"):
        if key in good:
            m = _HHMM.match(good[key])
            if not m:
                ctx.error(path + (key,), f"'{key}' must be HH:MM (24 h), not {good[key]!r}")
            else:
                times[key] = dtime(int(m.group(1)), int(m.group(2)))
    if times["close"] <= times["open"]:
        ctx.error(path + ("close",), "closing time must be after opening time")
    holidays = base.holidays
    if "holidays" in good:
        bad = [h for h in good["holidays"] if not _DATE.match(h)]
        if bad:
            ctx.error(path + ("holidays",), f"holidays must be YYYY-MM-DD dates, not {', '.join(bad)}")
        else:
            holidays = tuple(good["holidays"])
    return OpeningHours(days, times["open"], times["close"], good.get("timezone", base.timezone), holidays)


def parse_network(ctx: FileContext, data: dict[str, Any]) -> dict[str, Any]:
    """Validate network.toml; return settings with `regions` as Region objects and default hours."""
    good = check_table(ctx, data, NETWORK_SCHEMA, (), "network.toml")
    net = check_table(ctx, good.get("network", {}), NETWORK_TABLE, ("network",), "[network]")
    collector = check_table(ctx, good.get("collector", {}), COLLECTOR_TABLE, ("collector",), "[collector]")
    for key in ("concurrency", "per_site_concurrency"):
        if key in collector and collector[key] < 1:
            ctx.error(("collector", key), f"'{key}' must be at least 1")
    for key in ("rollup_days", "hour_rollup_days", "day_rollup_days", "transition_days"):
        if key in collector and collector[key] <= 0:
            ctx.error(("collector", key), f"'{key}' must be a positive number of days (leave it out to keep forever)")
    if "metrics" in collector:
        try:
            parse_address(collector["metrics"])
        except MetricsAddressError as exc:
            ctx.error(("collector", "metrics"), str(exc))
            del collector["metrics"]
    if "pid_file" in collector and not collector["pid_file"].strip():
        ctx.error(("collector", "pid_file"), "'pid_file' must be a path (leave it out for none)")
        del collector["pid_file"]
    if "store" in collector and (_URL_PASSWORD.search(collector["store"]) or "password=" in collector["store"].lower()):
        ctx.error(("collector", "store"), "literal secret: the store URL contains a password (user:password@); "
                                          "give it as store_password = \"env:NAME\" or \"file:PATH\", or in ~/.pgpass")
    password = collector.get("store_password")
    if password is not None and (not password.startswith(("env:", "file:")) or password in ("env:", "file:")):
        ctx.error(("collector", "store_password"), "literal secret in store_password: give a reference "
                                                   "\"env:NAME\" or \"file:PATH\"")
    sla = check_table(ctx, good.get("sla", {}), SLA_TABLE, ("sla",), "[sla]")
    defaults = check_table(ctx, good.get("defaults", {}), {"opening_hours": Spec("table")}, ("defaults",),
                           "[defaults]")
    tz = net.get("timezone", "Africa/Algiers")
    hours = parse_hours(ctx, defaults.get("opening_hours", {}), ("defaults", "opening_hours"),
                        OpeningHours(timezone=tz))
    regions: dict[str, Region] = {}
    for rid, rdata in good.get("regions", {}).items():
        r = check_table(ctx, rdata, REGION_TABLE, ("regions", rid), f"region '{rid}'")
        regions[rid] = Region(rid, r.get("name_fr", rid), r.get("name_ar", ""))
    groups = parse_groups(ctx, good.get("groups", {}), set(regions))
    validate_collector(ctx, collector, groups, set(regions))
    return {
        "name": net.get("name", "bibnet"),
        "timezone": tz,
        "templates": net.get("templates"),
        "collector": collector,
        "sla": sla,
        "alerts": good.get("alerts", {}),
        "dashboard": good.get("dashboard", {}),
        "regions": regions,
        "groups": groups,
        "hours": hours,
    }


def _parse_thresholds(ctx: FileContext, data: Any, path: KeyPath) -> Thresholds:
    good = check_table(ctx, data, THRESHOLDS_SCHEMA, path, "thresholds")
    return Thresholds(good.get("warning"), good.get("critical"), good.get("direction", "above"))


def parse_template(ctx: FileContext, data: dict[str, Any], stem: str) -> CheckTemplate | None:
    """Validate one checks/<name>.toml."""
    good = check_table(ctx, data, TEMPLATE_SCHEMA, (), "template file")
    head = check_table(ctx, good.get("template", {}), TEMPLATE_TABLE, ("template",), "[template]")
    name = head.get("name", stem)
    if name != stem:
        ctx.error(("template", "name"), f"template name '{name}' must match its file name '{stem}.toml'")
    raw_checks = good.get("checks", [])
    if not isinstance(raw_checks, list) or not raw_checks:
        ctx.error(("checks",), "a template needs at least one [[checks]] table")
        return None
    checks: list[TemplateCheck] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_checks):
        path: KeyPath = ("checks", i)
        c = check_table(ctx, raw, CHECK_SCHEMA, path, "[[checks]]")
        if "name" not in c or "probe" not in c:
            continue
        if c["name"] in seen:
            ctx.error(path + ("name",), f"duplicate check name '{c['name']}' in template '{name}'")
            continue
        seen.add(c["name"])
        for key in ("interval", "timeout", "retry_interval"):
            if key in c and c[key] <= 0:
                ctx.error(path + (key,), f"'{key}' must be greater than 0 seconds")
        for pkey in c.get("params", {}):
            if pkey in SECRET_PARAM_KEYS:
                ctx.error(path + ("params", pkey), f"'{pkey}' is a credential: templates never hold secrets")
        checks.append(
            TemplateCheck(
                name=c["name"],
                probe=c["probe"],
                description=c.get("description", ""),
                params=dict(c.get("params", {})),
                interval=float(c.get("interval", 60)),
                timeout=float(c.get("timeout", 10)),
                retries=max(int(c.get("retries", 3)), 1),
                retry_interval=float(c.get("retry_interval", 15)),
                recover_after=max(int(c.get("recover_after", 1)), 1),
                thresholds=_parse_thresholds(ctx, c.get("thresholds", {}), path + ("thresholds",)),
                metric=c.get("metric", ""),
                unit=c.get("unit", ""),
                enabled=c.get("enabled", True),
            )
        )
    return CheckTemplate(name, head.get("kind", ""), head.get("description", ""), tuple(checks), ctx.name)


def _parse_device(ctx: FileContext, raw: Any, path: KeyPath, base_dir: Path) -> Device | None:
    d = check_table(ctx, raw, DEVICE_SCHEMA, path, "[[devices]]")
    if not {"id", "template", "address"} <= d.keys():
        return None
    if not _ID.match(d["id"]):
        ctx.error(path + ("id",), f"device id {d['id']!r} must be lowercase letters, digits, '-' or '_'")
    if _URL_PASSWORD.search(d["address"]):
        ctx.error(path + ("address",), "literal secret: the address contains a password (user:password@); "
                                       "use credentials with env:NAME or file:PATH")
    params = dict(d.get("params", {}))
    for key in params:
        if key in SECRET_PARAM_KEYS:
            ctx.error(path + ("params", key),
                      f"literal secret '{key}': put it in [devices.credentials] as \"env:NAME\" or \"file:PATH\"")
    creds: dict[str, SecretRef] = {}
    for key, value in d.get("credentials", {}).items():
        if not isinstance(value, str) or not value.startswith(("env:", "file:")) or value in ("env:", "file:"):
            ctx.error(path + ("credentials", key),
                      f"literal secret in credentials.{key}: give a reference \"env:NAME\" or \"file:PATH\"")
            continue
        creds[key] = SecretRef(value, base_dir)
    overrides: dict[str, dict[str, Any]] = {}
    for check_name, ov in d.get("overrides", {}).items():
        opath = path + ("overrides", check_name)
        good = check_table(ctx, ov, CHECK_TUNABLES, opath, f"overrides.{check_name}")
        if "thresholds" in good:
            _parse_thresholds(ctx, good["thresholds"], opath + ("thresholds",))
        for key in good.get("params", {}):
            if key in SECRET_PARAM_KEYS:
                ctx.error(opath + ("params", key),
                          f"literal secret '{key}': put it in [devices.credentials] as a reference")
        overrides[check_name] = good
    return Device(d["id"], d["template"], d["address"], params, overrides, creds, d.get("description", ""))


def parse_site(
    ctx: FileContext, data: dict[str, Any], stem: str, hours: OpeningHours, base_dir: Path
) -> Site | None:
    """Validate one config/sites/<id>.toml."""
    s = check_table(ctx, data, SITE_SCHEMA, (), "site file")
    if "id" not in s or "name_fr" not in s:
        return None
    sid = s["id"]
    if not _ID.match(sid):
        ctx.error(("id",), f"site id {sid!r} must be lowercase letters, digits, '-' or '_'")
    if sid != stem:
        ctx.error(("id",), f"site id '{sid}' must match its file name '{stem}.toml'")
    lat, lon = s.get("lat"), s.get("lon")
    if lat is not None and not LAT_RANGE[0] <= lat <= LAT_RANGE[1]:
        ctx.error(("lat",), f"latitude {lat} is outside Algeria ({LAT_RANGE[0]}..{LAT_RANGE[1]}); "
                            "swapped with longitude?")
    if lon is not None and not LON_RANGE[0] <= lon <= LON_RANGE[1]:
        ctx.error(("lon",), f"longitude {lon} is outside Algeria ({LON_RANGE[0]}..{LON_RANGE[1]})")
    wilaya = s.get("wilaya", 0)
    if "wilaya" in s and not 1 <= wilaya <= 69:
        ctx.error(("wilaya",), f"wilaya code {wilaya} must be between 1 and 69")
    site_hours = parse_hours(ctx, s["opening_hours"], ("opening_hours",), hours) if "opening_hours" in s else hours
    devices: list[Device] = []
    raw_devices = s.get("devices", [])
    if not isinstance(raw_devices, list):
        ctx.error(("devices",), "'devices' must be written as [[devices]] tables")
        raw_devices = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_devices):
        dev = _parse_device(ctx, raw, ("devices", i), base_dir)
        if dev is None:
            continue
        if dev.id in seen:
            ctx.error(("devices", i, "id"), f"duplicate device id '{dev.id}' in site '{sid}'")
            continue
        seen.add(dev.id)
        devices.append(dev)
    return Site(
        id=sid,
        name_fr=s["name_fr"],
        name_ar=s.get("name_ar", ""),
        wilaya=wilaya,
        region=s.get("region", ""),
        lat=float(lat or 0.0),
        lon=float(lon or 0.0),
        kind=s.get("kind", "library"),
        tags=tuple(s.get("tags", ())),
        parent=s.get("parent"),
        opening_hours=site_hours,
        devices=tuple(devices),
        source=ctx.name,
    )
