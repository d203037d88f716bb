"""History: state transitions kept exactly, samples as rollups, collector runs and maintenance windows.

Attach the writer to the engine (`engine.subscribe(writer.handle)`); reports and the dashboard read
through their own connections (`SqliteStore(path, readonly=True)`, `HistoryReader`).
"""

from __future__ import annotations

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
    Transition,
)
from bibnet_ops.store._maintenance import MaintenanceSchedule, active_window, in_maintenance, window_intervals
from bibnet_ops.store._paths import default_store_path, store_path
from bibnet_ops.store._read import HistoryEvent, HistoryReader, SiteUptime
from bibnet_ops.store._schema import SCHEMA_VERSION
from bibnet_ops.store._sqlite import Retention, SqliteStore
from bibnet_ops.store._writer import StoreWriter, check_infos

__all__ = [
    "SCHEMA_VERSION",
    "AuditEntry",
    "CheckInfo",
    "CollectorRun",
    "DeviceSpans",
    "HistoryEvent",
    "HistoryReader",
    "HistoryStore",
    "MaintenanceSchedule",
    "MaintenanceWindow",
    "Retention",
    "Rollup",
    "SchemaTooNewError",
    "SiteTransition",
    "SiteUptime",
    "SqliteStore",
    "StoreError",
    "StoreWriter",
    "Transition",
    "active_window",
    "check_infos",
    "default_store_path",
    "in_maintenance",
    "store_path",
    "window_intervals",
]
