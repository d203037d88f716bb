"""`bibnet-ops collect`: the engine without a screen, printing state changes as they happen.

Everything that listens to the engine is assembled in `build_subscribers`, the one place where the
store and alerting attach. SIGTERM and SIGINT stop the collector cleanly (polls in flight are cancelled
and the probes' clients closed) within a second. SIGHUP re-reads the inventory and templates and applies
them without a restart (`bibnet_ops.cli._service`); `--metrics` serves /metrics; `--pid-file` names the
process for `bibnet-ops reload`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bibnet_ops.cli._national_args import NationalSetupError, add_national_args, national_setup
from bibnet_ops.cli._store_arg import STORE_HELP
from bibnet_ops.events import Event, FlappingChange, Sample, SiteStatusChange, StateChange
from bibnet_ops.inventory import Inventory

__all__ = ["EventPrinter", "build_subscribers", "format_event", "register", "run"]

Subscriber = Callable[[Event], None]

log = logging.getLogger("bibnet_ops.collect")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "collect",
        help="run the engine headless, printing state changes",
        description=(
            "Poll every check of the inventory on its schedule and print each state change and site "
            "status change as it happens, one line each in local time. Stops on Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--once", action="store_true",
                        help="poll every check once, print the states found, then exit (worst status)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    parser.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    parser.add_argument("--no-store", action="store_true",
                        help="keep no history and send no alerts (a dry run of the polling)")
    parser.add_argument("--metrics", metavar="HOST:PORT",
                        help="serve OpenMetrics on http://HOST:PORT/metrics (default: [collector] metrics; "
                             "see docs/metrics.md)")
    parser.add_argument("--pid-file", metavar="PATH",
                        help="write the process id here while running, for `bibnet-ops reload` "
                             "(default: [collector] pid_file)")
    add_national_args(parser)
    parser.set_defaults(func=run, logs=True)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Africa/Algiers")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Africa/Algiers")


def format_event(event: Event, zone: ZoneInfo) -> str | None:
    """One line for a state, site or flapping change (None for samples and unchanged initial reports)."""
    if isinstance(event, Sample):
        return None
    stamp = datetime.fromtimestamp(event.time, zone).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(event, StateChange):
        if event.old == event.new:
            return None
        kind = "HARD" if event.hard else f"SOFT {event.attempt}/{event.max_attempts}"
        flap = " [flapping]" if event.flapping else ""
        return f"{stamp}  {event.check_id}  {event.old.value} -> {event.new.value}  {kind}{flap}  {event.reason}"
    if isinstance(event, SiteStatusChange):
        if event.old == event.new:
            return None
        extra = ""
        if event.affected:
            n = len(event.affected)
            extra = f"  ({n} site{'s' if n > 1 else ''} behind it: {', '.join(event.affected)})"
        elif event.root_cause:
            extra = f"  (root cause: {event.root_cause})"
        return f"{stamp}  SITE {event.site_id}  {event.old.value} -> {event.new.value}{extra}  {event.reason}".rstrip()
    if isinstance(event, FlappingChange):
        what = "started" if event.flapping else "stopped"
        return f"{stamp}  {event.check_id}  flapping {what} ({event.percent:.0f}% state change)"
    return None


def event_json(event: Event, zone: ZoneInfo) -> dict[str, Any] | None:
    """The JSON form of a change event (None for samples)."""
    if isinstance(event, Sample):
        return None
    base: dict[str, Any] = {"time": datetime.fromtimestamp(event.time, zone).isoformat(timespec="seconds")}
    if isinstance(event, StateChange):
        return {**base, "event": "state", "check": event.check_id, "site": event.site_id,
                "old": event.old.value, "new": event.new.value, "hard": event.hard, "attempt": event.attempt,
                "max_attempts": event.max_attempts, "flapping": event.flapping, "reason": event.reason}
    if isinstance(event, SiteStatusChange):
        return {**base, "event": "site", "site": event.site_id, "old": event.old.value,
                "new": event.new.value, "reason": event.reason, "root_cause": event.root_cause,
                "affected": list(event.affected)}
    if isinstance(event, FlappingChange):
        return {**base, "event": "flapping", "check": event.check_id, "site": event.site_id,
                "flapping": event.flapping, "percent": event.percent}
    return None


class EventPrinter:
    """A subscriber printing change events, one line each (JSON lines with `as_json`)."""

    def __init__(self, zone: ZoneInfo, as_json: bool = False, out: TextIO | None = None) -> None:
        self.zone = zone
        self.as_json = as_json
        self.out = out or sys.stdout

    def __call__(self, event: Event) -> None:
        if self.as_json:
            data = event_json(event, self.zone)
            if data is not None and not (data.get("old") is not None and data.get("old") == data.get("new")):
                print(json.dumps(data, ensure_ascii=False), file=self.out, flush=True)
        else:
            line = format_event(event, self.zone)
            if line is not None:
                print(line, file=self.out, flush=True)


def build_subscribers(args: argparse.Namespace, inventory: Inventory) -> list[Subscriber]:
    """Everything that listens to the collector's engine; the store and alerting attach here."""
    return [EventPrinter(_zone(inventory.timezone), as_json=bool(args.json))]


