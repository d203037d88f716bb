"""A collector's share of the inventory: which sites it may poll, by group, region or tag.

The share is what a collector *may* poll; with a central store, leases then decide which of those sites
it *does* poll at a given moment (`_leases.py`). A share never changes while a collector runs (it comes
from the command line and network.toml); the leased part of it does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from bibnet_ops.inventory import Inventory
from bibnet_ops.inventory._groups import CollectorGroup

__all__ = ["Share", "ShareError", "resolve_share", "sub_inventory"]


class ShareError(ValueError):
    """A share that names no sites or an unknown group: the collector cannot start."""


@dataclass(frozen=True)
class Share:
    """Who this collector is and which sites it may poll.

    Attributes:
        collector_id: the collector's id ("" for an anonymous single collector).
        group: the lease group: the named `[groups.X]`, or "solo:<id>" for a collector sharing with none.
        sites: the ids of the sites in the share, sorted.
        whole: True when the share is the whole inventory (no group, region or tag given).
    """

    collector_id: str
    group: str
    sites: tuple[str, ...]
    whole: bool = False


def resolve_share(
    inventory: Inventory,
    collector_id: str = "",
    group: str | None = None,
    regions: Iterable[str] = (),
    tags: Iterable[str] = (),
) -> Share:
    """The share from command-line choices, else from `[collector] id/group/regions/tags`.

    Raises:
        ShareError: an unknown group or region, or a share without any site.
    """
    conf = inventory.settings.get("collector", {})
    groups: dict[str, CollectorGroup] = inventory.settings.get("groups", {}) or {}
    collector_id = collector_id or conf.get("id", "")
    regions, tags = tuple(regions), tuple(tags)
    if group is None and not regions and not tags:  # a share on the command line replaces the file's
        group = conf.get("group")
        regions, tags = tuple(conf.get("regions", ())), tuple(conf.get("tags", ()))
    if group is not None:
        found = groups.get(group)
        if found is None:
            known = ", ".join(sorted(groups)) or "none declared in network.toml ([groups.NAME])"
            raise ShareError(f"unknown collector group '{group}'; groups: {known}")
        selector = found
    else:
        unknown = [r for r in regions if inventory.regions and r not in inventory.regions]
        if unknown:
            raise ShareError(f"unknown region(s) {', '.join(unknown)}; regions: {', '.join(sorted(inventory.regions))}")
        selector = CollectorGroup("", tuple(regions), tuple(tags))
    whole = group is None and not regions and not tags
    sites = tuple(sorted(s.id for s in inventory.sites.values() if whole or selector.covers(s)))
    if not sites:
        raise ShareError(f"the share of collector '{collector_id or '-'}' names no site "
                         f"(group {group or '-'}, regions {', '.join(regions) or '-'}, tags {', '.join(tags) or '-'})")
    lease_group = group if group is not None else f"solo:{collector_id}"
    return Share(collector_id, lease_group, sites, whole)


def sub_inventory(inventory: Inventory, site_ids: Iterable[str]) -> Inventory:
    """The inventory restricted to some sites and their checks (regions, templates and settings kept).

    A site whose parent is left out is evaluated as a root: dependencies across collectors are not followed.
    """
    keep = set(site_ids)
    return replace(
        inventory,
        sites={sid: site for sid, site in inventory.sites.items() if sid in keep},
        checks=[c for c in inventory.checks if c.site_id in keep],
    )
