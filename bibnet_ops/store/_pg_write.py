"""The write path of the PostgreSQL history store: batches of transitions and rollups, collector runs.

A batch is one transaction sent in pipeline mode (psycopg's `executemany`), so its cost is a few round
trips whatever its size: rollups are read for merging in one query per tier and written back in one
(see `_pg_rollups.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from bibnet_ops.store._api import SiteTransition, Transition
from bibnet_ops.store._device_spans import FAR_FUTURE, _DeviceSpansMixin
from bibnet_ops.store._pg_base import ms
from bibnet_ops.store._pg_rollups import _PgRollupsMixin
from bibnet_ops.store._rollup import Agg


class _PgWriteMixin(_PgRollupsMixin, _DeviceSpansMixin):
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
