"""The write path of the PostgreSQL history store: batches of transitions and rollups, collector runs.

A batch is one transaction sent in pipeline mode (psycopg's `executemany`), so its cost is a few round
trips whatever its size: rollups are read for merging in one query per tier and written back in one.
"""

from __future__ import annotations

from collections.abc import Sequence

from bibnet_ops.store._api import SiteTransition, Transition
from bibnet_ops.store._device_spans import FAR_FUTURE, _DeviceSpansMixin
from bibnet_ops.store._pg_base import ROLLUP_COLS, _PgBase, ms, tier_table
from bibnet_ops.store._rollup import Agg

_UPSERT_SET = ", ".join(f"{c} = excluded.{c}" for c in ROLLUP_COLS.split(", "))


class _PgWriteMixin(_PgBase, _DeviceSpansMixin):
    def write_batch(
        self,
        transitions: Sequence[Transition],
        site_transitions: Sequence[SiteTransition],
        rollups: Sequence[tuple[str, str, int, Agg]],
        flapping: Sequence[tuple[str, float, bool, float]] = (),
        counters: dict[str, float] | None = None,
    ) -> None:
        """Commit one batch atomically; rollups (tier, check, bucket, agg) merge into existing buckets.

        The spans of the devices whose checks changed hard state are brought up to date in the same transaction.
        """
        with self._tx():
            cur = self.pg.cursor()
            rows = [
                (self._check_id(tr.check_id), ms(tr.time), tr.old, tr.new, int(tr.hard), int(tr.flapping), tr.reason)
                for tr in transitions
            ]
            changed: dict[tuple[str, str], int] = {}  # device -> time of its earliest new hard transition
            for cid, t, _, _, hard, _, _ in rows:
                if hard and t < changed.get(self._check_device[cid], FAR_FUTURE):
                    changed[self._check_device[cid]] = t
            if rows:
                cur.executemany(
                    "INSERT INTO transitions (check_id, t, old, new, hard, flapping, reason) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
            if changed:
                self._update_device_spans(changed)
            if site_transitions:
                cur.executemany(
                    "INSERT INTO site_transitions (site, t, old, new, reason, root_cause) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    [(s.site_id, ms(s.time), s.old, s.new, s.reason, s.root_cause) for s in site_transitions],
                )
            if flapping:
                cur.executemany(
                    "INSERT INTO flapping (check_id, t, flapping, percent) VALUES (%s, %s, %s, %s)",
                    [(self._check_id(c), ms(t), int(f), p) for c, t, f, p in flapping],
                )
            self._merge_rollups(rollups)
            if counters:
                cur.executemany(
                    "UPDATE checks SET last_counter = %s WHERE id = %s",
                    [(v, self._check_id(c)) for c, v in counters.items()],
                )

    def _merge_rollups(self, rollups: Sequence[tuple[str, str, int, Agg]]) -> None:
        """Fold each aggregate into its stored bucket: one read and one write per tier."""
        by_tier: dict[str, dict[tuple[int, int], Agg]] = {}
        for tier, check, bucket, agg in rollups:
            pending = by_tier.setdefault(tier, {})
            key = (self._check_id(check), bucket)
            if key in pending:
                merged = Agg.from_row(pending[key].to_row())
                merged.merge(agg)
                agg = merged
            pending[key] = agg
        cur = self.pg.cursor()
        for tier, pending in by_tier.items():
            table = tier_table(tier)
            keys = sorted(pending)  # one lock order for every writer
            # rows are locked: a collector handing a site over may still be writing its last buckets
            old = cur.execute(
                f"SELECT check_id, bucket, {ROLLUP_COLS} FROM {table} "
                f"WHERE (check_id, bucket) IN (SELECT * FROM unnest(%s::integer[], %s::integer[])) "
                f"ORDER BY check_id, bucket FOR UPDATE",
                ([k[0] for k in keys], [k[1] for k in keys]),
            ).fetchall()
            for row in old:
                merged = Agg.from_row(row[2:])
                merged.merge(pending[(row[0], row[1])])
                pending[(row[0], row[1])] = merged
            cur.executemany(
                f"INSERT INTO {table} (check_id, bucket, {ROLLUP_COLS}) VALUES ({', '.join(['%s'] * 14)}) "
                f"ON CONFLICT (check_id, bucket) DO UPDATE SET {_UPSERT_SET}",
                [(cid, bucket, *pending[(cid, bucket)].to_row()) for cid, bucket in keys],
            )

    def start_run(self, now: float, host: str, pid: int) -> int:
        with self._tx():
            row = self.pg.execute(
                "INSERT INTO runs (started, heartbeat, host, pid) VALUES (%s, %s, %s, %s) RETURNING id",
                (ms(now), ms(now), host, pid),
            ).fetchone()
        return int(row[0])

    def heartbeat(self, run_id: int, now: float, stopped: bool = False) -> None:
        with self._tx():
            self.pg.execute(
                "UPDATE runs SET heartbeat = %s, stopped = %s WHERE id = %s",
                (ms(now), ms(now) if stopped else None, run_id),
            )
