"""Shared plumbing of the PostgreSQL history store: its connection, the check id cache and transactions.

It extends the SQLite store's base so that the device-spans upkeep (`_device_spans.py`) is one code for
both stores: that code speaks through `conn` (a `QmarkConn`); everything written for PostgreSQL speaks
to `pg`, the psycopg connection itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bibnet_ops.store._api import CheckInfo
from bibnet_ops.store._pg_conn import PgDsn
from bibnet_ops.store._schema import ROLLUP_TIERS
from bibnet_ops.store._sqlite_base import _SqliteBase

ROLLUP_COLS = "n, failures, lat_n, lat_min, lat_sum, lat_max, v_n, v_min, v_sum, v_max, v_last, delta"


def ms(t: float) -> int:
    return round(t * 1000)


def tier_table(tier: str) -> str:
    if tier not in ROLLUP_TIERS:
        raise ValueError(f"unknown rollup tier {tier!r}")
    return f"rollup_{tier}"


class _PgBase(_SqliteBase):
    """State every part of `PgStore` shares (set up by `PgStore.__init__`)."""

    conn: Any  # QmarkConn over `pg`, for the code shared with SQLite
    pg: Any  # the psycopg connection (autocommit; transactions are explicit)
    dsn: PgDsn
    name: str
    _checks_read: float = float("-inf")

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def _tx(self) -> Iterator[None]:  # type: ignore[override]
        """One transaction (nested calls become savepoints); psycopg errors become StoreError."""
        import psycopg

        try:
            with self.pg.transaction():
                yield
        except psycopg.Error as exc:
            raise self.dsn.error(exc) from None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Reads outside a transaction: psycopg errors become StoreError naming the store."""
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            raise self.dsn.error(exc) from None

    # ------------------------------------------------------------------ checks
    def register_checks(self, checks: Iterable[CheckInfo]) -> None:
        """Record checks (ids, site, device, metric, device kind); existing ones get their details updated."""
        # ids in the order given, as SQLite gives them: reads ordered by check come out the same
        rows = list({c.check_id: c for c in checks}.values())
        with self._tx():
            cur = self.pg.cursor()
            cur.executemany(
                "INSERT INTO checks (name, site, device, metric, kind) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET site = excluded.site, device = excluded.device, "
                "metric = excluded.metric, kind = excluded.kind "
                "WHERE (checks.site, checks.device, checks.metric, checks.kind) IS DISTINCT FROM "
                "(excluded.site, excluded.device, excluded.metric, excluded.kind)",
                [(c.check_id, c.site_id, c.device_id, c.metric, c.kind) for c in rows],
            )
        with self._errors():
            self._load_checks()

    def _check_id(self, name: str) -> int:
        cid = self._check_ids.get(name)
        if cid is None:
            site, _, rest = name.partition("/")
            device = rest.partition("/")[0]
            cid, site, device = self.pg.execute(
                "INSERT INTO checks (name, site, device) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id, site, device",
                (name, site, device),
            ).fetchone()
            self._check_ids[name] = cid
            self._check_names[cid] = name
            self._check_device[cid] = (site, device)
            self._device_checks.setdefault((site, device), []).append(cid)
        return cid

    def _load_checks(self) -> None:
        super()._load_checks()
        self._checks_read = time.monotonic()

    def _name(self, cid: int) -> str:
        """A check's name from its id, reading the checks again if another collector registered it since."""
        name = self._check_names.get(cid)
        if name is None:
            self._load_checks()
            name = self._check_names.get(cid, str(cid))
        return name

    def checks(self) -> list[CheckInfo]:
        with self._errors():
            rows = self.pg.execute("SELECT name, site, device, metric, kind FROM checks ORDER BY name").fetchall()
        return [CheckInfo(*row) for row in rows]

    def counters(self) -> dict[str, float]:
        """Last counter value seen per check (to count increments across a collector restart)."""
        with self._errors():
            rows = self.pg.execute("SELECT name, last_counter FROM checks WHERE last_counter IS NOT NULL").fetchall()
        return {name: float(v) for name, v in rows}

    def _ids(self, names: Sequence[str] | None) -> list[int] | None:
        if names is None:
            return None
        if any(n not in self._check_ids for n in names) and time.monotonic() - self._checks_read > 5.0:
            # checks registered by another collector since this store read them (at most every 5 s: a
            # report asks for checks that never wrote anything, site after site)
            self._load_checks()
        return [self._check_ids[n] for n in names if n in self._check_ids]
