"""Maintenance windows and their audit log in the SQLite history store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bibnet_ops.store._api import AuditEntry, MaintenanceWindow, StoreError
from bibnet_ops.store._sqlite_base import _ms, _s, _SqliteBase

_MAINT_COLS = (
    'id, scope, target, start, "end", days, local_start, local_end, timezone, exclude_sla, reason, '
    "created_by, created_at, ended_by, ended_at"
)


class _MaintenanceMixin(_SqliteBase):
    def add_maintenance(self, window: MaintenanceWindow, who: str, now: float) -> int:
        with self._tx():
            cur = self.conn.execute(
                f"INSERT INTO maintenance ({_MAINT_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL)",
                (
                    window.scope,
                    window.target,
                    _ms(window.start),
                    None if window.end is None else _ms(window.end),
                    ",".join(window.days),
                    window.local_start,
                    window.local_end,
                    window.timezone,
                    int(window.exclude_from_sla),
                    window.reason,
                    who,
                    _ms(now),
                ),
            )
            wid = int(cur.lastrowid or 0)
            self._audit(now, who, "add", wid, _window_details(window))
        return wid

    def end_maintenance(self, window_id: int, who: str, now: float) -> MaintenanceWindow:
        """End a window now: a current one stops now, a future one is cancelled, a recurring one stops recurring."""
        with self._tx():
            window = self._window(window_id)
            if window.ended_at is not None or (window.end is not None and window.end <= now):
                raise StoreError(f"maintenance window {window_id} has already ended")
            new_end = max(now, window.start)
            self.conn.execute(
                'UPDATE maintenance SET "end" = ?, ended_by = ?, ended_at = ? WHERE id = ?',
                (_ms(new_end), who, _ms(now), window_id),
            )
            self._audit(now, who, "end", window_id, {**_window_details(window), "end": new_end})
        return self._window(window_id)

    def _window(self, window_id: int) -> MaintenanceWindow:
        row = self.conn.execute(f"SELECT {_MAINT_COLS} FROM maintenance WHERE id = ?", (window_id,)).fetchone()
        if row is None:
            raise StoreError(f"no maintenance window {window_id}")
        return _window_from_row(row)

    def maintenance_windows(self, since: float | None = None, until: float | None = None) -> list[MaintenanceWindow]:
        """Windows that may overlap [since, until) (all of them without bounds)."""
        rows = self.conn.execute(
            f'SELECT {_MAINT_COLS} FROM maintenance WHERE start < ? AND ("end" IS NULL OR "end" > ?) ORDER BY id',
            (_ms(until) if until is not None else 2**62, _ms(since) if since is not None else -(2**62)),
        )
        return [_window_from_row(r) for r in rows]

    def _audit(self, now: float, who: str, action: str, window_id: int, details: dict[str, object]) -> None:
        self.conn.execute(
            "INSERT INTO audit (t, who, action, window_id, details) VALUES (?, ?, ?, ?, ?)",
            (_ms(now), who, action, window_id, json.dumps(details, ensure_ascii=False, sort_keys=True)),
        )

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        rows = self.conn.execute(
            "SELECT t, who, action, window_id, details FROM audit ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [AuditEntry(r[0] / 1000.0, r[1], r[2], r[3], json.loads(r[4])) for r in rows]


def _window_details(w: MaintenanceWindow) -> dict[str, object]:
    return {
        "scope": w.scope,
        "target": w.target,
        "start": w.start,
        "end": w.end,
        "days": list(w.days),
        "local_start": w.local_start,
        "local_end": w.local_end,
        "exclude_from_sla": w.exclude_from_sla,
        "reason": w.reason,
    }


def _window_from_row(r: Sequence[Any]) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=r[0],
        scope=r[1],
        target=r[2],
        start=r[3] / 1000.0,
        end=_s(r[4]),
        days=tuple(d for d in r[5].split(",") if d),
        local_start=r[6],
        local_end=r[7],
        timezone=r[8],
        exclude_from_sla=bool(r[9]),
        reason=r[10],
        created_by=r[11],
        created_at=r[12] / 1000.0,
        ended_by=r[13],
        ended_at=_s(r[14]),
    )
