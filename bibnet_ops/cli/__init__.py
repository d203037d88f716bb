"""The `bibnet-ops` command line: wires inventory, engine, simulator, store and screens together.

Each command group lives in its own module exposing `register(subparsers)`; this module only builds the
top-level parser and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bibnet_ops import __version__
from bibnet_ops.store._api import StoreError

__all__ = ["main"]

# Modules under bibnet_ops.cli, each with `register(subparsers: argparse._SubParsersAction) -> None`;
# a registered sub-parser sets `func=callable(args) -> int` with set_defaults.
COMMAND_MODULES: list[str] = [
    "config_cmd",
    "sim_cmd",
    "check_cmd",
    "collect_cmd",
    "report_cmd",
    "maintenance_cmd",
    "ack_cmd",
    "store_cmd",
    "dashboard_cmd",
    "demo_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bibnet-ops",
        description="Operations console for the national network of public libraries.",
    )
    parser.add_argument("--version", action="version", version=f"bibnet-ops {__version__}")
    parser.add_argument(
        "--config",
        metavar="DIR",
        help="inventory directory (default: $BIBNET_OPS_CONFIG, then ./config)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"bibnet_ops.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except StoreError as exc:  # a store failing or refusing mid-command: one line naming it, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `bibnet-ops config show | head` must end quietly
        sys.stderr.close()
        return 0
