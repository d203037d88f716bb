"""The `--store` option shared by collect, dashboard, report, ack and maintenance: a SQLite path or a URL."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from bibnet_ops.inventory import Inventory
    from bibnet_ops.store import HistoryStore, StoreTarget

__all__ = ["STORE_HELP", "add_store_option", "open_store_or_exit", "store_error_exit", "store_target"]

STORE_HELP = (
    "history store: a SQLite file or a postgresql://user@host/db URL (its password by PGPASSWORD, ~/.pgpass "
    "or [collector] store_password; one in the URL is accepted and never shown) "
    "(default: [collector] store, else the user data directory)"
)


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)


def store_target(args: argparse.Namespace, inventory: Inventory) -> StoreTarget:
    """The store named by --store, else the configured one."""
    from bibnet_ops.store import resolve_store

    return resolve_store(getattr(args, "store", None) or None, inventory.settings, inventory.root)


def store_error_exit(exc: Exception) -> NoReturn:
    """One line on standard error, exit 2: a store that cannot be used is bad input, never a traceback."""
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2)


def open_store_or_exit(
    args: argparse.Namespace, inventory: Inventory, *, readonly: bool, **kwargs: Any
) -> HistoryStore:
    """Open the store of --store (else the configured one); exit 2 with its one-line reason if it cannot be."""
    from bibnet_ops.store import StoreError, open_store

    try:
        return open_store(store_target(args, inventory), readonly=readonly, **kwargs)
    except StoreError as exc:
        store_error_exit(exc)
