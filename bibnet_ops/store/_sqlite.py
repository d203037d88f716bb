"""The SQLite history store: one file in WAL mode, safe against a killed process, readable while written.

One `SqliteStore` object belongs to one thread (the writer's, or a reader's); readers open their own
connection with `readonly=True`, which WAL lets run alongside the writer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bibnet_ops.store._api import SchemaTooNewError, StoreError
from bibnet_ops.store._device_spans import _DeviceSpansMixin
from bibnet_ops.store._schema import SCHEMA_VERSION, migrate
from bibnet_ops.store._sqlite_maint import _MaintenanceMixin
from bibnet_ops.store._sqlite_query import _QueryMixin
from bibnet_ops.store._sqlite_retention import Retention, _RetentionMixin
from bibnet_ops.store._sqlite_write import _WriteMixin

__all__ = ["Retention", "SqliteStore"]


class SqliteStore(_WriteMixin, _RetentionMixin, _DeviceSpansMixin, _QueryMixin, _MaintenanceMixin):
    """History in one SQLite file (see the module docstring for threading rules)."""

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        timezone: str = "Africa/Algiers",
        retention: Retention | None = None,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.retention = retention or Retention()
        self._check_ids: dict[str, int] = {}
        self._check_names: dict[int, str] = {}
        self._device_ids: dict[tuple[str, str], int] = {}
        self._retention_cursor: tuple[int, int] = (0, 0)
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"history store {self.path} does not exist (has `collect` run yet?)")
                uri = f"file:{self.path.resolve()}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                # FULL: a committed transition survives even a power cut, at one fsync per batch
                self.conn.execute("PRAGMA synchronous = FULL")
                migrate(self.conn, str(self.path))
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('timezone', ?)", (timezone,))
            else:
                version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
                if version == 0:
                    raise StoreError(f"{self.path} is not a bibnet-ops history store (or is empty)")
                if version > SCHEMA_VERSION:
                    raise SchemaTooNewError(
                        f"{self.path} has schema version {version}, but this bibnet-ops only knows up to "
                        f"version {SCHEMA_VERSION}: upgrade bibnet-ops"
                    )
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
            self.timezone = row[0] if row else timezone
            self._load_checks()
            if not readonly:
                self._ensure_device_spans()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open history store {self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()
