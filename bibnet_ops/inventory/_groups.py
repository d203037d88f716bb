"""Collector identity and groups in network.toml: `[collector] id/group/...` and `[groups.NAME]`.

A collector group names the sites its collectors share by region, tag or site id; the collectors of a
group split those sites between them and take over each other's when one stops (docs/national.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bibnet_ops.inventory._schema import FileContext, Spec, check_table
from bibnet_ops.model import Site

__all__ = ["COLLECTOR_ID", "GROUP_TABLE", "NATIONAL_COLLECTOR_KEYS", "CollectorGroup", "parse_groups",
           "validate_collector", "validate_group_sites"]

COLLECTOR_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
GROUP_TABLE = {"regions": Spec("list[str]"), "tags": Spec("list[str]"), "sites": Spec("list[str]")}
# keys of [collector] about the national network (merged into the collector table's schema)
NATIONAL_COLLECTOR_KEYS = {
    "id": Spec("str"),
    "group": Spec("str"),
    "regions": Spec("list[str]"),
    "tags": Spec("list[str]"),
    "failover_delay": Spec("number"),
    "outbox": Spec("str"),
    "outbox_minute_rows": Spec("int"),
}


@dataclass(frozen=True)
class CollectorGroup:
    """Sites shared by the collectors of one group: those of its regions, with its tags, or named."""

    name: str
    regions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()

    def covers(self, site: Site) -> bool:
        """Whether the group's collectors poll this site."""
        return site.region in self.regions or site.id in self.sites or any(t in self.tags for t in site.tags)


def parse_groups(ctx: FileContext, data: Any, regions: set[str]) -> dict[str, CollectorGroup]:
    """Validate `[groups.NAME]` tables; regions must be declared in `[regions]`."""
    if not isinstance(data, dict):
        ctx.error(("groups",), "[groups] must be a table of groups ([groups.NAME])")
        return {}
    groups: dict[str, CollectorGroup] = {}
    for name, gdata in data.items():
        path: tuple[str | int, ...] = ("groups", name)
        if not COLLECTOR_ID.match(name):
            ctx.error(path, f"group name '{name}' must be lower-case letters, digits, '-', '_' or '.'")
            continue
        good = check_table(ctx, gdata, GROUP_TABLE, path, f"group '{name}'")
        unknown = [r for r in good.get("regions", []) if regions and r not in regions]
        if unknown:
            declared = ", ".join(sorted(regions))
            ctx.error(path + ("regions",), f"unknown region(s) {', '.join(unknown)}; declared: {declared}")
        if not any(good.get(k) for k in GROUP_TABLE) and isinstance(gdata, dict):
            ctx.error(path, f"group '{name}' names no sites: give it regions, tags or sites")
        groups[name] = CollectorGroup(
            name, tuple(good.get("regions", ())), tuple(good.get("tags", ())), tuple(good.get("sites", ()))
        )
    return groups


def validate_collector(ctx: FileContext, collector: dict[str, Any], groups: dict[str, CollectorGroup],
                       regions: set[str]) -> None:
    """Check the national keys of `[collector]`: the id's form, a declared group, a sane failover delay."""
    cid = collector.get("id")
    if cid is not None and not COLLECTOR_ID.match(cid):
        ctx.error(("collector", "id"), f"collector id '{cid}' must be lower-case letters, digits, '-', '_' or '.'")
    group = collector.get("group")
    if group is not None and group not in groups:
        known = ", ".join(sorted(groups)) or "none declared ([groups.NAME])"
        ctx.error(("collector", "group"), f"unknown collector group '{group}'; groups: {known}")
    unknown = [r for r in collector.get("regions", []) if regions and r not in regions]
    if unknown:
        ctx.error(("collector", "regions"), f"unknown region(s) {', '.join(unknown)}")
    delay = collector.get("failover_delay")
    if delay is not None and not 3 <= delay <= 3600:
        ctx.error(("collector", "failover_delay"), "'failover_delay' must be between 3 and 3600 seconds")
    rows = collector.get("outbox_minute_rows")
    if rows is not None and rows < 1000:
        ctx.error(("collector", "outbox_minute_rows"), "'outbox_minute_rows' must be at least 1000")


def validate_group_sites(ctx: FileContext, groups: dict[str, CollectorGroup], site_ids: set[str]) -> None:
    """Site ids named by groups must exist (checked once the site files are read)."""
    for name, group in groups.items():
        unknown = [s for s in group.sites if s not in site_ids]
        if unknown:
            ctx.error(("groups", name, "sites"), f"unknown site(s) {', '.join(unknown)}")
