"""`bibnet-ops dashboard --store postgresql://…`: the ministry's console on the central store, no local collector."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bibnet_ops.inventory import Inventory
    from bibnet_ops.store import StoreTarget

__all__ = ["run_national_console"]


def run_national_console(inventory: Inventory, args: argparse.Namespace, target: StoreTarget,
                         keymap: dict[str, str]) -> int:
    """Show the whole country live from the central store; acks and windows are written there.

    The regional collectors pick acknowledgements and maintenance windows up from the store (their alerting
    re-reads it every few seconds). Connected as the read-only role, the console changes nothing: PostgreSQL
    refuses it, and `--read-only` hides the keys that would try.
    """
    from bibnet_ops.alerts import access_policy
    from bibnet_ops.store import StoreError, open_store
    from bibnet_ops.tui.app import DashboardApp
    from bibnet_ops.tui.changes import ConsoleChanges
    from bibnet_ops.tui.nationalsource import NationalSource, StoreAcks

    try:
        open_store(target, readonly=True).close()  # a wrong URL or password says so here, not in the screen
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = NationalSource(target).start()
    acks = StoreAcks(target)
    changes = ConsoleChanges(
        access_policy(inventory.settings, read_only=bool(getattr(args, "read_only", False))),
        acks=acks, store_path=target, timezone=inventory.timezone)
    try:
        app = DashboardApp(inventory, source, lang=args.lang, arabic=args.arabic, theme=args.theme,
                           refresh=max(0.2, args.refresh), tiles=args.tiles, changes=changes, store_path=target,
                           keymap=keymap, host=None)
        app.run()
        return int(app.return_code or 0)
    finally:
        source.stop()
        acks.close()
        changes.close()
