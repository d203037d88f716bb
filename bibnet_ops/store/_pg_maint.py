"""Maintenance windows and their audit log in the PostgreSQL history store."""

from __future__ import annotations

import json

from bibnet_ops.store._api import AuditEntry, MaintenanceWindow, StoreError
from bibnet_ops.store._pg_base import _PgBase, ms
from bibnet_ops.store._sqlite_maint import _MAINT_COLS, _window_details, _window_from_row


class _PgMaintenanceMixin(_PgBase):
    def add_maintenance(self, window: MaintenanceWindow, who: str, now: float) -> int:
        with self._tx():
            row = self.pg.execute(
                f"INSERT INTO maintenance ({_MAINT_COLS.removeprefix('id, ')}) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '', NULL) RETURNING id",
                (
                    window.scope,
                    window.target,
                    ms(window.start),
                    None if window.end is None else ms(window.end),
                    ",".join(window.days),
                    window.local_start,
                    window.local_end,
                    window.timezone,
                    int(window.exclude_from_sla),
                    window.reason,
                    who,
                    ms(now),
                ),
            ).fetchone()
            wid = int(row[0])
            self._audit(now, who, "add", wid, _window_details(window))
        return wid

    def end_maintenance(self, window_id: int, who: str, now: float) -> MaintenanceWindow:
        """End a window now: a current one stops now, a future one is cancelled, a recurring one stops recurring."""
        with self._tx():
            window = self._window(window_id, lock=True)
            if window.ended_at is not None or (window.end is not None and window.end <= now):
                raise StoreError(f"maintenance window {window_id} has already ended")
            new_end = max(now, window.start)
            self.pg.execute(
                'UPDATE maintenance SET "end" = %s, ended_by = %s, ended_at = %s WHERE id = %s',
                (ms(new_end), who, ms(now), window_id),
            )
            self._audit(now, who, "end", window_id, {**_window_details(window), "end": new_end})
        with self._errors():
            return self._window(window_id)

    def _window(self, window_id: int, lock: bool = False) -> MaintenanceWindow:
        row = self.pg.execute(
            f"SELECT {_MAINT_COLS} FROM maintenance WHERE id = %s{' FOR UPDATE' if lock else ''}", (window_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no maintenance window {window_id}")
        return _window_from_row(row)

    def maintenance_windows(self, since: float | None = None, until: float | None = None) -> list[MaintenanceWindow]:
        """Windows that may overlap [since, until) (all of them without bounds)."""
        with self._errors():
            rows = self.pg.execute(
                f'SELECT {_MAINT_COLS} FROM maintenance WHERE start < %s AND ("end" IS NULL OR "end" > %s) ORDER BY id',
                (ms(until) if until is not None else 2**62, ms(since) if since is not None else -(2**62)),
            ).fetchall()
        return [_window_from_row(r) for r in rows]

    def _audit(self, now: float, who: str, action: str, window_id: int, details: dict[str, object]) -> None:
        self.pg.execute(
            "INSERT INTO audit (t, who, action, window_id, details) VALUES (%s, %s, %s, %s, %s)",
            (ms(now), who, action, window_id, json.dumps(details, ensure_ascii=False, sort_keys=True)),
        )

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        with self._errors():
            rows = self.pg.execute(
                "SELECT t, who, action, window_id, details FROM audit ORDER BY id DESC LIMIT %s", (limit,)
            ).fetchall()
        return [AuditEntry(r[0] / 1000.0, r[1], r[2], r[3], json.loads(r[4])) for r in rows]
