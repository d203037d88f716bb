"""Retention of the SQLite history store: how long rows are kept, and their deletion in small steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bibnet_ops.store._device_spans import _DeviceSpansMixin
from bibnet_ops.store._rollup import bucket_of
from bibnet_ops.store._sqlite_base import _ms


@dataclass(frozen=True)
class Retention:
    """How long each table keeps its rows, in days (None = forever)."""

    minute_days: float | None = 1.0
    hour_days: float | None = 14.0
    day_days: float | None = 800.0
    transitions_days: float | None = None

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Retention:
        """Read `[collector]` keys rollup_days (per-minute), hour_rollup_days, day_rollup_days, transition_days."""
        col = settings.get("collector", {}) or {}
        base = cls()

        def days(key: str, default: float | None) -> float | None:
            value = col.get(key, default)
            return None if value is None else float(value)

        return cls(
            minute_days=days("rollup_days", base.minute_days),
            hour_days=days("hour_rollup_days", base.hour_days),
            day_days=days("day_rollup_days", base.day_days),
            transitions_days=days("transition_days", base.transitions_days),
        )


class _RetentionMixin(_DeviceSpansMixin):
    retention: Retention
    _retention_cursor: tuple[int, int]

    def apply_retention(self, now: float, batch_checks: int = 50) -> int | None:
        """Delete expired rows for the next few checks (or one batch of transitions), in its own transaction.

        Returns:
            Rows deleted, or None once a full pass over every table is complete.
        """
        tiers = [
            ("minute", self.retention.minute_days),
            ("hour", self.retention.hour_days),
            ("day", self.retention.day_days),
        ]
        stage, after = self._retention_cursor
        while stage < len(tiers):
            tier, days = tiers[stage]
            if days is None:
                stage, after = stage + 1, 0
                continue
            ids = [
                r[0]
                for r in self.conn.execute(
                    "SELECT id FROM checks WHERE id > ? ORDER BY id LIMIT ?", (after, batch_checks)
                )
            ]
            if not ids:
                stage, after = stage + 1, 0
                continue
            cutoff = bucket_of(tier, now - days * 86400, self.timezone)
            with self._tx():
                cur = self.conn.execute(
                    f"DELETE FROM rollup_{tier} WHERE check_id IN ({','.join('?' * len(ids))}) AND bucket < ?",
                    (*ids, cutoff),
                )
            self._retention_cursor = (stage, ids[-1])
            return cur.rowcount
        if stage == len(tiers) and self.retention.transitions_days is not None:
            cutoff_ms = _ms(now - float(self.retention.transitions_days) * 86400)
            # each check's last hard transition before the cutoff stays: it holds the check's state after it
            with self._tx():
                cur = self.conn.execute(
                    "DELETE FROM transitions WHERE id IN (SELECT id FROM transitions AS tr WHERE t < ? "
                    "AND NOT (hard = 1 AND id = (SELECT id FROM transitions WHERE check_id = tr.check_id "
                    "AND hard = 1 AND t < ? ORDER BY t DESC, id DESC LIMIT 1)) ORDER BY t LIMIT ?)",
                    (cutoff_ms, cutoff_ms, batch_checks * 100),
                )
                if cur.rowcount:
                    self._mark_transitions_kept_from(cutoff_ms)
            if cur.rowcount:
                self._retention_cursor = (stage, 0)
                return cur.rowcount
        self._retention_cursor = (0, 0)
        return None
