"""`bibnet-ops maintenance add|list|end`: planned work windows, stored and audited in the history store."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bibnet_ops.inventory import Inventory
    from bibnet_ops.store import HistoryStore

__all__ = ["parse_duration", "parse_local_time", "register"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(text: str) -> float:
    """`90m`, `2h`, `1h30m`, `3d` -> seconds."""
    match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?", text.strip())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90m, 2h, 1h30m, 3d)")
    d, h, m = (int(g or 0) for g in match.groups())
    return float(d * 86400 + h * 3600 + m * 60)


def parse_local_time(text: str, tz: str) -> float:
    """`now`, `YYYY-MM-DD HH:MM` or ISO 8601 (local time of the network unless an offset is given)."""
    if text == "now":
        return time.time()
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise SystemExit(f"error: {text!r} is not a date and time (use 'YYYY-MM-DD HH:MM' or now)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.timestamp()


def _hhmm(text: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day (HH:MM)")
    return text


def _days(text: str) -> tuple[str, ...]:
    days = tuple(d.strip().lower()[:3] for d in text.split(",") if d.strip())
    bad = [d for d in days if d not in _DAYS]
    if bad or not days:
        raise argparse.ArgumentTypeError(f"unknown day(s) {', '.join(bad) or text!r}: use {','.join(_DAYS)}")
    return days


def _open(args: argparse.Namespace, readonly: bool) -> tuple[Inventory, HistoryStore]:
    from bibnet_ops.cli._store_arg import open_store_or_exit
    from bibnet_ops.cli.config_cmd import inventory_or_exit

    inventory = inventory_or_exit(args)
    return inventory, open_store_or_exit(args, inventory, readonly=readonly, timezone=inventory.timezone)


def _cmd_add(args: argparse.Namespace) -> int:
    from bibnet_ops.store import MaintenanceWindow

    inventory, store = _open(args, readonly=False)
    try:
        if args.site and args.site not in inventory.sites:
            print(f"error: no site {args.site!r} in the inventory", file=sys.stderr)
            return 2
        if args.region and args.region not in inventory.regions:
            print(f"error: no region {args.region!r} in the inventory", file=sys.stderr)
            return 2
        scope, target = ("site", args.site) if args.site else ("region", args.region) if args.region else ("all", "")
        start = parse_local_time(args.start, inventory.timezone)
        if args.every:
            if not (args.at and args.until_time):
                print("error: a recurring window needs --at HH:MM and --until-time HH:MM", file=sys.stderr)
                return 2
            end = parse_local_time(args.end, inventory.timezone) if args.end else None
        elif args.end:
            end = parse_local_time(args.end, inventory.timezone)
        elif args.duration:
            end = start + args.duration
        else:
            print("error: give --end or --duration (or --every for a recurring window)", file=sys.stderr)
            return 2
        if end is not None and end <= start:
            print("error: the window ends before it starts", file=sys.stderr)
            return 2
        window = MaintenanceWindow(
            id=0,
            scope=scope,
            target=target,
            start=start,
            end=end,
            reason=args.reason,
            exclude_from_sla=not args.count_in_sla,
            days=args.every or (),
            local_start=args.at or "",
            local_end=args.until_time or "",
            timezone=inventory.timezone,
        )
        wid = store.add_maintenance(window, getpass.getuser(), time.time())
    finally:
        store.close()
    print(f"maintenance window {wid} added ({scope} {target})".rstrip(" )") + ")")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from bibnet_ops.reports import fmt_local

    inventory, store = _open(args, readonly=True)
    try:
        windows = store.maintenance_windows() if args.all else store.maintenance_windows(since=time.time())
        audit = store.audit_log(args.audit) if args.audit else []
    finally:
        store.close()
    tz = inventory.timezone
    if not windows:
        print("no maintenance window" + ("" if args.all else " now or ahead (use --all for past ones)"))
    for w in windows:
        when = (
            f"every {','.join(w.days)} {w.local_start}-{w.local_end} from {fmt_local(w.start, tz)}"
            if w.recurring
            else f"{fmt_local(w.start, tz)} -> {fmt_local(w.end, tz) or 'until ended'}"
        )
        if w.recurring and w.end is not None:
            when += f" until {fmt_local(w.end, tz)}"
        sla = "excluded from SLA" if w.exclude_from_sla else "counted in SLA"
        ended = f", ended by {w.ended_by}" if w.ended_at is not None else ""
        target = f"{w.scope} {w.target}".strip()
        print(f"#{w.id:<4} {target:<20} {when}  [{sla}] {w.reason}  (by {w.created_by}{ended})")
    for entry in audit:
        print(f"audit: {fmt_local(entry.time, tz)} {entry.who} {entry.action} #{entry.window_id}")
    return 0


def _cmd_end(args: argparse.Namespace) -> int:
    from bibnet_ops.store import StoreError

    _, store = _open(args, readonly=False)
    try:
        window = store.end_maintenance(args.id, getpass.getuser(), time.time())
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"maintenance window {window.id} ended")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from bibnet_ops.cli._store_arg import add_store_option

    p = sub.add_parser(
        "maintenance",
        help="plan, list and end maintenance windows",
        description="Maintenance windows silence alerts and, unless --count-in-sla, are removed "
        "from the SLA service time. Every change is audited with your login name.",
    )
    add_store_option(p)
    ms = p.add_subparsers(dest="maintenance_command", metavar="ACTION", required=True)

    add = ms.add_parser("add", help="add a one-off or recurring window")
    scope = add.add_mutually_exclusive_group(required=True)
    scope.add_argument("--site", metavar="ID", help="one site")
    scope.add_argument("--region", metavar="ID", help="every site of a region")
    scope.add_argument("--all", action="store_true", help="the whole network")
    add.add_argument(
        "--start",
        default="now",
        metavar="WHEN",
        help="'YYYY-MM-DD HH:MM' local time, or now (default); for --every: first day it applies",
    )
    add.add_argument("--end", metavar="WHEN", help="end ('YYYY-MM-DD HH:MM'); for --every: last day it applies")
    add.add_argument("--duration", type=parse_duration, metavar="DUR", help="length instead of --end (2h, 90m)")
    add.add_argument("--every", type=_days, metavar="DAYS", help="recurring on these days, e.g. fri or sat,wed")
    add.add_argument("--at", type=_hhmm, metavar="HH:MM", help="recurring: local start time")
    add.add_argument("--until-time", type=_hhmm, metavar="HH:MM", help="recurring: local end time")
    add.add_argument("--reason", required=True, help="what is being done (shown in reports)")
    add.add_argument(
        "--count-in-sla", action="store_true", help="keep the window's time in the SLA (default: excluded from it)"
    )
    add.set_defaults(func=_cmd_add)

    lst = ms.add_parser("list", help="windows now or ahead (--all for every one)")
    lst.add_argument("--all", action="store_true", help="include past and ended windows")
    lst.add_argument(
        "--audit",
        type=int,
        nargs="?",
        const=20,
        default=0,
        metavar="N",
        help="also show the last N audit entries (default 20)",
    )
    lst.set_defaults(func=_cmd_list)

    end = ms.add_parser("end", help="end a window now (a recurring one stops recurring)")
    end.add_argument("id", type=int, help="window number (see list)")
    end.set_defaults(func=_cmd_end)
