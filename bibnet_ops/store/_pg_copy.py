"""Moving a SQLite history into a PostgreSQL store: `bibnet-ops store import FILE URL`.

A region that ran on one machine keeps its past when it joins the national store: every table is copied
row for row (ids kept, so alerts keep their deliveries and spans their devices) with PostgreSQL's COPY,
into a store that has no history yet; rollups are packed into chunks on the way (`_pg_rollups.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bibnet_ops.store._api import StoreError
from bibnet_ops.store._open import StoreLike, resolve_store
from bibnet_ops.store._pg_base import ROLLUP_COLS
from bibnet_ops.store._pg_conn import PgDsn
from bibnet_ops.store._pg_rollups import CHUNK, encode_chunk
from bibnet_ops.store._pg_schema import TABLES, pg_migrate
from bibnet_ops.store._schema import SCHEMA_VERSION

__all__ = ["import_sqlite"]

# tables with an identity column whose sequence must continue after the copied ids
_IDENTITY = ("checks", "transitions", "site_transitions", "flapping", "runs", "maintenance", "audit", "alerts",
             "alert_deliveries", "acks", "alert_audit", "devices")


def import_sqlite(
    source: str | Path, target: StoreLike, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy a SQLite history store into an empty PostgreSQL store (created or upgraded first); rows per table.

    Raises:
        StoreError: the source is not a current SQLite store, or the target already holds history.
    """
    import psycopg

    resolved = resolve_store(target)
    if not resolved.is_postgres:
        raise StoreError(f"{resolved.display} is not a postgresql:// URL")
    path = Path(source)
    if not path.exists():
        raise StoreError(f"history store {path} does not exist")
    lite = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    version = int(lite.execute("PRAGMA user_version").fetchone()[0])
    if version != SCHEMA_VERSION:
        lite.close()
        raise StoreError(f"{path} has schema version {version}: open it once with this bibnet-ops (any command "
                         f"that writes, e.g. `bibnet-ops store init {path}`) to upgrade it to {SCHEMA_VERSION}")
    dsn = PgDsn(resolved.location, resolved.resolve_password())
    conn = dsn.connect()
    counts: dict[str, int] = {}
    try:
        pg_migrate(conn, dsn.name)
        with conn.transaction():
            busy = conn.execute("SELECT EXISTS (SELECT 1 FROM checks) OR EXISTS (SELECT 1 FROM transitions)")
            if busy.fetchone()[0]:
                raise StoreError(f"{dsn.name} already holds history: import into an empty store only")
            conn.execute("DELETE FROM meta")
            present = {row[0] for row in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in TABLES:
                if table == "schema_version" or table not in present:  # PostgreSQL-only (national) tables
                    continue
                copy = _copy_rollups if table.startswith("rollup_") else _copy_table
                counts[table] = copy(lite, conn, table)
                if progress is not None:
                    progress(table, counts[table])
            for table in _IDENTITY:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) "
                    f"FROM {table}"
                )
        conn.execute("ANALYZE")
    except psycopg.Error as exc:
        raise dsn.error(exc) from None
    finally:
        conn.close()
        lite.close()
    return counts


def _copy_table(lite: sqlite3.Connection, conn: Any, table: str) -> int:
    columns = [row[1] for row in lite.execute(f"PRAGMA table_info({table})")]
    names = ", ".join(f'"{c}"' for c in columns)
    rows = 0
    with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in lite.execute(f"SELECT {names} FROM {table}"):
            copy.write_row(row)
            rows += 1
    return rows


def _copy_rollups(lite: sqlite3.Connection, conn: Any, table: str) -> int:
    """A rollup table, its rows packed into chunks on the way (see `_pg_rollups.py`); returns buckets copied."""
    size = CHUNK[table.removeprefix("rollup_")]
    rows = 0
    key: tuple[int, int] | None = None
    buckets: dict[int, tuple[Any, ...]] = {}
    with conn.cursor().copy(f"COPY {table} (check_id, chunk, n, peak, delta, aggs) FROM STDIN") as copy:
        copy.set_types(["int4", "int4", "int4[]", "float8[]", "float8[]", "bytea"])
        for check_id, bucket, *agg in lite.execute(f"SELECT check_id, bucket, {ROLLUP_COLS} FROM {table} "
                                                   f"ORDER BY check_id, bucket"):
            here = (check_id, bucket // size)
            if here != key:
                if key is not None:
                    copy.write_row((*key, *encode_chunk(buckets, size)))
                key, buckets = here, {}
            buckets[bucket % size] = tuple(agg)
            rows += 1
        if key is not None:
            copy.write_row((*key, *encode_chunk(buckets, size)))
    return rows
