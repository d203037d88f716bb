"""Upkeep of the PostgreSQL history store: device spans (the SQLite store's code, PostgreSQL's dialect) and retention.

The spans are computed by `_device_spans._DeviceSpansMixin` for both stores; here are only the statements
that differ (PRAGMA, INSERT OR REPLACE, max() of two values, the snapshot of a read), and an advisory lock
so that several collectors opening a store whose spans are stale rebuild them once.
"""

from __future__ import annotations

from bibnet_ops.accounting import CHECK_CATEGORY, UNKNOWN, UP, worst_of
from bibnet_ops.store._api import DeviceSpans
from bibnet_ops.store._device_spans import (
    _CODES,
    _KEPT_KEY,
    _RULE_KEY,
    FAR_FUTURE,
    FAR_PAST,
    RULE,
    _DeviceSpansMixin,
)
from bibnet_ops.store._pg_base import ms
from bibnet_ops.store._pg_rollups import _PgRollupsMixin
from bibnet_ops.store._rollup import bucket_of
from bibnet_ops.store._sqlite_retention import Retention

_SPANS_LOCK = 0x6269626E7370  # advisory lock key: "bibnsp"


class _PgUpkeepMixin(_PgRollupsMixin, _DeviceSpansMixin):
    retention: Retention
    _retention_cursor: tuple[int, int]
    _SECONDS = "{}::float8 / 1000"

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

    def _update_device_spans(self, changed: dict[tuple[str, str], int]) -> None:
        """SQLite's per-device update (`_DeviceSpansMixin._update_from`) for all changed devices at once.

        The same reads and rows, in five round trips whatever the number of devices: what a device's spans
        need from the server (its span covering the first change, each check's state then and its changes
        since) is read for every device in one query each, and written back in one DELETE and one INSERT.
        """
        keys = list(changed)
        missing = [key for key in keys if key not in self._device_ids]
        if missing:
            for site, device, did in self.pg.execute(
                "SELECT site, device, id FROM devices WHERE (site, device) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                ([k[0] for k in missing], [k[1] for k in missing]),
            ).fetchall():
                self._device_ids[(site, device)] = int(did)
        fresh = [key for key in keys if key not in self._device_ids]  # a first hard state: built from scratch
        if fresh:
            for did, site, device in self.pg.execute(
                "INSERT INTO devices (site, device) SELECT * FROM unnest(%s::text[], %s::text[]) "
                "ON CONFLICT (site, device) DO UPDATE SET site = excluded.site RETURNING id, site, device",
                ([k[0] for k in fresh], [k[1] for k in fresh]),
            ).fetchall():
                self._device_ids[(site, device)] = int(did)
        known = [key for key in keys if key in self._device_ids]
        first = set(fresh)
        t0 = {key: FAR_PAST if key in first else changed[key] - 1 for key in known}
        dids = [self._device_ids[key] for key in known]
        covering = {
            did: (start, category, reason)
            for did, start, category, reason in self.pg.execute(
                "SELECT d.id, s.start, s.category, s.reason FROM unnest(%s::integer[], %s::bigint[]) AS d(id, t0) "
                "CROSS JOIN LATERAL (SELECT start, category, reason FROM device_spans WHERE device_id = d.id "
                "AND start <= d.t0 AND (stop IS NULL OR stop > d.t0) ORDER BY start DESC LIMIT 1) s",
                (dids, [t0[key] for key in known]),
            ).fetchall()
        }
        cids = [cid for key in known for cid in self._device_checks[key]]
        cid_t0 = [t0[key] for key in known for _ in self._device_checks[key]]
        lines: dict[int, list[tuple[int, str, str]]] = {cid: [] for cid in cids}
        for cid, t, new, reason in self.pg.execute(
            "SELECT c.id, b.t, b.new, b.reason FROM unnest(%s::integer[], %s::bigint[]) AS c(id, t0) "
            "CROSS JOIN LATERAL (SELECT t, new, reason FROM transitions WHERE check_id = c.id AND hard = 1 "
            "AND t <= c.t0 ORDER BY t DESC, id DESC LIMIT 1) b",
            (cids, cid_t0),
        ).fetchall():
            lines[cid].append((t, new, reason))
        for cid, t, new, reason in self.pg.execute(
            "SELECT tr.check_id, tr.t, tr.new, tr.reason FROM unnest(%s::integer[], %s::bigint[]) AS c(id, t0) "
            "JOIN transitions tr ON tr.check_id = c.id AND tr.hard = 1 AND tr.t > c.t0 "
            "ORDER BY tr.check_id, tr.t, tr.id",
            (cids, cid_t0),
        ).fetchall():
            lines[cid].append((t, new, reason))
        cleared: list[tuple[int, int]] = []
        rows: list[tuple[int, float, float | None, int, str | None]] = []
        rebuild: list[tuple[str, str]] = []
        for key, did in zip(known, dids, strict=True):
            device_lines = [lines[cid] for cid in self._device_checks[key]]
            segments = worst_of(device_lines, t0[key], FAR_FUTURE, CHECK_CATEGORY)
            state = segments[0][2] if segments else UNKNOWN
            cover = covering.get(did)
            if key not in first and state != (UP if cover is None else _CODES[cover[1]]):
                rebuild.append(key)  # should not happen; the device is rebuilt from scratch
                continue
            cleared.append((did, t0[key]))
            head = None if cover is None or key in first else (cover[0], cover[2])
            rows += self._span_rows(did, device_lines, t0[key], head, segments)
        cur = self.pg.cursor()
        if cleared:
            cur.execute(
                "DELETE FROM device_spans s USING unnest(%s::integer[], %s::bigint[]) AS d(id, t0) "
                "WHERE s.device_id = d.id AND (s.stop IS NULL OR s.stop > d.t0)",
                ([c[0] for c in cleared], [c[1] for c in cleared]),
            )
        if rows:
            cur.executemany("INSERT INTO device_spans VALUES (%s, %s, %s, %s, %s)", rows)
        for key in rebuild:
            self._rebuild_device(key, self._device_checks[key])

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
