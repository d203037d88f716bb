"""The roles of a PostgreSQL store, enforced by PostgreSQL itself: who may write what.

- writer (collectors): reads everything; INSERT and UPDATE on what collectors write (history, alerts, acks
  cleared by a recovery) and on what people write through it (maintenance windows, acks); DELETE only where
  retention and the device-span upkeep delete (transitions, rollups, device spans). No DDL, no TRUNCATE, and
  the audit tables are append-only.
- reader (ministry staff, read-only dashboards): SELECT only, and its sessions are read-only by default;
  whatever a modified client sends, PostgreSQL refuses any change.
- operator (optional: a national console that acknowledges and plans maintenance): reads everything;
  INSERT and UPDATE on maintenance windows, acks and their audit, nothing else.

Grants are re-applied after every migration (`store migrate`), so tables added later get them too; the role
names are kept in the store's `meta` table for that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bibnet_ops.store._api import StoreError
from bibnet_ops.store._pg_schema import TABLES

__all__ = ["ROLE_KINDS", "RoleSpec", "apply_grants", "ensure_role", "known_roles"]

ROLE_KINDS = ("writer", "reader", "operator")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# tables where rows are deleted by the writer (retention, device spans recomputed from the transitions)
_WRITER_DELETES = ("transitions", "rollup_minute", "rollup_hour", "rollup_day", "device_spans")


@dataclass(frozen=True)
class RoleSpec:
    """A role to create or update: its kind (writer, reader, operator), name and password (None: keep/none)."""

    kind: str
    name: str
    password: str | None = None


def check_role_name(name: str) -> str:
    """A role name as PostgreSQL would keep it unquoted (lowercase letters, digits, _), or StoreError."""
    if not _NAME.match(name):
        raise StoreError(f"role name {name!r}: use lowercase letters, digits and _ (at most 63), not a digit first")
    return name


def ensure_role(conn: Any, role: RoleSpec) -> bool:
    """Create the role (LOGIN) if missing, set its password if one is given; True if it was created."""
    from psycopg import sql

    name = sql.Identifier(check_role_name(role.name))
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role.name,)).fetchone() is not None
    password = sql.SQL(" PASSWORD {}").format(sql.Literal(role.password)) if role.password is not None else sql.SQL("")
    verb = "ALTER" if exists else "CREATE"
    conn.execute(sql.SQL(verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE{}").format(name, password))
    if role.kind == "reader":
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(name))
    return not exists


def apply_grants(conn: Any, roles: dict[str, str]) -> None:
    """Grant each role (kind -> name) exactly what its kind may do on the store's tables; remember the names."""
    from psycopg import sql

    database = sql.Identifier(conn.execute("SELECT current_database()").fetchone()[0])
    schema = sql.Identifier(conn.execute("SELECT current_schema()").fetchone()[0])
    # nobody but the owner creates objects in the store's schema (PostgreSQL < 15 lets PUBLIC do it)
    conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema))
    present = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    tables = [t for t in TABLES if t in present]
    for kind, name in roles.items():
        role = sql.Identifier(check_role_name(name))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
        for table in tables:
            ident = sql.Identifier(table)
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(ident, role))
            conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(sql.SQL(_privileges(kind, table)), ident, role))
        conn.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema, role))
        if kind != "reader":
            conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, role))
        conn.execute(
            "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (f"role.{kind}", name),
        )


def _privileges(kind: str, table: str) -> str:
    use = TABLES[table]
    if kind == "reader" or use == "owner":
        return "SELECT"
    if kind == "operator":
        return "SELECT, INSERT, UPDATE" if use == "operator" else "SELECT"
    if table in ("audit", "alert_audit"):
        return "SELECT, INSERT"  # the audit is append-only, even for collectors
    return "SELECT, INSERT, UPDATE" + (", DELETE" if table in _WRITER_DELETES else "")


def known_roles(conn: Any) -> dict[str, str]:
    """The roles `store init` set up on this store (kind -> name)."""
    rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE 'role.%' ORDER BY key").fetchall()
    return {key.removeprefix("role."): value for key, value in rows}
