"""`bibnet-ops serve`: the dashboard in a browser tab, for staff without an SSH client (textual-serve).

One collector polls for every tab: `serve` starts it in a child process listening on a private Unix socket,
and each browser tab gets a dashboard process of its own (textual-serve's model) that attaches to that socket
(`dashboard --attach`) instead of starting a collector. Ten tabs are ten screens on one set of polls, one
history writer and one alerting manager: no device is polled ten times, no alert is sent ten times.
Closing a tab ends its dashboard process (asked to quit, then killed if it does not within a few seconds);
stopping `serve` ends every tab and then the collector, which commits its history first. Served dashboards
are read-only unless `--writable` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bibnet_ops.cli.dashboard_cmd import add_display_options, keymap_or_exit

__all__ = ["register", "tab_command"]

# Seconds a tab's dashboard gets to quit once its tab is closed, before it is killed.
TAB_QUIT_TIMEOUT = 5.0
# Seconds `serve` waits for the collector to load the inventory and open the store before giving up.
READY_TIMEOUT = 120.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="the dashboard in a web browser (one collector, one dashboard per tab)",
        description="Serve the live dashboard over HTTP for a web browser: each tab gets its own dashboard, "
                    "all fed by one collector started here. Read-only unless --writable. The page has no "
                    "login: keep it on loopback and reach it through an SSH tunnel or a reverse proxy that "
                    "authenticates (see docs/dashboard.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--writable", action="store_true",
                        help="let the tabs acknowledge problems and start maintenance windows "
                             "(default: read-only, as a wall screen or a ministry console should be)")
    parser.add_argument("--public-url", metavar="URL",
                        help="the address browsers use, when behind a reverse proxy (default: http://HOST:PORT)")
    add_display_options(parser)
    parser.set_defaults(func=_run)


def tab_command(args: argparse.Namespace, config_dir: Path, socket_path: Path) -> str:
    """The shell command textual-serve runs for each tab: a dashboard attached to the served collector.

    `exec` makes the dashboard the server's own child (no shell in between), so it can follow the server's
    death and textual-serve's process handle is the dashboard itself.
    """
    argv = [sys.executable, "-m", "bibnet_ops", "--config", str(config_dir), "dashboard",
            "--attach", str(socket_path), "--arabic", args.arabic, "--theme", args.theme,
            "--refresh", f"{args.refresh:g}"]
    if args.lang:
        argv += ["--lang", args.lang]
    if args.store:
        # a path is made absolute (a tab may not share the server's working directory); a URL is kept
        argv += ["--store", args.store if "://" in args.store else str(Path(args.store).resolve())]
    if args.keymap:
        argv += ["--keymap", str(Path(args.keymap).resolve())]
    if args.tiles is not None:
        argv.append("--tiles" if args.tiles else "--tree")
    if args.read_only or not args.writable:
        argv.append("--read-only")
    return "exec " + shlex.join(argv)


def _run(args: argparse.Namespace) -> int:
    from bibnet_ops.cli.config_cmd import inventory_or_exit
    from bibnet_ops.remote import CollectorProcess

    inventory = inventory_or_exit(args)
    keymap_or_exit(args)  # a bad keymap is refused here, not in every tab
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print(f"bibnet-ops serve: warning: the page has no login and {args.host} is not loopback; anyone who "
              "reaches it sees the network (use an SSH tunnel or an authenticating reverse proxy)", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="bibnet-serve-"))  # mode 0700: only this user reaches the socket
    socket_path = workdir / "collector.sock"
    collector = CollectorProcess(inventory, store=args.store, listen=socket_path, stream=False)
    collector.start()
    try:
        reason = _wait_ready(collector)
        if reason is not None:
            print(f"bibnet-ops serve: the collector did not start: {reason}", file=sys.stderr)
            tail = collector.log_tail()
            if tail:
                print(tail, file=sys.stderr)
            return 2
        # The tabs import this very package, wherever it was run from.
        package_root = str(Path(__file__).resolve().parents[2])
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        from bibnet_ops.tui.served import DashboardServer

        mode = "read-only" if args.read_only or not args.writable else "writable"
        checks = collector.ready.checks if collector.ready is not None else len(inventory.checks)
        address = args.public_url or f"http://{args.host}:{args.port}/"
        server = DashboardServer(
            tab_command(args, Path(inventory.root).resolve(), socket_path),
            host=args.host,
            port=args.port,
            title=f"bibnet-ops — {inventory.name}" if inventory.name else "bibnet-ops",
            public_url=args.public_url,
            banner=f"bibnet-ops serve: {address} ({mode}; one collector polls {checks} checks for every tab; "
                   "ctrl+c stops)",
            tab_quit_timeout=TAB_QUIT_TIMEOUT,
            # A served page without its collector would only show stale states: stop serving, say why.
            watch=collector.collector_stopped,
        )
        server.serve()
        if server.collector_lost is not None:
            print(f"bibnet-ops serve: the collector stopped: {server.collector_lost}", file=sys.stderr)
            return 1
        return 0
    finally:
        collector.stop(on_slow=lambda: print("bibnet-ops: saving history…", file=sys.stderr, flush=True))
        with contextlib.suppress(OSError):
            socket_path.unlink()
        with contextlib.suppress(OSError):
            workdir.rmdir()


def _wait_ready(collector: Any) -> str | None:
    """Wait until the collector polls (None) or says why it cannot (its reason)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        stopped = collector.collector_stopped()
        if stopped is not None:
            return str(stopped)
        if collector.ready is not None:
            return None
        time.sleep(0.05)
    return f"not ready after {READY_TIMEOUT:.0f} s"