async def _collect(args: argparse.Namespace, inventory: Inventory) -> int:
    from bibnet_ops.cli._service import ServiceError, service_for
    from bibnet_ops.collector import Collector
    from bibnet_ops.store import StoreError

    no_store = bool(getattr(args, "no_store", False))
    national = None
    try:
        polled, national, share = national_setup(args, inventory, no_store)
        if national is not None:
            await national.connect()  # another running collector with this id: refused before anything runs
        engine = Collector(
            polled,
            store=False if no_store else getattr(args, "store", None),
            alerts=not no_store,
            first_spread=0.0 if args.once else 60.0,
            national=national,
            share=share,
        )
        await engine.join()
    except (StoreError, NationalSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if national is not None:
            await national.stop()
            national.close()
        return 2
    if engine.store_path is not None and not args.json:
        print(f"history: {engine.store_path}", file=sys.stderr)
        if national is not None:
            print(f"outbox: {national.outbox.path} ({len(national.owned)} of {len(national.share.sites)} "
                  f"sites of the share held)", file=sys.stderr)
    for subscriber in build_subscribers(args, inventory):
        engine.subscribe(subscriber)
    loop = asyncio.get_running_loop()
    service = None
    if not args.once:
        try:
            service = service_for(args, inventory, engine).start()
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            await engine.close()
            return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, engine.stop)
    worst = {"code": 0, "severity": 0}
    seen: set[str] = set()

    def track(event: Event) -> None:
        if isinstance(event, Sample):
            seen.add(event.check_id)
            if event.status.severity > worst["severity"]:
                worst.update(code=event.status.exit_code, severity=event.status.severity)

    engine.subscribe(track)
    log.info("collecting: %d sites, %d checks, pid %d%s", len(inventory.sites), len(engine.check_ids), os.getpid(),
             f", history in {engine.store_path}" if engine.store_path is not None else ", no history")
    runner = asyncio.create_task(engine.run())
    try:
        if args.once:
            await _until_first_round(engine, seen, runner)
            engine.stop()
        await runner
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if service is not None:
            service.stop()
    if args.once:
        _print_summary(engine, args.json)
        return worst["code"]
    return 0


async def _until_first_round(engine: Any, seen: set[str], runner: asyncio.Task[None]) -> None:
    """Wait until every check has answered once and no site decision is still pending."""
    total = len(engine.check_ids)
    quiet_since: float | None = None
    loop = asyncio.get_running_loop()
    while not runner.done():
        health = engine.health()
        if len(seen) >= total and health.in_flight == 0 and health.queued == 0:
            quiet_since = quiet_since or loop.time()
            settled = all(s.status is not None for s in engine.snapshot().sites.values())
            # a site without checks never gets a status: give up waiting on it after a moment
            if settled or loop.time() - quiet_since > 1.0:
                return
        else:
            quiet_since = None
        await asyncio.sleep(0.05)


def _print_summary(engine: Any, as_json: bool) -> None:
    snap = engine.snapshot()
    counts: dict[str, int] = {}
    for site in snap.sites.values():
        key = site.status.value if site.status is not None else "PENDING"
        counts[key] = counts.get(key, 0) + 1
    if as_json:
        print(json.dumps({"event": "summary", "sites": counts, "checks": len(snap.checks)}))
    else:
        parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        print(f"{len(snap.sites)} sites: {parts}; {len(snap.checks)} checks polled once")


def run(args: argparse.Namespace) -> int:
    """Entry point of `bibnet-ops collect`."""
    from bibnet_ops.cli.config_cmd import inventory_or_exit

    if not args.once:
        # a reload asked while the configuration is still being read at start must not end the process
        # (SIGHUP's default); the running loop installs the real handler
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    inventory = inventory_or_exit(args)
    return asyncio.run(_collect(args, inventory))
