"""Setting up and inspecting a store: `bibnet-ops store init`, `store migrate` and `store status`.

`init` and `migrate` connect with their own connection as the database owner (or a superuser): they create
or upgrade the schema and, for PostgreSQL, the roles and their grants. `status` reads what any role may read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bibnet_ops.store._api import StoreError
from bibnet_ops.store._open import StoreLike, StoreTarget, open_store, resolve_store
from bibnet_ops.store._pg_roles import RoleSpec

__all__ = ["InitResult", "RoleSpec", "StoreStatus", "init_store", "store_status"]


@dataclass(frozen=True)
class InitResult:
    """What `init_store` did: the schema version before and after, the roles created or updated."""

    store: str
    version_before: int
    version: int
    roles: dict[str, str] = field(default_factory=dict)  # kind -> name
    created: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoreStatus:
    """What `store status` shows."""

    store: str
    backend: str
    version: int
    known_version: int
    timezone: str
    size_bytes: int | None
    checks: int
    transitions: int
    last_heartbeat: float | None
    roles: dict[str, str] = field(default_factory=dict)


def init_store(target: StoreLike, roles: list[RoleSpec] | None = None) -> InitResult:
    """Create or upgrade the store's schema; for PostgreSQL also create the roles and (re)apply every grant.

    Raises:
        StoreError: one line naming the store (password redacted).
    """
    resolved = resolve_store(target)
    if not resolved.is_postgres:
        if roles:
            raise StoreError(f"{resolved.display} is a SQLite file: roles exist only in a PostgreSQL store")
        from bibnet_ops.store._schema import SCHEMA_VERSION
        from bibnet_ops.store._sqlite import SqliteStore

        path = resolved.path
        before = 0
        if path is not None and path.exists():
            probe = SqliteStore(path, readonly=True)
            before = int(probe.conn.execute("PRAGMA user_version").fetchone()[0])
            probe.close()
        open_store(resolved).close()
        return InitResult(resolved.display, before, SCHEMA_VERSION)
    return _init_pg(resolved, roles or [])


def _init_pg(target: StoreTarget, roles: list[RoleSpec]) -> InitResult:
    import psycopg

    from bibnet_ops.store._pg_conn import PgDsn
    from bibnet_ops.store._pg_roles import apply_grants, check_role_name, ensure_role, known_roles
    from bibnet_ops.store._pg_schema import PG_SCHEMA_VERSION, pg_migrate

    for role in roles:
        check_role_name(role.name)
    dsn = PgDsn(target.location, target.resolve_password())
    conn = dsn.connect()
    try:
        before = pg_migrate(conn, dsn.name)
        created = []
        with conn.transaction():
            for role in roles:
                if ensure_role(conn, role):
                    created.append(role.name)
            wanted = {**known_roles(conn), **{r.kind: r.name for r in roles}}
            apply_grants(conn, wanted)
        # the store opened as a writer would: the time zone recorded and the device spans built
        open_store(target).close()
    except psycopg.Error as exc:
        raise dsn.error(exc) from None
    finally:
        conn.close()
    return InitResult(dsn.name, before, PG_SCHEMA_VERSION, wanted, tuple(created))


def store_status(target: StoreLike) -> StoreStatus:
    """The store's schema version, size, contents and roles (read-only)."""
    resolved = resolve_store(target)
    store = open_store(resolved, readonly=True)
    try:
        if resolved.is_postgres:
            from bibnet_ops.store._pg import PgStore
            from bibnet_ops.store._pg_roles import known_roles
            from bibnet_ops.store._pg_schema import PG_SCHEMA_VERSION

            assert isinstance(store, PgStore)
            with store._errors():
                size, checks, transitions, beat = store.pg.execute(
                    "SELECT pg_database_size(current_database()), (SELECT count(*) FROM checks), "
                    "(SELECT count(*) FROM transitions), (SELECT max(heartbeat) FROM runs)"
                ).fetchone()
                roles = known_roles(store.pg)
            return StoreStatus(
                resolved.display, "postgresql", store.schema_version, PG_SCHEMA_VERSION, store.timezone,
                int(size), int(checks), int(transitions), None if beat is None else beat / 1000.0, roles,
            )
        from bibnet_ops.store._schema import SCHEMA_VERSION
        from bibnet_ops.store._sqlite import SqliteStore

        assert isinstance(store, SqliteStore)
        conn = store.conn
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        checks, transitions, beat = conn.execute(
            "SELECT (SELECT count(*) FROM checks), (SELECT count(*) FROM transitions), "
            "(SELECT max(heartbeat) FROM runs)"
        ).fetchone()
        size = store.path.stat().st_size
        return StoreStatus(
            resolved.display, "sqlite", version, SCHEMA_VERSION, store.timezone, size, int(checks), int(transitions),
            None if beat is None else beat / 1000.0,
        )
    finally:
        store.close()
