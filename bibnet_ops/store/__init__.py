"""History: state transitions kept exactly, samples as rollups, collector runs and maintenance windows.

Two backends behind one interface (`HistoryStore`): a SQLite file (the default, one machine) and a
PostgreSQL database (the central store of a national network). `open_store(target)` opens either from a
path or a `postgresql://` URL. Attach the writer to the engine (`engine.subscribe(writer.handle)`);
reports and the dashboard read through their own connections (`open_store(target, readonly=True)`,
`HistoryReader`).
"""

from __future__ import annotations

from bibnet_ops.store._admin import InitResult, RoleSpec, StoreStatus, init_store, store_status
from bibnet_ops.store._api import (
    AuditEntry,
    CheckInfo,
    CollectorRun,
    DeviceSpans,
    HistoryStore,
    MaintenanceWindow,
    Rollup,
    SchemaTooNewError,
    SiteTransition,
    StoreError,
    StoreUnreachableError,
    Transition,
)
from bibnet_ops.store._maintenance import MaintenanceSchedule, active_window, in_maintenance, window_intervals
from bibnet_ops.store._open import StoreLike, StoreTarget, open_store, resolve_store, store_exists
from bibnet_ops.store._paths import default_store_path, store_path
from bibnet_ops.store._pg import PgStore
from bibnet_ops.store._pg_conn import is_postgres_url, redact_dsn
from bibnet_ops.store._pg_copy import import_sqlite
from bibnet_ops.store._pg_schema import PG_SCHEMA_VERSION
from bibnet_ops.store._read import HistoryEvent, HistoryReader, SiteUptime
from bibnet_ops.store._schema import SCHEMA_VERSION
from bibnet_ops.store._sqlite import Retention, SqliteStore
from bibnet_ops.store._writer import StoreWriter, check_infos

__all__ = [
    "PG_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "AuditEntry",
    "CheckInfo",
    "CollectorRun",
    "DeviceSpans",
    "HistoryEvent",
    "HistoryReader",
    "HistoryStore",
    "InitResult",
    "MaintenanceSchedule",
    "MaintenanceWindow",
    "PgStore",
    "Retention",
    "RoleSpec",
    "Rollup",
    "SchemaTooNewError",
    "SiteTransition",
    "SiteUptime",
    "SqliteStore",
    "StoreError",
    "StoreLike",
    "StoreStatus",
    "StoreTarget",
    "StoreUnreachableError",
    "StoreWriter",
    "Transition",
    "active_window",
    "check_infos",
    "default_store_path",
    "import_sqlite",
    "in_maintenance",
    "init_store",
    "is_postgres_url",
    "open_store",
    "redact_dsn",
    "resolve_store",
    "store_exists",
    "store_path",
    "store_status",
    "window_intervals",
]
