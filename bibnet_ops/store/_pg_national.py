"""Tables of the national network in the central PostgreSQL store (written by `bibnet_ops.national`).

- `national_collectors`: one row per collector id: its group, host, pid, heartbeat and health figures.
- `national_leases`: which collector polls which site now, until when (renewed with the heartbeat).
- `national_forwarded`: per collector outbox, the last outbox sequence number the central store holds,
  written in the same transaction as the rows themselves (a replay skips what is already here).
- `national_check_state` / `national_site_state`: every check's and site's latest state as forwarded,
  which the national console reads and a collector taking a site over seeds its checks from.
"""

from __future__ import annotations

__all__ = ["NATIONAL_TABLES", "PG_NATIONAL_V1"]

PG_NATIONAL_V1 = """
CREATE TABLE national_collectors (
    id text PRIMARY KEY,
    grp text NOT NULL DEFAULT '',
    host text NOT NULL DEFAULT '',
    pid integer NOT NULL DEFAULT 0,
    started timestamptz,
    heartbeat timestamptz,
    stopped timestamptz,
    health jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE TABLE national_leases (
    site text PRIMARY KEY,
    grp text NOT NULL,
    owner text,
    expires timestamptz,
    since timestamptz,
    epoch bigint NOT NULL DEFAULT 0
);
CREATE INDEX national_leases_owner ON national_leases (owner);
CREATE TABLE national_forwarded (
    outbox text PRIMARY KEY,
    collector text NOT NULL,
    seq bigint NOT NULL,
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE national_check_state (
    check_name text PRIMARY KEY,
    site text NOT NULL,
    status text NOT NULL,
    hard boolean NOT NULL,
    hard_status text NOT NULL,
    since double precision NOT NULL,
    reason text NOT NULL DEFAULT '',
    flapping boolean NOT NULL DEFAULT false,
    collector text NOT NULL DEFAULT ''
);
CREATE INDEX national_check_state_site ON national_check_state (site);
CREATE TABLE national_site_state (
    site text PRIMARY KEY,
    status text NOT NULL,
    since double precision NOT NULL,
    reason text NOT NULL DEFAULT '',
    root_cause text,
    collector text NOT NULL DEFAULT ''
);
"""

NATIONAL_TABLES: dict[str, str] = {
    "national_collectors": "collector",
    "national_leases": "collector",
    "national_forwarded": "collector",
    "national_check_state": "collector",
    "national_site_state": "collector",
}
