"""Alerting's part of the history store: alerts sent, each delivery's outcome, acknowledgements and their audit.

The tables are created by the store's own migrations (`bibnet_ops/store/_schema.py` version 2 for SQLite,
`_pg_schema.py` for PostgreSQL), so one store holds history and alerting. `AlertLog` has its own connection,
safe to share between threads (a lock serialises it); times are UTC epoch seconds here and integer
milliseconds in the database, as in the store. Its statements are written once, with `?` placeholders;
`_Sqlite` and `_Postgres` run them on either kind of store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bibnet_ops.alerts._model import Ack, AlertRecord, DeliveryRecord
from bibnet_ops.store import HistoryStore, PgStore, StoreError, StoreLike, open_store

__all__ = ["AlertLog", "AuditRecord"]

_ACK_COLS = "id, key, author, comment, created_at, sticky, expires_at, ended_at, ended_by, end_reason"
_ALERT_COLS = "id, key, site, check_name, state, since, opened_at, reason, affected, closed_at, receivers"
_NEW_ALERT_COLS = _ALERT_COLS.removeprefix("id, ")
_DELIVERY_COLS = "id, alert_id, receiver, kind, queued_at, outcome, attempts, finished_at, error"


def _ms(t: float | None) -> int | None:
    return None if t is None else round(t * 1000)


def _s(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


class AuditRecord(tuple[float, str, str, str, dict[str, Any]]):
    """(time, who, action, target, details) of one acknowledgement change."""

    __slots__ = ()

    @property
    def time(self) -> float:
        return self[0]

    @property
    def who(self) -> str:
        return self[1]

    @property
    def action(self) -> str:
        return self[2]

    @property
    def target(self) -> str:
        return self[3]

    @property
    def details(self) -> dict[str, Any]:
        return self[4]


class _Sqlite:
    """Alerting's statements on a SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.available = {"alerts", "alert_deliveries", "acks", "alert_audit"} <= names

    def run(self, sql: str, params: Sequence[Any] = (), *, returning: bool = False) -> int:
        """Run a statement; an INSERT with `returning` gives the new row's id."""
        cur = self.conn.execute(sql, params)
        return int(cur.lastrowid or 0) if returning else 0

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


