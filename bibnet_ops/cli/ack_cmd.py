"""`bibnet-ops ack`: acknowledge problems, list open alerts with their acks, remove acks, read the audit.

A problem is `SITE/DEVICE/CHECK` or a site id (its whole-site problem, `site:ID`). Every change is
recorded with the login name; a running collector sees it within seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bibnet_ops.inventory import Inventory

__all__ = ["register"]


def _expiry(text: str, tz: str, now: float) -> float:
    """`--expires` as a duration (`2h`, `90m`) from now, or a local `YYYY-MM-DD HH:MM`."""
    from bibnet_ops.alerts import parse_duration

    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(tz)).timestamp()
    except ValueError:
        raise SystemExit(f"error: --expires {text!r}: use a duration (2h, 90m) or 'YYYY-MM-DD HH:MM'") from None


def _open(args: argparse.Namespace, readonly: bool) -> tuple[Inventory, Any]:
    from bibnet_ops.alerts import AlertLog
    from bibnet_ops.cli._store_arg import store_error_exit, store_target
    from bibnet_ops.cli.config_cmd import inventory_or_exit
    from bibnet_ops.store import StoreError

    inventory = inventory_or_exit(args)
    try:
        return inventory, AlertLog(store_target(args, inventory), readonly=readonly)
    except StoreError as exc:
        store_error_exit(exc)


def _check_targets(inventory: Inventory, targets: list[str]) -> list[str]:
    """Problem keys for the targets, or exit 2 naming the unknown ones."""
    import difflib

    from bibnet_ops.alerts import problem_key

    checks = {c.id for c in inventory.checks}
    keys, bad = [], []
    for target in targets:
        key = problem_key(target)
        known = key in checks if "/" in key else key.removeprefix("site:") in inventory.sites
        if known:
            keys.append(key)
        else:
            close = difflib.get_close_matches(target, [*inventory.sites, *checks], n=1)
            bad.append(f"{target}" + (f" (did you mean '{close[0]}'?)" if close else ""))
    if bad:
        print(f"error: unknown site or check: {', '.join(bad)}", file=sys.stderr)
        raise SystemExit(2)
    return keys


def _local(t: float | None, tz: str) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _cmd_add(args: argparse.Namespace) -> int:
    from bibnet_ops.alerts import acknowledge

    inventory, log = _open(args, readonly=False)
    try:
        keys = _check_targets(inventory, args.targets)
        now = time.time()
        expires = _expiry(args.expires, inventory.timezone, now) if args.expires else None
        acks = acknowledge(log, keys, args.comment, sticky=args.sticky, expires_at=expires, now=now)
        open_keys = {a.key for a in log.alerts(open_only=True)}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        log.close()
    for ack in acks:
        note = "" if ack.key in open_keys else "  (no alert open for it yet: the ack applies when it happens)"
        print(f"acknowledged {ack.key} as {ack.author}{' (sticky)' if ack.sticky else ''}{note}")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    from bibnet_ops.alerts import unacknowledge

    inventory, log = _open(args, readonly=False)
    try:
        ended = unacknowledge(log, _check_targets(inventory, args.targets))
    finally:
        log.close()
    for ack in ended:
        print(f"removed the ack of {ack.key} (by {ack.author}: {ack.comment})")
    if not ended:
        print("no active ack for these problems", file=sys.stderr)
        return 1
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    inventory, log = _open(args, readonly=True)
    tz = inventory.timezone
    try:
        now = time.time()
        alerts = log.alerts(open_only=not args.all, limit=args.limit)
        acks = log.active_acks(now) if not args.all else {}
        history = log.acks(limit=args.limit) if args.all else list(acks.values())
    finally:
        log.close()
    if args.json:
        print(json.dumps({
            "alerts": [{"id": a.id, "key": a.key, "state": a.state, "since": a.since, "opened_at": a.opened_at,
                        "closed_at": a.closed_at, "affected": list(a.affected), "receivers": list(a.receivers),
                        "ack": acks[a.key].as_dict() if a.key in acks else None} for a in alerts],
            "acks": [{**a.as_dict(), "ended_at": a.ended_at, "ended_by": a.ended_by, "end_reason": a.end_reason}
                     for a in history],
        }, ensure_ascii=False, indent=2))
        return 0
    print(f"{'open alerts' if not args.all else 'alerts'}: {len(alerts)}")
    for a in alerts:
        ack = acks.get(a.key)
        state = "recovered " + _local(a.closed_at, tz) if a.closed_at else a.state
        behind = f", {len(a.affected)} site(s) behind" if a.affected else ""
        ack_text = f"  ACK {ack.author}: {ack.comment}" if ack else ""
        print(f"  #{a.id:<5} {state:<12} {a.key:<36} since {_local(a.since, tz)}{behind}{ack_text}")
    print(f"{'active acks' if not args.all else 'acks'}: {len(history)}")
    for k in history:
        until = f" until {_local(k.expires_at, tz)}" if k.expires_at else ""
        ended = f"  [ended {_local(k.ended_at, tz)} {k.end_reason} by {k.ended_by}]" if k.ended_at else ""
        sticky = " sticky" if k.sticky else ""
        print(f"  {k.key:<36} {k.author} {_local(k.created_at, tz)}{sticky}{until}: {k.comment}{ended}")
    return 0


def _cmd_log(args: argparse.Namespace) -> int:
    inventory, log = _open(args, readonly=True)
    try:
        entries = log.audit_log(args.limit)
    finally:
        log.close()
    for e in entries:
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
        print(f"{_local(e.time, inventory.timezone)}  {e.who:<12} {e.action:<14} {e.target}  {details}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ack", help="acknowledge problems (stops reminders and escalation)",
        description="Acknowledge problems: reminders and escalation stop; the recovery is still sent. "
        "A PROBLEM is SITE/DEVICE/CHECK, or a site id for the whole site. Every change is audited with "
        "your login name.")
    from bibnet_ops.cli._store_arg import add_store_option

    common = argparse.ArgumentParser(add_help=False)
    add_store_option(common)
    cmds = p.add_subparsers(dest="ack_command", metavar="ACTION")
    add = cmds.add_parser("add", help="acknowledge one or more problems", parents=[common])
    add.add_argument("targets", nargs="+", metavar="PROBLEM")
    add.add_argument("-m", "--comment", required=True, help="what you are doing about it (shown with the problem)")
    add.add_argument("--sticky", action="store_true", help="keep the ack across recoveries (until removed/expired)")
    add.add_argument("--expires", metavar="WHEN", help="lapse after a duration (2h) or at 'YYYY-MM-DD HH:MM'")
    add.set_defaults(func=_cmd_add)
    rm = cmds.add_parser("remove", help="remove acks (reminders and escalation resume)", parents=[common])
    rm.add_argument("targets", nargs="+", metavar="PROBLEM")
    rm.set_defaults(func=_cmd_remove)
    lst = cmds.add_parser("list", help="open alerts with their acks, and active acks", parents=[common])
    lst.add_argument("--all", action="store_true", help="include recovered alerts and ended acks")
    lst.add_argument("--json", action="store_true", help="JSON output")
    lst.add_argument("--limit", type=int, default=200, help="at most this many rows (default 200)")
    lst.set_defaults(func=_cmd_list)
    audit = cmds.add_parser("log", help="who acknowledged or removed what, newest first", parents=[common])
    audit.add_argument("--limit", type=int, default=100)
    audit.set_defaults(func=_cmd_log)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
