"""The write path of the SQLite history store: batches of transitions and rollups, collector runs."""

from __future__ import annotations

from collections.abc import Sequence

from bibnet_ops.store._api import SiteTransition, Transition
from bibnet_ops.store._device_spans import FAR_FUTURE, _DeviceSpansMixin
from bibnet_ops.store._rollup import Agg
from bibnet_ops.store._sqlite_base import _ROLLUP_COLS, _ms


class _WriteMixin(_DeviceSpansMixin):
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
            rows = [
                (self._check_id(tr.check_id), _ms(tr.time), tr.old, tr.new, int(tr.hard), int(tr.flapping), tr.reason)
                for tr in transitions
            ]
            changed: dict[tuple[str, str], int] = {}  # device -> time of its earliest new hard transition
            for cid, t, _, _, hard, _, _ in rows:
                if hard and t < changed.get(self._check_device[cid], FAR_FUTURE):
                    changed[self._check_device[cid]] = t
            self.conn.executemany(
                "INSERT INTO transitions (check_id, t, old, new, hard, flapping, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if changed:
                self._update_device_spans(changed)
            self.conn.executemany(
                "INSERT INTO site_transitions (site, t, old, new, reason, root_cause) VALUES (?, ?, ?, ?, ?, ?)",
                [(s.site_id, _ms(s.time), s.old, s.new, s.reason, s.root_cause) for s in site_transitions],
            )
            self.conn.executemany(
                "INSERT INTO flapping (check_id, t, flapping, percent) VALUES (?, ?, ?, ?)",
                [(self._check_id(c), _ms(t), int(f), p) for c, t, f, p in flapping],
            )
            for tier, check, bucket, agg in rollups:
                self._merge_rollup(tier, self._check_id(check), bucket, agg)
            if counters:
                self.conn.executemany(
                    "UPDATE checks SET last_counter = ? WHERE id = ?",
                    [(v, self._check_id(c)) for c, v in counters.items()],
                )

    def _merge_rollup(self, tier: str, cid: int, bucket: int, agg: Agg) -> None:
        table = f"rollup_{tier}"
        old = self.conn.execute(
            f"SELECT {_ROLLUP_COLS} FROM {table} WHERE check_id = ? AND bucket = ?", (cid, bucket)
        ).fetchone()
        if old is not None:
            merged = Agg.from_row(old)
            merged.merge(agg)
            agg = merged
        self.conn.execute(
            f"INSERT OR REPLACE INTO {table} VALUES (?, ?, {', '.join('?' * 12)})", (cid, bucket, *agg.to_row())
        )

    def start_run(self, now: float, host: str, pid: int) -> int:
        with self._tx():
            cur = self.conn.execute(
                "INSERT INTO runs (started, heartbeat, host, pid) VALUES (?, ?, ?, ?)",
                (_ms(now), _ms(now), host, pid),
            )
        return int(cur.lastrowid or 0)

    def heartbeat(self, run_id: int, now: float, stopped: bool = False) -> None:
        with self._tx():
            self.conn.execute(
                "UPDATE runs SET heartbeat = ?, stopped = ? WHERE id = ?",
                (_ms(now), _ms(now) if stopped else None, run_id),
            )
