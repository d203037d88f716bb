"""Alerting's part of the history store: alerts sent, each delivery's outcome, acknowledgements and their audit.

The tables are created by the store's own migrations (`bibnet_ops/store/_schema.py`, version 2), so one
SQLite file holds history and alerting. `AlertLog` has its own connection, safe to share between threads
(a lock serialises it); times are UTC epoch seconds here and integer milliseconds on disk, as in the store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bibnet_ops.alerts._model import Ack, AlertRecord, DeliveryRecord
from bibnet_ops.store import SqliteStore, StoreError

__all__ = ["AlertLog", "AuditRecord"]

_ACK_COLS = "id, key, author, comment, created_at, sticky, expires_at, ended_at, ended_by, end_reason"
_ALERT_COLS = "id, key, site, check_name, state, since, opened_at, reason, affected, closed_at, receivers"
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


class AlertLog:
    """Read and write alerting's tables in a history store (or in memory when `path` is None).

    Args:
        path: the SQLite history store (migrated to the current schema unless `readonly`).
        readonly: open for reading only (a dashboard in read-only mode, `ack list`).
    """

    def __init__(self, path: str | Path | None, *, readonly: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.readonly = readonly
        self._lock = threading.Lock()
        self._store: SqliteStore | None = None
        if path is None:
            from bibnet_ops.store._schema import migrate

            self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            migrate(self.conn, ":memory:")
        else:
            self._store = SqliteStore(path, readonly=readonly)
            self.conn = self._store.conn
        names = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.available = {"alerts", "alert_deliveries", "acks", "alert_audit"} <= names

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
            else:
                self.conn.close()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self.readonly:
            raise StoreError("the alert log is open read-only")
        with self._lock:
            cur = self.conn.execute(sql, params)
            return int(cur.lastrowid or 0)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.available:
            return []
        with self._lock:
            return list(self.conn.execute(sql, params))

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
            f"INSERT INTO alerts ({_ALERT_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '[]')",
            (key, site_id, check_id, state, _ms(since), _ms(now), reason, json.dumps(list(affected))),
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
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for key in dict.fromkeys(keys):
                    self.conn.execute(
                        "UPDATE acks SET ended_at = ?, ended_by = ?, end_reason = 'replaced' "
                        "WHERE key = ? AND ended_at IS NULL",
                        (_ms(now), author, key),
                    )
                    cur = self.conn.execute(
                        "INSERT INTO acks (key, author, comment, sticky, created_at, expires_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (key, author, comment, int(sticky), _ms(now), _ms(expires_at)),
                    )
                    ack = Ack(int(cur.lastrowid or 0), key, author, comment, now, sticky, expires_at)
                    self._audit(
                        now,
                        author,
                        "ack",
                        key,
                        {"ack_id": ack.id, "comment": comment, "sticky": sticky, "expires_at": expires_at},
                    )
                    out.append(ack)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return out

    def end_acks(self, keys: Iterable[str], who: str, now: float, reason: str = "removed") -> list[Ack]:
        """End the active acks of `keys` (removed by someone, or cleared by a recovery); returns those ended."""
        if self.readonly:
            raise StoreError("the alert log is open read-only")
        ended: list[Ack] = []
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for key in dict.fromkeys(keys):
                    rows = list(
                        self.conn.execute(f"SELECT {_ACK_COLS} FROM acks WHERE key = ? AND ended_at IS NULL", (key,))
                    )
                    for r in rows:
                        self.conn.execute(
                            "UPDATE acks SET ended_at = ?, ended_by = ?, end_reason = ? WHERE id = ?",
                            (_ms(now), who, reason, r[0]),
                        )
                        self._audit(
                            now, who, "unack" if reason == "removed" else f"ack-{reason}", key, {"ack_id": r[0]}
                        )
                        ended.append(_ack(r))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
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
        self.conn.execute(
            "INSERT INTO alert_audit (t, who, action, target, details) VALUES (?, ?, ?, ?, ?)",
            (_ms(now), who, action, target, json.dumps(details, ensure_ascii=False, sort_keys=True)),
        )

    def audit_log(self, limit: int = 100) -> list[AuditRecord]:
        """Who acknowledged or un-acknowledged what, newest first."""
        rows = self._read("SELECT t, who, action, target, details FROM alert_audit ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditRecord((r[0] / 1000, r[1], r[2], r[3], json.loads(r[4]))) for r in rows]


def _ack(r: Sequence[Any]) -> Ack:
    return Ack(r[0], r[1], r[2], r[3], r[4] / 1000, bool(r[5]), _s(r[6]), _s(r[7]), r[8], r[9])
