"""`bibnet-ops report`: availability, SLA, outages, pages digitised and sync lag over a period."""

from __future__ import annotations

import argparse
import re
import sys
from calendar import monthrange
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bibnet_ops.store import HistoryStore

__all__ = ["open_history", "parse_month", "register"]

_EXTENSIONS = {".csv": "csv", ".json": "json", ".md": "md", ".html": "html", ".htm": "html"}


def parse_month(text: str) -> tuple[date, date]:
    """`YYYY-MM` -> first and last day of that month."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not match or not 1 <= int(match[2]) <= 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (use YYYY-MM, e.g. 2026-03)")
    year, month = int(match[1]), int(match[2])
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def open_history(args: argparse.Namespace, settings: dict[str, Any], root: Path) -> HistoryStore:
    """Open the store named by --store, else the one configured, read-only; exit 2 with its reason if it cannot be."""
    from bibnet_ops.cli._store_arg import store_error_exit
    from bibnet_ops.store import StoreError, open_store, resolve_store

    try:
        return open_store(resolve_store(getattr(args, "store", None) or None, settings, root), readonly=True)
    except StoreError as exc:
        store_error_exit(exc)


def _cmd_report(args: argparse.Namespace) -> int:
    from bibnet_ops.cli.config_cmd import inventory_or_exit
    from bibnet_ops.reports import build_report, render_report

    if args.month:
        first, last = args.month
    elif args.date_from and args.date_to:
        first, last = args.date_from, args.date_to
    else:
        print("error: give --month YYYY-MM, or --from DATE and --to DATE", file=sys.stderr)
        return 2
    if last < first:
        print(f"error: --to {last} is before --from {first}", file=sys.stderr)
        return 2
    fmt = args.format or (_EXTENSIONS.get(Path(args.output).suffix.lower()) if args.output else None) or "md"
    inventory = inventory_or_exit(args)
    store = open_history(args, inventory.settings, inventory.root)
    try:
        report = build_report(store, inventory, first, last, by=args.by, hours=args.hours)
    finally:
        store.close()
    rendered = render_report(report, fmt)
    data = rendered if isinstance(rendered, bytes) else rendered.encode("utf-8")
    if args.output and args.output != "-":
        Path(args.output).write_bytes(data)
        total = report.total
        pct = "no data" if total is None or total.availability_pct is None else f"{total.availability_pct:.3f} %"
        print(f"wrote {args.output} ({fmt}, {len(report.rows)} rows, network availability {pct})", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from bibnet_ops.cli._store_arg import add_store_option
    from bibnet_ops.reports import FORMATS, GROUPINGS, HOURS_MODES

    p = sub.add_parser(
        "report",
        help="availability/SLA and digitisation report over a period",
        description="Availability and SLA per site, region or device kind over a period, with outages, "
        "MTTR, pages digitised and catalogue sync lag, computed from the history store. The accounting "
        "rules are written into the report.",
    )
    period = p.add_argument_group("period (local dates, inclusive)")
    period.add_argument("--month", type=parse_month, metavar="YYYY-MM", help="a calendar month")
    period.add_argument("--from", dest="date_from", type=_date, metavar="DATE", help="first day (YYYY-MM-DD)")
    period.add_argument("--to", dest="date_to", type=_date, metavar="DATE", help="last day (YYYY-MM-DD)")
    p.add_argument("--by", choices=GROUPINGS, default="site", help="one row per ... (default: site)")
    p.add_argument(
        "--hours",
        choices=HOURS_MODES,
        default="opening",
        help="service period: each site's opening hours, or 24x7 (default: opening)",
    )
    p.add_argument("--format", choices=FORMATS, help="output format (default: from -o's extension, else md)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    add_store_option(p)
    p.set_defaults(func=_cmd_report)
