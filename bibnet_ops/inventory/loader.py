"""Load `config/` and `checks/` into a validated Inventory, reporting every problem of the run at once."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from bibnet_ops.inventory._alerts import validate_alerts
from bibnet_ops.inventory._errors import ConfigError, ConfigIssue
from bibnet_ops.inventory._groups import validate_group_sites
from bibnet_ops.inventory._model import CheckTemplate, Inventory
from bibnet_ops.inventory._parse import (
    display_name,
    parse_network,
    parse_site,
    parse_template,
    read_toml,
)
from bibnet_ops.inventory._schema import FileContext
from bibnet_ops.model import CheckSpec, Device, OpeningHours, Site, Thresholds

__all__ = ["load_inventory", "resolve_config_dir", "resolve_templates_dir"]

ENV_VAR = "BIBNET_OPS_CONFIG"


def resolve_config_dir(arg: str | None) -> Path:
    """The inventory directory: `--config DIR`, then $BIBNET_OPS_CONFIG, then ./config."""
    if arg:
        return Path(arg)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path("config")


def resolve_templates_dir(config_dir: Path, setting: str | None) -> Path:
    """Templates live where network.toml says, else beside the config (`../checks`), else inside it."""
    if setting:
        path = Path(setting).expanduser()
        return path if path.is_absolute() else config_dir / path
    for candidate in (config_dir / "checks", config_dir.parent / "checks"):
        if candidate.is_dir():
            return candidate
    return config_dir.parent / "checks"


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _load_templates(tdir: Path, issues: list[ConfigIssue]) -> dict[str, CheckTemplate]:
    templates: dict[str, CheckTemplate] = {}
    if not tdir.is_dir():
        issues.append(ConfigIssue(display_name(tdir), None, "network.templates",
                                  "check templates directory not found"))
        return templates
    for path in sorted(tdir.glob("*.toml")):
        loaded = read_toml(path, issues)
        if loaded is None:
            continue
        data, ctx = loaded
        tmpl = parse_template(ctx, data, path.stem)
        issues.extend(ctx.issues)
        if tmpl is not None:
            templates[tmpl.name] = tmpl
    return templates


# Parameters naming a file: relative paths are taken from the config directory, like `file:` secrets.
PATH_PARAMS = ("ca_file",)


def _resolve_checks(site: Site, device: Device, tmpl: CheckTemplate, root: Path) -> list[CheckSpec]:
    """Apply a device's address, params, credentials and overrides to its template's checks."""
    specs: list[CheckSpec] = []
    for tc in tmpl.checks:
        ov: dict[str, Any] = device.overrides.get(tc.name, {})
        if not ov.get("enabled", tc.enabled):
            continue
        th = tc.thresholds
        if "thresholds" in ov:
            t = ov["thresholds"]
            th = Thresholds(t.get("warning", th.warning), t.get("critical", th.critical),
                            t.get("direction", th.direction))
        params = {**tc.params, **device.params, **ov.get("params", {})}
        for key in PATH_PARAMS:
            if isinstance(params.get(key), str) and not Path(params[key]).expanduser().is_absolute():
                params[key] = str(root / params[key])
        specs.append(
            CheckSpec(
                site_id=site.id,
                device_id=device.id,
                name=tc.name,
                probe=tc.probe,
                address=device.address,
                template=tmpl.name,
                params=params,
                credentials=dict(device.credentials),
                interval=float(ov.get("interval", tc.interval)),
                timeout=float(ov.get("timeout", tc.timeout)),
                retries=max(int(ov.get("retries", tc.retries)), 1),
                retry_interval=float(ov.get("retry_interval", tc.retry_interval)),
                recover_after=max(int(ov.get("recover_after", tc.recover_after)), 1),
                thresholds=th,
                metric=tc.metric,
                unit=tc.unit,
                description=tc.description,
            )
        )
    return specs


def _check_parents(sites: dict[str, Site], contexts: dict[str, FileContext]) -> None:
    """Unknown parents (with a suggestion) and dependency cycles, each reported once."""
    ids = list(sites)
    for site in sites.values():
        if site.parent is not None and site.parent not in sites:
            contexts[site.id].error(("parent",),
                                    f"unknown parent site '{site.parent}'{_suggest(site.parent, ids)}")
    reported: set[str] = set()
    for start in sites:
        chain: list[str] = []
        node: str | None = start
        while node is not None and node in sites and node not in chain:
            chain.append(node)
            node = sites[node].parent
        if node is not None and node in chain:
            cycle = chain[chain.index(node):]
            if not reported.intersection(cycle):
                reported.update(cycle)
                loop = " -> ".join([*cycle, node])
                contexts[cycle[0]].error(("parent",), f"dependency cycle: {loop}")


def load_inventory(config_dir: Path | str) -> Inventory:
    """Load and validate the inventory in `config_dir`.

    Raises:
        ConfigError: with every problem found (file, line, key path and message).
    """
    root = Path(config_dir)
    issues: list[ConfigIssue] = []
    net_path = root / "network.toml"
    if not root.is_dir():
        raise ConfigError([ConfigIssue(display_name(root), None, "", "inventory directory not found")])
    settings: dict[str, Any] = {"collector": {}, "sla": {}, "alerts": {}, "dashboard": {}}
    inv = Inventory(root=root)
    hours = None
    net_ctx: FileContext | None = None
    if net_path.exists():
        loaded = read_toml(net_path, issues)
        if loaded is not None:
            data, ctx = loaded
            net_ctx = ctx
            net = parse_network(ctx, data)
            issues.extend(ctx.issues)
            inv.name, inv.timezone, inv.regions = net["name"], net["timezone"], net["regions"]
            hours = net["hours"]
            settings = {k: net[k] for k in ("collector", "sla", "alerts", "dashboard", "groups")}
            settings["templates"] = net["templates"]
    else:
        issues.append(ConfigIssue(display_name(net_path), None, "", "network.toml not found"))
    inv.settings = settings
    templates_dir = resolve_templates_dir(root, settings.get("templates"))
    inv.templates = _load_templates(templates_dir, issues)

    hours = hours or OpeningHours()
    contexts: dict[str, FileContext] = {}
    for path in sorted((root / "sites").glob("*.toml")):
        loaded = read_toml(path, issues)
        if loaded is None:
            continue
        data, ctx = loaded
        site = parse_site(ctx, data, path.stem, hours, root)
        if site is not None:
            if site.id in inv.sites:
                ctx.error(("id",), f"duplicate site id '{site.id}' (also in {inv.sites[site.id].source})")
            else:
                inv.sites[site.id] = site
                contexts[site.id] = ctx
        issues.extend(ctx.issues)
        ctx.issues = []

    tnames = list(inv.templates)
    for site in inv.sites.values():
        ctx = contexts[site.id]
        if site.region and inv.regions and site.region not in inv.regions:
            ctx.error(("region",), f"unknown region '{site.region}'{_suggest(site.region, list(inv.regions))}")
        for i, device in enumerate(site.devices):
            tmpl = inv.templates.get(device.template)
            if tmpl is None:
                # without a templates directory every device would say so: its one error stands for them all
                if templates_dir.is_dir():
                    ctx.error(("devices", i, "template"),
                              f"unknown template '{device.template}'{_suggest(device.template, tnames)}")
                continue
            check_names = [c.name for c in tmpl.checks]
            for name in device.overrides:
                if name not in check_names:
                    ctx.error(("devices", i, "overrides", name),
                              f"template '{tmpl.name}' has no check '{name}'{_suggest(name, check_names)}")
            inv.checks.extend(_resolve_checks(site, device, tmpl, root))
    _check_parents(inv.sites, contexts)
    for ctx in contexts.values():
        issues.extend(ctx.issues)
    if net_ctx is not None and settings.get("groups"):
        known = len(net_ctx.issues)
        validate_group_sites(net_ctx, settings["groups"], set(inv.sites))
        issues.extend(net_ctx.issues[known:])
    if net_ctx is not None and settings.get("alerts"):
        issues.extend(validate_alerts(settings["alerts"], net_ctx.name, net_ctx.positions, inv.sites,
                                      list(inv.regions) or None, root))
    if issues:
        raise ConfigError(issues)
    return inv
