"""The national network: a collector's share of the inventory, its outbox, the forwarder and site leases.

The collector wires these parts (`bibnet_ops.collector`); the store never imports them. See docs/national.md.
"""

from __future__ import annotations

from bibnet_ops.national._central import Central, PgCentral, seeds_from_rows
from bibnet_ops.national._forwarder import Forwarder, ForwarderState
from bibnet_ops.national._leases import CollectorIdInUse, LeaseManager, wanted_owner
from bibnet_ops.national._outbox import DEFAULT_MINUTE_ROWS, Outbox, OutboxBatch
from bibnet_ops.national._runtime import NationalRuntime, outbox_path
from bibnet_ops.national._share import Share, ShareError, resolve_share, sub_inventory

__all__ = [
    "DEFAULT_MINUTE_ROWS",
    "Central",
    "CollectorIdInUse",
    "Forwarder",
    "ForwarderState",
    "LeaseManager",
    "NationalRuntime",
    "Outbox",
    "OutboxBatch",
    "PgCentral",
    "Share",
    "ShareError",
    "outbox_path",
    "resolve_share",
    "seeds_from_rows",
    "sub_inventory",
    "wanted_owner",
]
