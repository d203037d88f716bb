"""Upkeep of the PostgreSQL history store: device spans (the SQLite store's code, PostgreSQL's dialect) and retention.

The spans are computed by `_device_spans._DeviceSpansMixin` for both stores; here are only the statements
that differ (PRAGMA, INSERT OR REPLACE, max() of two values, the snapshot of a read), and an advisory lock
so that several collectors opening a store whose spans are stale rebuild them once.
"""

from __future__ import annotations

from bibnet_ops.store._api import DeviceSpans
from bibnet_ops.store._device_spans import _KEPT_KEY, _RULE_KEY, RULE, _DeviceSpansMixin
from bibnet_ops.store._pg_base import ms
from bibnet_ops.store._pg_rollups import _PgRollupsMixin
from bibnet_ops.store._rollup import bucket_of
from bibnet_ops.store._sqlite_retention import Retention

_SPANS_LOCK = 0x6269626E7370  # advisory lock key: "bibnsp"


class _PgUpkeepMixin(_PgRollupsMixin, _DeviceSpansMixin):
    retention: Retention
    _retention_cursor: tuple[int, int]

    # ------------------------------------------------------------------ device spans
    def _spans_current(self) -> bool:
        row = self.pg.execute("SELECT value FROM meta WHERE key = %s", (_RULE_KEY,)).fetchone()
        return row is not None and row[0] == RULE

    def rebuild_device_spans(self, batch_devices: int = 500, *, only_if_stale: bool = False) -> int:
        """Recompute every device's spans from the hard transitions, in one transaction; returns rows written."""
        with self._tx():
            self.pg.execute("SELECT pg_advisory_xact_lock(%s)", (_SPANS_LOCK,))
            if only_if_stale and self._spans_current():
                return 0
            written = self._rebuild_all(batch_devices)
            self.pg.execute(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_RULE_KEY, RULE),
            )
        return written

    def _mark_transitions_kept_from(self, cutoff_ms: int) -> None:
        self.pg.execute(
            "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
            "greatest(meta.value::bigint, excluded.value::bigint)::text",
            (_KEPT_KEY, str(cutoff_ms)),
        )

    def device_spans(self, since: float, until: float) -> DeviceSpans | None:
        """Each device's spans that are not up within [since, until), read in one snapshot (see SQLite's)."""
        with self._tx():
            self.pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return self._read_device_spans(ms(since), ms(until))

    # ------------------------------------------------------------------ retention
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
            with self._errors():
                ids = [
                    r[0]
                    for r in self.pg.execute(
                        "SELECT id FROM checks WHERE id > %s ORDER BY id LIMIT %s", (after, batch_checks)
                    ).fetchall()
                ]
            if not ids:
                stage, after = stage + 1, 0
                continue
            cutoff = bucket_of(tier, now - days * 86400, self.timezone)
            with self._tx():
                deleted = self._expire_rollups(tier, ids, cutoff)
            self._retention_cursor = (stage, ids[-1])
            return deleted
        if stage == len(tiers) and self.retention.transitions_days is not None:
            cutoff_ms = ms(now - float(self.retention.transitions_days) * 86400)
            # each check's last hard transition before the cutoff stays: it holds the check's state after it
            with self._tx():
                cur = self.pg.execute(
                    "DELETE FROM transitions WHERE id IN (SELECT id FROM transitions AS tr WHERE t < %s "
                    "AND NOT (hard = 1 AND id = (SELECT id FROM transitions WHERE check_id = tr.check_id "
                    "AND hard = 1 AND t < %s ORDER BY t DESC, id DESC LIMIT 1)) ORDER BY t LIMIT %s)",
                    (cutoff_ms, cutoff_ms, batch_checks * 100),
                )
                if cur.rowcount:
                    self._mark_transitions_kept_from(cutoff_ms)
            if cur.rowcount:
                self._retention_cursor = (stage, 0)
                return int(cur.rowcount)
        self._retention_cursor = (0, 0)
        return None
