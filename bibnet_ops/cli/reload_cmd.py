"""`bibnet-ops reload`: check the configuration, then tell the running collector to re-read it (SIGHUP).

The collector is found by its pid file (`--pid-file`, else `[collector] pid_file`), else by the run
record it keeps in the history store (a live process of this host, newest first). The configuration is
validated here first, as `nginx -t` does before a reload: an invalid one is reported with file:line
and nothing is sent (exit 2). With a pid file, the collector's answer is awaited and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["find_collectors", "register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reload",
        help="make the running collector re-read its configuration",
        description=(
            "Validate the inventory and templates, then send SIGHUP to the running `bibnet-ops collect`: "
            "added sites start polling, removed ones stop, changed checks take their new settings, and "
            "every other check keeps its state. Exit status: 0 reloaded (or signal sent), 1 no collector "
            "found, 2 invalid configuration or refused by the collector."
        ),
    )
    parser.add_argument("--pid-file", metavar="PATH", help="the collector's pid file (default: [collector] pid_file)")
    parser.add_argument("--pid", type=int, metavar="PID", help="signal this process id")
    parser.add_argument("--store", metavar="PATH",
                        help="history store whose run record names the collector (default: [collector] store)")
    parser.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for the collector's answer when it has a pid file (default 30)")
    parser.set_defaults(func=run, logs=True)


def find_collectors(store: Path, within: float = 30 * 86400.0) -> list[int]:
    """Process ids of collectors of this host still running per the store's run records, newest first."""
    from bibnet_ops.cli._service import collector_process
    from bibnet_ops.store import SqliteStore, StoreError

    if not store.exists():
        return []
    try:
        db = SqliteStore(store, readonly=True)
    except StoreError:
        return []
    try:
        now = time.time()
        runs = db.runs(now - within, now + 1)
    finally:
        db.close()
    host = socket.gethostname()
    pids = [r.pid for r in sorted(runs, key=lambda r: r.started, reverse=True)
            if r.stopped is None and r.host == host and r.pid and r.pid != os.getpid()]
    return [pid for pid in dict.fromkeys(pids) if collector_process(pid)]


def _wait_for_answer(status: Path, before: float | None, pid: int, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stamp = status.stat().st_mtime_ns
            if before is None or stamp != before:
                data = json.loads(status.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("pid") == pid:
                    return data
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return None


def run(args: argparse.Namespace) -> int:
    """Entry point of `bibnet-ops reload`."""
    from bibnet_ops.cli._service import collector_process, pid_file_path, read_pid_file, status_path
    from bibnet_ops.cli.config_cmd import inventory_or_exit
    from bibnet_ops.store import store_path

    inventory = inventory_or_exit(args)  # exits 2 listing file:line issues: nothing is sent
    pid_file = pid_file_path(args.pid_file, inventory)
    pid: int | None = args.pid
    if pid is not None and not collector_process(pid):
        print(f"bibnet-ops reload: process {pid} is not a running bibnet-ops collector", file=sys.stderr)
        return 1
    if pid is None and pid_file is not None:
        pid = read_pid_file(pid_file)
        if pid is None:
            print(f"bibnet-ops reload: no running collector in {pid_file}", file=sys.stderr)
            return 1
    if pid is None:
        db = Path(args.store) if args.store else store_path(inventory.settings, inventory.root)
        pids = find_collectors(db)
        if not pids:
            print(f"bibnet-ops reload: no running collector found (no pid file; no live run in {db}); "
                  "give --pid-file or --pid", file=sys.stderr)
            return 1
        if len(pids) > 1:
            print(f"bibnet-ops reload: several collectors write {db} (pids {', '.join(map(str, pids))}); "
                  "choose one with --pid", file=sys.stderr)
            return 1
        pid = pids[0]
    status = status_path(pid_file) if pid_file is not None and args.pid is None else None
    before = None
    if status is not None:
        try:
            before = status.stat().st_mtime_ns
        except OSError:
            before = None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"bibnet-ops reload: process {pid} is gone", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"bibnet-ops reload: not allowed to signal process {pid} (run as its user)", file=sys.stderr)
        return 1
    checks = len(inventory.checks)
    print(f"configuration valid ({len(inventory.sites)} sites, {checks} checks); reload sent to collector pid {pid}")
    if status is None or args.wait <= 0:
        return 0
    answer = _wait_for_answer(status, before, pid, args.wait)
    if answer is None:
        print(f"bibnet-ops reload: no answer from pid {pid} within {args.wait:g} s (see its log)", file=sys.stderr)
        return 1
    if answer.get("ok"):
        print(f"reloaded: {answer.get('summary', '')}")
        return 0
    for line in answer.get("errors", []):
        print(line, file=sys.stderr)
    print("bibnet-ops reload: the collector refused the new configuration; the running one stays", file=sys.stderr)
    return 2
