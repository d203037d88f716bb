"""The `bibnet-ops` command line: wires inventory, engine, simulator, store and screens together.

Each command group lives in its own module exposing `register(subparsers)`; this module only builds the
top-level parser and dispatches. Global options (`--config`, `--log-format`, `--log-level`) are accepted
before the command and after it, at any depth (`bibnet-ops config show --config DIR`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bibnet_ops import __version__
from bibnet_ops.store._api import StoreError

__all__ = ["GLOBAL_OPTIONS", "build_parser", "main"]

# Modules under bibnet_ops.cli, each with `register(subparsers: argparse._SubParsersAction) -> None`;
# a registered sub-parser sets `func=callable(args) -> int` with set_defaults, and `logs=True` when it
# runs as a service (its log records then go to stderr in --log-format).
COMMAND_MODULES: list[str] = [
    "config_cmd",
    "sim_cmd",
    "check_cmd",
    "collect_cmd",
    "reload_cmd",
    "report_cmd",
    "maintenance_cmd",
    "ack_cmd",
    "store_cmd",
    "dashboard_cmd",
    "demo_cmd",
    "serve_cmd",
]

GLOBAL_OPTIONS: tuple[str, ...] = ("--config", "--log-format", "--log-level")


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command accepts; below the top level they default to 'not given' so that a
    value given before the command is kept."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options") if not top else parser
    group.add_argument("--config", metavar="DIR", default=default(None),
                       help="inventory directory (default: $BIBNET_OPS_CONFIG, then ./config)")
    group.add_argument("--log-format", choices=("auto", "text", "journal", "json"), default=default("auto"),
                       help="log records on stderr: journald prefixes, text, or JSON lines "
                            "(default auto: journal under systemd, else text)")
    group.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper,
                       default=default("INFO"), help="bibnet-ops' own log level (default INFO)")


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                out.append(child)
                out.extend(_subparsers(child))
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bibnet-ops",
        description="Operations console for the national network of public libraries.",
        epilog="Exit status: 0 success; 1 unexpected error; 2 invalid configuration or usage; "
               "check: 0-3 as monitoring plugins; 130 interrupted. See docs/service.md.",
    )
    parser.add_argument("--version", action="version", version=f"bibnet-ops {__version__}")
    _add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"bibnet_ops.cli.{name}").register(sub)
    for child in _subparsers(parser):
        known = {opt for action in child._actions for opt in action.option_strings}
        if not known & set(GLOBAL_OPTIONS):
            _add_global_options(child, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    if getattr(args, "logs", False) or args.log_format != "auto":
        from bibnet_ops.cli._logging import configure_logging

        configure_logging(args.log_format, args.log_level)
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
