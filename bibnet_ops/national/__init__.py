"""The national network: a collector's share of the inventory, its outbox, the forwarder and site leases.

The collector wires these parts (`bibnet_ops.collector`); the store never imports them. See docs/national.md.
"""

from __future__ import annotations

from bibnet_ops.national._outbox import DEFAULT_MINUTE_ROWS, Outbox, OutboxBatch
from bibnet_ops.national._share import Share, ShareError, resolve_share, sub_inventory

__all__ = [
    "DEFAULT_MINUTE_ROWS",
    "Outbox",
    "OutboxBatch",
    "Share",
    "ShareError",
    "resolve_share",
    "sub_inventory",
]
