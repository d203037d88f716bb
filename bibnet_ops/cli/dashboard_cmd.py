"""`bibnet-ops dashboard`: run the collector on the configured inventory and show the live dashboard.

The collector (engine, history writer, alerting) runs in a child process (`bibnet_ops.remote`), so the
dashboard's process only draws: keys are answered at once however many devices are polled, and the first
frame does not wait for the child to load the inventory or open the store.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bibnet_ops.cli._store_arg import STORE_HELP
from bibnet_ops.inventory import Inventory

__all__ = ["add_display_options", "keymap_or_exit", "register", "run_dashboard"]

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
    parser.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    parser.add_argument("--read-only", action="store_true",
                        help="everything visible, nothing changeable (also [dashboard] read_only = true)")
    parser.add_argument("--keymap", metavar="FILE",
                        help="your own keys, by binding id (default: $BIBNET_OPS_KEYMAP, else "
                             "~/.config/bibnet-ops/keymap.toml if it exists; see docs/dashboard.md)")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--tiles", dest="tiles", action="store_true", default=None,
                      help="start with the site tile grid (default above 200 sites)")
    view.add_argument("--tree", dest="tiles", action="store_false", help="start with the region/site tree")


def keymap_or_exit(args: argparse.Namespace) -> dict[str, str]:
    """The keymap of `--keymap` or the default place, checked; every problem printed as file:line: [key], exit 2."""
    from bibnet_ops.inventory import ConfigError
    from bibnet_ops.tui.keymap import default_keymap_path, load_keymap

    path = Path(args.keymap) if getattr(args, "keymap", None) else default_keymap_path()
    if path is None:
        return {}
    try:
        return load_keymap(path)
    except ConfigError as err:
        for issue in err.issues:
            print(issue, file=sys.stderr)
        print(f"bibnet-ops: {len(err.issues)} error(s) in the keymap", file=sys.stderr)
        raise SystemExit(2) from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="live network dashboard (engine + screens) on the configured inventory",
        description="Poll the inventory's devices and show the network map, problems and events live. "
                    "Keys: ? for help, q to quit.",
    )
    add_display_options(parser)
    parser.add_argument("--attach", metavar="SOCKET",
                        help="show the collector another bibnet-ops process runs on this Unix socket instead of "
                             "starting one (bibnet-ops serve starts each browser tab's dashboard so)")
    parser.set_defaults(func=_run)


def _follow_server() -> None:
    """In a served tab's dashboard: get SIGTERM when the server process dies (Linux), and leave if it already has."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent or parent == 1:  # it died before the request took effect
        raise SystemExit(0)


def _run(args: argparse.Namespace) -> int:
    from bibnet_ops.cli.config_cmd import inventory_or_exit

    return run_dashboard(inventory_or_exit(args), args)


def run_dashboard(
    inventory: Inventory,
    args: argparse.Namespace,
    first_spread: float = 60.0,
    store: Path | None = None,
    keymap: dict[str, str] | None = None,
) -> int:
    """Start the collector (engine, history, alerting) in a child process, run the dashboard, stop both.

    Args:
        inventory: what to poll and show; the child reads the same directory.
        args: the display options (see `add_display_options`).
        first_spread: seconds over which the engine spreads its first polls.
        store: history database; default `--store`, else the configured one.
        keymap: the checked keymap (default: read now with `keymap_or_exit`).
    """
    from bibnet_ops.alerts import access_policy
    from bibnet_ops.remote import CollectorProcess
    from bibnet_ops.tui.app import DashboardApp
    from bibnet_ops.tui.changes import ConsoleChanges

    if keymap is None:
        keymap = keymap_or_exit(args)
    from bibnet_ops.cli._store_arg import store_target

    target = store_target(args, inventory) if store is None else None
    if target is not None and target.is_postgres:
        from bibnet_ops.cli._national_console import run_national_console

        return run_national_console(inventory, args, target, keymap)
    given_store = store or getattr(args, "store", None)
    attach = getattr(args, "attach", None)
    if attach:
        # A served tab: the collector belongs to `bibnet-ops serve`, and this process must not outlive it.
        _follow_server()
        collector = CollectorProcess.attach(inventory, attach, store=given_store)
    else:
        collector = CollectorProcess(inventory, store=given_store, first_spread=first_spread)
    # Acks go to the child's AlertManager over its socket; windows through the store, which the child follows.
    changes = ConsoleChanges(
        access_policy(inventory.settings, read_only=bool(getattr(args, "read_only", False))),
        acks=collector,
        store_path=collector.store_path,
        timezone=inventory.timezone,
    )
    collector.start()
    failure: str | None = None
    try:
        app = DashboardApp(
            inventory,
            collector,
            lang=args.lang,
            arabic=args.arabic,
            theme=args.theme,
            refresh=max(0.2, args.refresh),
            tiles=args.tiles,
            changes=changes,
            store_path=collector.store_path,
            keymap=keymap,
        )
        app.run()
        code = int(app.return_code or 0)
    finally:
        failure = collector.collector_stopped()
        tail = collector.log_tail() if failure is not None else ""
        collector.stop(on_slow=lambda: print("bibnet-ops: saving history…", file=sys.stderr, flush=True))
        changes.close()
    if failure is None:
        return code
    # The screen is gone: say why the collector stopped where the technician can still read it.
    print(f"bibnet-ops: the collector stopped: {failure}", file=sys.stderr)
    if tail:
        print(tail, file=sys.stderr)
    return code or 1
