"""The SQLite schema, versioned with `PRAGMA user_version` and upgraded by ordered migrations.

Sizing (see benchmarks/README.md): checks have integer ids; times are integer milliseconds for
transitions and integer bucket numbers for rollups; rollup tables are WITHOUT ROWID, clustered on
(check, bucket); values are kept in thousandths (integral REALs are stored as small integers), counts
equal to n and min/max of a single value are NULL (see `Agg.to_row`).
"""

from __future__ import annotations

import sqlite3

from bibnet_ops.store._api import SchemaTooNewError, StoreError

__all__ = ["MIGRATIONS", "ROLLUP_TIERS", "SCHEMA_VERSION", "migrate"]

# tier name -> bucket width in seconds ("day" buckets are local days of the store's time zone)
ROLLUP_TIERS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400}

_ROLLUP_COLUMNS = """
    check_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    lat_n INTEGER,
    lat_min INTEGER,
    lat_sum INTEGER,
    lat_max INTEGER,
    v_n INTEGER,
    v_min REAL,
    v_sum REAL,
    v_max REAL,
    v_last REAL,
    delta REAL,
    PRIMARY KEY (check_id, bucket)
"""

_V1 = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE checks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    metric TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT '',
    last_counter REAL
);
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY,
    check_id INTEGER NOT NULL,
    t INTEGER NOT NULL,
    old TEXT NOT NULL,
    new TEXT NOT NULL,
    hard INTEGER NOT NULL,
    flapping INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX transitions_check_t ON transitions (check_id, t);
CREATE INDEX transitions_t ON transitions (t);
CREATE TABLE site_transitions (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    t INTEGER NOT NULL,
    old TEXT NOT NULL,
    new TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    root_cause TEXT
);
CREATE INDEX site_transitions_site_t ON site_transitions (site, t);
CREATE INDEX site_transitions_t ON site_transitions (t);
CREATE TABLE flapping (
    id INTEGER PRIMARY KEY,
    check_id INTEGER NOT NULL,
    t INTEGER NOT NULL,
    flapping INTEGER NOT NULL,
    percent REAL NOT NULL
);
CREATE INDEX flapping_check_t ON flapping (check_id, t);
CREATE TABLE rollup_minute ({_ROLLUP_COLUMNS}) WITHOUT ROWID;
CREATE TABLE rollup_hour ({_ROLLUP_COLUMNS}) WITHOUT ROWID;
CREATE TABLE rollup_day ({_ROLLUP_COLUMNS}) WITHOUT ROWID;
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started INTEGER NOT NULL,
    heartbeat INTEGER NOT NULL,
    stopped INTEGER,
    host TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_heartbeat ON runs (heartbeat);
CREATE TABLE maintenance (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('site', 'region', 'all')),
    target TEXT NOT NULL DEFAULT '',
    start INTEGER NOT NULL,
    "end" INTEGER,
    days TEXT NOT NULL DEFAULT '',
    local_start TEXT NOT NULL DEFAULT '',
    local_end TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL DEFAULT 'Africa/Algiers',
    exclude_sla INTEGER NOT NULL DEFAULT 1,
    reason TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    ended_by TEXT NOT NULL DEFAULT '',
    ended_at INTEGER
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    t INTEGER NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    window_id INTEGER NOT NULL,
    details TEXT NOT NULL DEFAULT '{{}}'
);
"""

# --- alerting tables (owned by bibnet_ops/alerts: alerts sent, their deliveries, acknowledgements, audit) ---
_V2_ALERTS = """
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    site TEXT NOT NULL,
    check_name TEXT,
    state TEXT NOT NULL,
    since INTEGER NOT NULL,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    affected TEXT NOT NULL DEFAULT '[]',
    receivers TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX alerts_key ON alerts (key, opened_at);
CREATE INDEX alerts_open ON alerts (closed_at);
CREATE TABLE alert_deliveries (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    receiver TEXT NOT NULL,
    kind TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    finished_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL DEFAULT 'pending',
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);
CREATE TABLE acks (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    sticky INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    ended_at INTEGER,
    ended_by TEXT NOT NULL DEFAULT '',
    end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX acks_key ON acks (key);
CREATE TABLE alert_audit (
    id INTEGER PRIMARY KEY,
    t INTEGER NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
)
"""

# --- each device's worst-of timeline, derived from the hard check transitions (see _device_spans.py):
# one row per span that is not up (down or unknown), so that a report by device or kind reads one row
# per device outage; the rows are (re)built from the transitions on the first read-write open ---
_V3_DEVICE_SPANS = """
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    UNIQUE (site, device)
);
CREATE TABLE device_spans (
    device_id INTEGER NOT NULL,
    start INTEGER NOT NULL,
    stop INTEGER,
    category INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (device_id, start)
) WITHOUT ROWID
"""

# Each migration brings the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: list[str] = [_V1, _V2_ALERTS, _V3_DEVICE_SPANS]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: str = "") -> int:
    """Bring a database up to SCHEMA_VERSION; refuse one written by a newer bibnet-ops.

    Returns:
        The version the database had before.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{path or 'the history store'} has schema version {version}, but this bibnet-ops only "
            f"knows up to version {SCHEMA_VERSION}: upgrade bibnet-ops (or point it at another store)"
        )
    for number in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"cannot upgrade {path or 'the history store'} to version {number + 1}: {exc}") from exc
    return version


def _split(script: str) -> list[str]:
    """Split a migration script into statements (none of ours contains a semicolon inside)."""
    return [s.strip() for s in script.split(";") if s.strip()]