class _Postgres:
    """Alerting's statements on a PostgreSQL store's connection (`?` become `%s`; errors become StoreError)."""

    available = True  # the first version of the PostgreSQL schema has alerting's tables

    def __init__(self, store: PgStore) -> None:
        self.store = store

    def run(self, sql: str, params: Sequence[Any] = (), *, returning: bool = False) -> int:
        with self.store._errors():
            if returning:
                return int(self.store.pg.execute(sql.replace("?", "%s") + " RETURNING id", params).fetchone()[0])
            self.store.pg.execute(sql.replace("?", "%s"), params)
            return 0

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.store._errors():
            return list(self.store.pg.execute(sql.replace("?", "%s"), params).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.store._tx():
            yield


class AlertLog:
    """Read and write alerting's tables in a history store (or in memory when `path` is None).

    Args:
        path: the history store: a SQLite path, a `postgresql://` URL or a StoreTarget (migrated to the
            current schema unless `readonly`).
        readonly: open for reading only (a dashboard in read-only mode, `ack list`).
    """

    def __init__(self, path: StoreLike | None, *, readonly: bool = False) -> None:
        self.readonly = readonly
        self._lock = threading.Lock()
        self._store: HistoryStore | None = None
        self._db: _Sqlite | _Postgres
        if path is None:
            from bibnet_ops.store._schema import migrate

            self.path: Path | None = None
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            migrate(conn, ":memory:")
            self._db = _Sqlite(conn)
        else:
            self._store = store = open_store(path, readonly=readonly)
            self.path = getattr(store, "path", None)
            self._db = _Postgres(store) if isinstance(store, PgStore) else _Sqlite(store.conn)  # type: ignore[attr-defined]
        self.available = self._db.available

    @property
    def conn(self) -> Any:
        """The SQLite connection of a SQLite alert log (tests read it directly)."""
        return self._db.conn if isinstance(self._db, _Sqlite) else self._db.store.pg

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
            elif isinstance(self._db, _Sqlite):
                self._db.conn.close()

    def _write(self, sql: str, params: Sequence[Any] = (), *, returning: bool = False) -> int:
        if self.readonly:
            raise StoreError("the alert log is open read-only")
        with self._lock:
            return self._db.run(sql, params, returning=returning)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.available:
            return []
        with self._lock:
            return self._db.rows(sql, params)

    # ------------------------------------------------------------------ alerts
    def open_alert(
        self,
        key: str,
        site_id: str,
        check_id: str | None,
        state: str,
        since: float,
        now: float,
        reason: str = "",
        affected: Iterable[str] = (),
    ) -> int:
        """Record a new alert (its first notification is being sent); returns its id."""
        return self._write(
            f"INSERT INTO alerts ({_NEW_ALERT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, '[]')",
            (key, site_id, check_id, state, _ms(since), _ms(now), reason, json.dumps(list(affected))),
            returning=True,
        )

    def update_alert(
        self,
        alert_id: int,
        *,
        state: str | None = None,
        affected: Iterable[str] | None = None,
        receivers: Iterable[str] | None = None,
        reason: str | None = None,
    ) -> None:
        """Change what an open alert says (worse state, more sites behind it, more receivers told)."""
        sets: list[str] = []
        params: list[Any] = []
        for col, value in (("state", state), ("reason", reason)):
            if value is not None:
                sets.append(f"{col} = ?")
                params.append(value)
        for col, items in (("affected", affected), ("receivers", receivers)):
            if items is not None:
                sets.append(f"{col} = ?")
                params.append(json.dumps(sorted(set(items))))
        if sets:
            self._write(f"UPDATE alerts SET {', '.join(sets)} WHERE id = ?", (*params, alert_id))

    def close_alert(self, alert_id: int, now: float) -> None:
        """Mark an alert recovered (its recovery notification is being sent)."""
        self._write("UPDATE alerts SET closed_at = ? WHERE id = ? AND closed_at IS NULL", (_ms(now), alert_id))

    def alerts(self, *, open_only: bool = False, key: str | None = None, limit: int = 200) -> list[AlertRecord]:
        """Alerts, newest first."""
        where = ["1 = 1"]
        params: list[Any] = []
        if open_only:
            where.append("closed_at IS NULL")
        if key is not None:
            where.append("key = ?")
            params.append(key)
        rows = self._read(
            f"SELECT {_ALERT_COLS} FROM alerts WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [
            AlertRecord(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5] / 1000,
                r[6] / 1000,
                r[7],
                tuple(json.loads(r[8])),
                _s(r[9]),
                tuple(json.loads(r[10])),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ deliveries
    def add_delivery(self, alert_id: int, receiver: str, kind: str, now: float) -> int:
        return self._write(
            "INSERT INTO alert_deliveries (alert_id, receiver, kind, queued_at) VALUES (?, ?, ?, ?)",
            (alert_id, receiver, kind, _ms(now)),
            returning=True,
        )

    def finish_delivery(
        self, delivery_id: int, outcome: str, attempts: int, now: float | None, error: str = ""
    ) -> None:
        """Record a delivery's outcome so far (`pending` while retrying, then `sent` or `failed`)."""
        self._write(
            "UPDATE alert_deliveries SET outcome = ?, attempts = ?, finished_at = ?, error = ? WHERE id = ?",
            (outcome, attempts, _ms(now), error[:500], delivery_id),
        )

    def deliveries(self, alert_id: int | None = None, limit: int = 500) -> list[DeliveryRecord]:
        """Deliveries (of one alert, or all), oldest first within the newest `limit`."""
        where, params = ("WHERE alert_id = ?", (alert_id,)) if alert_id is not None else ("", ())
        rows = self._read(
            f"SELECT {_DELIVERY_COLS} FROM alert_deliveries {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [DeliveryRecord(r[0], r[1], r[2], r[3], r[4] / 1000, r[5], r[6], _s(r[7]), r[8]) for r in reversed(rows)]

    # ------------------------------------------------------------------ acknowledgements
    def add_acks(
        self,
        keys: Iterable[str],
        author: str,
        comment: str,
        now: float,
        *,
        sticky: bool = False,
        expires_at: float | None = None,
    ) -> list[Ack]:
        """Acknowledge problems (a batch in one transaction, each audited); an older ack of a key is replaced."""
        if self.readonly:
            raise StoreError("the alert log is open read-only")
        out: list[Ack] = []
        with self._lock, self._db.transaction():
            for key in dict.fromkeys(keys):
                self._db.run(
                    "UPDATE acks SET ended_at = ?, ended_by = ?, end_reason = 'replaced' "
                    "WHERE key = ? AND ended_at IS NULL",
                    (_ms(now), author, key),
                )
                ack_id = self._db.run(
                    "INSERT INTO acks (key, author, comment, sticky, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (key, author, comment, int(sticky), _ms(now), _ms(expires_at)),
                    returning=True,
                )
                ack = Ack(ack_id, key, author, comment, now, sticky, expires_at)
                self._audit(
                    now,
                    author,
                    "ack",
                    key,
                    {"ack_id": ack.id, "comment": comment, "sticky": sticky, "expires_at": expires_at},
                )
                out.append(ack)
        return out

    def end_acks(self, keys: Iterable[str], who: str, now: float, reason: str = "removed") -> list[Ack]:
        """End the active acks of `keys` (removed by someone, or cleared by a recovery); returns those ended."""
        if self.readonly:
            raise StoreError("the alert log is open read-only")
        ended: list[Ack] = []
        with self._lock, self._db.transaction():
            for key in dict.fromkeys(keys):
                rows = self._db.rows(
                    f"SELECT {_ACK_COLS} FROM acks WHERE key = ? AND ended_at IS NULL ORDER BY id FOR UPDATE"
                    if isinstance(self._db, _Postgres)
                    else f"SELECT {_ACK_COLS} FROM acks WHERE key = ? AND ended_at IS NULL",
                    (key,),
                )
                for r in rows:
                    self._db.run(
                        "UPDATE acks SET ended_at = ?, ended_by = ?, end_reason = ? WHERE id = ?",
                        (_ms(now), who, reason, r[0]),
                    )
                    self._audit(now, who, "unack" if reason == "removed" else f"ack-{reason}", key, {"ack_id": r[0]})
                    ended.append(_ack(r))
        return ended

    def active_acks(self, now: float) -> dict[str, Ack]:
        """Acks holding at `now`, by problem key."""
        rows = self._read(
            f"SELECT {_ACK_COLS} FROM acks WHERE ended_at IS NULL AND "
            "(expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (_ms(now),),
        )
        return {a.key: a for a in map(_ack, rows)}

    def acks(self, limit: int = 200) -> list[Ack]:
        """All acks, newest first (ended and expired ones included)."""
        return [_ack(r) for r in self._read(f"SELECT {_ACK_COLS} FROM acks ORDER BY id DESC LIMIT ?", (limit,))]

    # ------------------------------------------------------------------ audit
    def _audit(self, now: float, who: str, action: str, target: str, details: dict[str, Any]) -> None:
        self._db.run(
            "INSERT INTO alert_audit (t, who, action, target, details) VALUES (?, ?, ?, ?, ?)",
            (_ms(now), who, action, target, json.dumps(details, ensure_ascii=False, sort_keys=True)),
        )

    def audit_log(self, limit: int = 100) -> list[AuditRecord]:
        """Who acknowledged or un-acknowledged what, newest first."""
        rows = self._read("SELECT t, who, action, target, details FROM alert_audit ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditRecord((r[0] / 1000, r[1], r[2], r[3], json.loads(r[4]))) for r in rows]


def _ack(r: Sequence[Any]) -> Ack:
    return Ack(r[0], r[1], r[2], r[3], r[4] / 1000, bool(r[5]), _s(r[6]), _s(r[7]), r[8], r[9])
