"""`collect` options of a regional collector: its id, its share (group, regions, tags) and failover delay."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bibnet_ops.inventory import Inventory
    from bibnet_ops.national import NationalRuntime

__all__ = ["NationalSetupError", "add_national_args", "national_setup"]


class NationalSetupError(Exception):
    """The share or the outbox cannot be set up: the message says why (the command exits 2)."""


def add_national_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("national network (docs/national.md)")
    group.add_argument("--collector-id", metavar="ID",
                       help="this collector's id, e.g. oran-1 (default: [collector] id); one process per id")
    group.add_argument("--group", metavar="NAME",
                       help="poll a share of the sites of [groups.NAME], split with the group's other collectors")
    group.add_argument("--region", action="append", default=[], metavar="ID",
                       help="poll the sites of this region (repeatable; default: [collector] regions)")
    group.add_argument("--tag", action="append", default=[], metavar="TAG",
                       help="poll the sites with this tag (repeatable; default: [collector] tags)")
    group.add_argument("--failover-delay", type=float, metavar="SECONDS",
                       help="take over a silent group member's sites after this delay "
                            "(default: [collector] failover_delay, else 20)")
    group.add_argument("--outbox", metavar="PATH",
                       help="the local outbox file (default: [collector] outbox, else beside the default store)")


def national_setup(args: argparse.Namespace, inventory: Inventory,
                   no_store: bool) -> tuple[Inventory, Any, Callable[[Inventory], Inventory] | None]:
    """The inventory this collector polls, its NationalRuntime (None without a central PostgreSQL store), and
    what narrows a reloaded inventory to the share (None for the whole inventory).

    Raises:
        NationalSetupError: an unknown group or region, a share without sites, an outbox that cannot be opened.
    """
    from bibnet_ops.national import NationalRuntime, ShareError, outbox_path, resolve_share, sub_inventory
    from bibnet_ops.store import StoreError, resolve_store

    cid = getattr(args, "collector_id", None) or ""
    choices = (getattr(args, "group", None), tuple(getattr(args, "region", None) or ()),
               tuple(getattr(args, "tag", None) or ()))
    try:
        share = resolve_share(inventory, cid, *choices)
    except ShareError as exc:
        raise NationalSetupError(str(exc)) from None
    polled = inventory if share.whole else sub_inventory(inventory, share.sites)

    def narrow(new: Inventory) -> Inventory:
        return sub_inventory(new, resolve_share(new, cid, *choices).sites)

    narrowing = None if share.whole else narrow
    if no_store:
        return polled, None, narrowing
    target = resolve_store(getattr(args, "store", None) or None, inventory.settings, inventory.root)
    if not target.is_postgres:
        return polled, None, narrowing
    conf = inventory.settings.get("collector", {})
    delay = getattr(args, "failover_delay", None) or conf.get("failover_delay") or 20.0
    if getattr(args, "outbox", None):
        path = Path(args.outbox)
    else:
        path = outbox_path(inventory.settings, inventory.root, share.collector_id, target)
    try:
        runtime: NationalRuntime = NationalRuntime(
            inventory, share, target, outbox=path, failover_delay=float(delay), leases=bool(share.collector_id),
            max_minute_rows=int(conf.get("outbox_minute_rows", 600_000)), choices=choices,
        )
    except StoreError as exc:
        raise NationalSetupError(str(exc)) from None
    return polled, runtime, None
