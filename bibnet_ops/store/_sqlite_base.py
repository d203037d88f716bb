"""Shared plumbing of the SQLite history store: the connection, the check id cache and transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from bibnet_ops.store._api import CheckInfo
from bibnet_ops.store._schema import ROLLUP_TIERS

_ROLLUP_COLS = "n, failures, lat_n, lat_min, lat_sum, lat_max, v_n, v_min, v_sum, v_max, v_last, delta"


def _ms(t: float) -> int:
    return round(t * 1000)


def _s(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


class _SqliteBase:
    """State every part of `SqliteStore` shares (set up by `SqliteStore.__init__`)."""

    path: Path
    readonly: bool
    timezone: str
    conn: sqlite3.Connection
    _check_ids: dict[str, int]
    _check_names: dict[int, str]
    _check_device: dict[int, tuple[str, str]]  # check id -> (site, device)
    _device_checks: dict[tuple[str, str], list[int]]  # (site, device) -> its check ids, ascending

    # ------------------------------------------------------------------ checks
    def _load_checks(self) -> None:
        self._check_device, self._device_checks = {}, {}
        for cid, name, site, device in self.conn.execute("SELECT id, name, site, device FROM checks ORDER BY id"):
            self._check_ids[name] = cid
            self._check_names[cid] = name
            self._check_device[cid] = (site, device)
            self._device_checks.setdefault((site, device), []).append(cid)

    def register_checks(self, checks: Iterable[CheckInfo]) -> None:
        """Record checks (ids, site, device, metric, device kind); existing ones get their details updated."""
        with self._tx():
            for c in checks:
                self.conn.execute(
                    "INSERT INTO checks (name, site, device, metric, kind) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET site = excluded.site, device = excluded.device, "
                    "metric = excluded.metric, kind = excluded.kind",
                    (c.check_id, c.site_id, c.device_id, c.metric, c.kind),
                )
        self._load_checks()

    def _check_id(self, name: str) -> int:
        cid = self._check_ids.get(name)
        if cid is None:
            site, _, rest = name.partition("/")
            device = rest.partition("/")[0]
            cur = self.conn.execute(
                "INSERT INTO checks (name, site, device) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id, site, device",
                (name, site, device),
            )
            cid, site, device = cur.fetchone()
            self._check_ids[name] = cid
            self._check_names[cid] = name
            self._check_device[cid] = (site, device)
            self._device_checks.setdefault((site, device), []).append(cid)
        return cid

    def checks(self) -> list[CheckInfo]:
        rows = self.conn.execute("SELECT name, site, device, metric, kind FROM checks ORDER BY name")
        return [CheckInfo(*row) for row in rows]

    def counters(self) -> dict[str, float]:
        """Last counter value seen per check (to count increments across a collector restart)."""
        rows = self.conn.execute("SELECT name, last_counter FROM checks WHERE last_counter IS NOT NULL")
        return {name: float(v) for name, v in rows}

    def _ids(self, names: Sequence[str] | None) -> list[int] | None:
        if names is None:
            return None
        return [self._check_ids[n] for n in names if n in self._check_ids]

    # ------------------------------------------------------------------ transactions
    def _tx(self) -> _Transaction:
        return _Transaction(self.conn)


def _tier(tier: str) -> str:
    if tier not in ROLLUP_TIERS:
        raise ValueError(f"unknown rollup tier {tier!r}")
    return tier


class _Transaction:
    """`with store._tx():` — BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
