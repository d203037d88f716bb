"""`bibnet-ops dashboard`: run the engine on the configured inventory and show the live dashboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bibnet_ops.inventory import Inventory

__all__ = ["add_display_options", "register", "run_dashboard"]

LANGS = ("en", "fr")
ARABIC = ("shaped", "raw")
THEMES = ("default", "high-contrast", "ansi-dark", "ansi-light")


def add_display_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `dashboard` and `demo`."""
    parser.add_argument("--lang", choices=LANGS, help="language of the screens (default: from the locale)")
    parser.add_argument("--arabic", choices=ARABIC, default="shaped",
                        help="shaped: join and reorder Arabic names for terminals without bidi support "
                             "(PuTTY, Windows Terminal); raw: pass them through (default: shaped)")
    parser.add_argument("--theme", choices=THEMES, default="default",
                        help="colours; ansi-* follow the terminal's palette; NO_COLOR is honoured (default: default)")
    parser.add_argument("--refresh", type=float, default=2.0, metavar="SECONDS",
                        help="seconds between screen updates; +/- change it live (default: 2)")
    parser.add_argument("--store", metavar="PATH",
                        help="history database (default: [collector] store, else the user data directory)")
    parser.add_argument("--read-only", action="store_true",
                        help="everything visible, nothing changeable (also [dashboard] read_only = true)")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--tiles", dest="tiles", action="store_true", default=None,
                      help="start with the site tile grid (default above 200 sites)")
    view.add_argument("--tree", dest="tiles", action="store_false", help="start with the region/site tree")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="live network dashboard (engine + screens) on the configured inventory",
        description="Poll the inventory's devices and show the network map, problems and events live. "
                    "Keys: ? for help, q to quit.",
    )
    add_display_options(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bibnet_ops.cli.config_cmd import inventory_or_exit

    return run_dashboard(inventory_or_exit(args), args)


def run_dashboard(
    inventory: Inventory, args: argparse.Namespace, first_spread: float = 60.0, store: Path | None = None
) -> int:
    """Start the collector (engine, history, alerting) in a background thread, run the dashboard, stop both.

    Args:
        inventory: what to poll and show.
        args: the display options (see `add_display_options`).
        first_spread: seconds over which the engine spreads its first polls.
        store: history database; default `--store`, else the configured one.
    """
    from bibnet_ops.alerts import access_policy
    from bibnet_ops.collector import Collector
    from bibnet_ops.store import StoreError
    from bibnet_ops.tui.app import DashboardApp
    from bibnet_ops.tui.changes import ConsoleChanges
    from bibnet_ops.tui.runner import EngineThread

    try:
        collector = Collector(inventory, store=store or getattr(args, "store", None), first_spread=first_spread)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine = EngineThread(collector).start()
    # Acks go through the collector's AlertManager on the engine's loop; windows through the store.
    changes = ConsoleChanges(
        access_policy(inventory.settings, read_only=bool(getattr(args, "read_only", False))),
        alerting=collector.alerting,
        loop=lambda: engine.loop,
        store_path=collector.store_path,
        timezone=inventory.timezone,
    )
    try:
        app = DashboardApp(
            inventory,
            engine.buffer,
            lang=args.lang,
            arabic=args.arabic,
            theme=args.theme,
            refresh=max(0.2, args.refresh),
            tiles=args.tiles,
            changes=changes,
            store_path=collector.store_path,
        )
        app.run()
        return int(app.return_code or 0)
    finally:
        engine.stop()
        changes.close()
