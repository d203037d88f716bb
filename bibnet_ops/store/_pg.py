"""The PostgreSQL history store: the central store of a national network, written by several collectors.

One `PgStore` object belongs to one thread, like `SqliteStore`; it borrows one connection from its
process's pool for its lifetime (`close()` gives it back). A read-only store's connection is read-only
at the session level; what a role may do is enforced by PostgreSQL itself (`bibnet-ops store init`).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from bibnet_ops.store._api import StoreError
from bibnet_ops.store._pg_conn import PgDsn, QmarkConn
from bibnet_ops.store._pg_maint import _PgMaintenanceMixin
from bibnet_ops.store._pg_query import _PgQueryMixin
from bibnet_ops.store._pg_schema import PG_SCHEMA_VERSION, pg_migrate, pg_schema_version, too_new
from bibnet_ops.store._pg_upkeep import _PgUpkeepMixin
from bibnet_ops.store._pg_write import _PgWriteMixin
from bibnet_ops.store._sqlite_retention import Retention

__all__ = ["PgStore"]


class PgStore(_PgWriteMixin, _PgUpkeepMixin, _PgQueryMixin, _PgMaintenanceMixin):
    """History in a PostgreSQL database (see the module docstring for threading rules).

    Args:
        dsn: a `postgresql://` URL (a password in it is accepted and never shown).
        password: the password from a reference (`[collector] store_password`), else libpq's own sources.
        readonly: open for reading only; the schema must exist (no migration is attempted).
        timezone: the time zone of daily rollups, recorded by the first writer (a store keeps its own).
        retention: how long rows are kept (the writer's retention passes).
    """

    def __init__(
        self,
        dsn: str,
        *,
        password: str | None = None,
        readonly: bool = False,
        timezone: str = "Africa/Algiers",
        retention: Retention | None = None,
    ) -> None:
        import psycopg

        self.dsn = PgDsn(dsn, password)
        self.name = self.dsn.name
        self.path = None  # type: ignore[assignment]  # no file: a PostgreSQL store is named by `name`
        self.readonly = readonly
        self.retention = retention or Retention()
        self._check_ids: dict[str, int] = {}
        self._check_names: dict[int, str] = {}
        self._device_ids: dict[tuple[str, str], int] = {}
        self._retention_cursor: tuple[int, int] = (0, 0)
        self._stack = ExitStack()
        try:
            self.pg = self._stack.enter_context(self.dsn.borrow(readonly))
            self.conn = QmarkConn(self.pg)
            self._open(timezone)
        except psycopg.Error as exc:
            self._stack.close()
            raise self.dsn.error(exc) from None
        except BaseException:
            self._stack.close()
            raise

    def _open(self, timezone: str) -> None:
        version = pg_schema_version(self.pg)
        if version > PG_SCHEMA_VERSION:
            raise too_new(version, self.name)
        if self.readonly:
            if version == 0:
                raise StoreError(
                    f"{self.name} is not a bibnet-ops history store (or is empty): "
                    f"create it with `bibnet-ops store init`"
                )
        elif version < PG_SCHEMA_VERSION:
            pg_migrate(self.pg, self.name)
        row = self.pg.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
        if row is None and not self.readonly:  # only the first writer records it (an operator may not write meta)
            with self._tx():
                self.pg.execute(
                    "INSERT INTO meta VALUES ('timezone', %s) ON CONFLICT (key) DO NOTHING", (timezone,)
                )
        self.timezone = row[0] if row else timezone
        self._load_checks()
        if not self.readonly:
            self._ensure_device_spans()

    @property
    def schema_version(self) -> int:
        with self._errors():
            return pg_schema_version(self.pg)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
