"""`bibnet-ops store init|migrate|status`: create, upgrade and inspect a history store (SQLite or PostgreSQL)."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["register"]


def _target(args: argparse.Namespace) -> Any:
    """The store of the positional argument, else the configured one (reading the inventory only then)."""
    from bibnet_ops.model import SecretRef
    from bibnet_ops.store import resolve_store

    password = SecretRef(args.password) if getattr(args, "password", None) else None
    if args.target:
        target = resolve_store(args.target)
    else:
        from bibnet_ops.cli.config_cmd import inventory_or_exit

        inventory = inventory_or_exit(args)
        target = resolve_store(None, inventory.settings, inventory.root)
    return target if password is None else dataclasses.replace(target, password=password)


def _secret(text: str | None, option: str) -> str | None:
    """A role password from its reference (never literal: it would stay in the shell history)."""
    from bibnet_ops.cli._store_arg import store_error_exit
    from bibnet_ops.model import SecretError, SecretRef

    if text is None:
        return None
    if not text.startswith(("env:", "file:")):
        store_error_exit(ValueError(f"{option} must be a reference (env:NAME or file:PATH), never the password itself"))
    try:
        return SecretRef(text).resolve()
    except SecretError as exc:
        store_error_exit(ValueError(f"{option}: {exc}"))


def _cmd_init(args: argparse.Namespace) -> int:
    from bibnet_ops.cli._store_arg import store_error_exit
    from bibnet_ops.store import RoleSpec, StoreError, init_store

    roles = [
        RoleSpec(kind, name, _secret(getattr(args, f"{kind}_password"), f"--{kind}-password"))
        for kind in ("writer", "reader", "operator")
        if (name := getattr(args, f"{kind}_role"))
    ]
    try:
        result = init_store(_target(args), roles)
    except StoreError as exc:
        store_error_exit(exc)
    if result.version_before == result.version:
        print(f"{result.store}: schema version {result.version} (already current)")
    else:
        print(f"{result.store}: schema version {result.version_before} -> {result.version}")
    for kind, name in sorted(result.roles.items()):
        state = "created" if name in result.created else "granted"
        print(f"  {kind} role {name}: {state} ({_ROLE_SUMMARY[kind]})")
    return 0


_ROLE_SUMMARY = {
    "writer": "collectors: writes history, alerts, acks and maintenance; no DDL, audit append-only",
    "reader": "read-only: SELECT only, read-only sessions",
    "operator": "console: reads everything, writes acks and maintenance windows only",
}


def _cmd_migrate(args: argparse.Namespace) -> int:
    return _cmd_init(args)


def _cmd_import(args: argparse.Namespace) -> int:
    import time

    from bibnet_ops.cli._store_arg import store_error_exit
    from bibnet_ops.store import StoreError, import_sqlite

    started = time.monotonic()
    try:
        target = _target(args)
        counts = import_sqlite(args.source, target, lambda table, n: print(f"  {table:<17} {n:>12,} rows"))
    except StoreError as exc:
        store_error_exit(exc)
    print(f"imported {args.source} into {target} ({sum(counts.values()):,} rows in {time.monotonic() - started:.0f} s)")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from bibnet_ops.cli._store_arg import store_error_exit
    from bibnet_ops.store import StoreError, store_status

    try:
        status = store_status(_target(args))
    except StoreError as exc:
        store_error_exit(exc)
    tz = ZoneInfo(status.timezone)
    beat = "never" if status.last_heartbeat is None else datetime.fromtimestamp(status.last_heartbeat, tz).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    print(f"store:          {status.store} ({status.backend})")
    behind = "" if status.version == status.known_version else f" (this bibnet-ops knows {status.known_version})"
    print(f"schema version: {status.version}{behind}")
    print(f"time zone:      {status.timezone}")
    if status.size_bytes is not None:
        print(f"size:           {status.size_bytes / 1e6:.1f} MB")
    print(f"checks:         {status.checks}")
    print(f"transitions:    {status.transitions}")
    print(f"last heartbeat: {beat}")
    for kind, name in sorted(status.roles.items()):
        print(f"{kind + ' role:':<16}{name}")
    return 0 if status.version == status.known_version else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "store",
        help="create, upgrade and inspect the history store (SQLite or PostgreSQL)",
        description="Create or upgrade a history store and, for PostgreSQL, the roles that may use it. "
        "Run init and migrate as the database owner. See docs/store.md.",
    )
    cmds = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "target", nargs="?", metavar="PATH|URL",
        help="the store: a SQLite file or postgresql://owner@host/db (default: [collector] store)",
    )
    common.add_argument(
        "--password", metavar="REF",
        help="password of the URL's user as env:NAME or file:PATH (else PGPASSWORD or ~/.pgpass)",
    )
    init = cmds.add_parser(
        "init", parents=[common], help="create or upgrade the schema; create the roles and grant them",
        description="Create the schema (or upgrade it) and, for PostgreSQL, create or update the roles "
        "and (re)apply every grant. Safe to run again.",
    )
    for kind, what in (
        ("writer", "collectors (INSERT/UPDATE on what collectors write)"),
        ("reader", "ministry staff and read-only dashboards (SELECT only)"),
        ("operator", "a console that acknowledges and plans maintenance (optional)"),
    ):
        init.add_argument(f"--{kind}-role", metavar="NAME", help=f"role for {what}")
        init.add_argument(f"--{kind}-password", metavar="REF", help="its password: env:NAME or file:PATH")
    init.set_defaults(func=_cmd_init)
    mig = cmds.add_parser(
        "migrate", parents=[common], help="upgrade the schema to this version and re-apply the roles' grants"
    )
    mig.set_defaults(func=_cmd_migrate, writer_role=None, reader_role=None, operator_role=None,
                     writer_password=None, reader_password=None, operator_password=None)
    imp = cmds.add_parser(
        "import", help="copy a SQLite history into an empty PostgreSQL store (a region joining the national one)"
    )
    imp.add_argument("source", metavar="FILE", help="the SQLite history store to copy (left unchanged)")
    imp.add_argument("target", metavar="URL", help="postgresql://owner@host/db, created or upgraded first")
    imp.add_argument("--password", metavar="REF", help="password of the URL's user as env:NAME or file:PATH")
    imp.set_defaults(func=_cmd_import)
    status = cmds.add_parser("status", parents=[common], help="schema version, size, contents and roles")
    status.set_defaults(func=_cmd_status)
