"""The read side of the PostgreSQL history store: transitions, rollups and collector runs over a period.

Each query returns rows in the order the SQLite store's does (time, then insertion order), and times are
divided into seconds in Python as SQLite does in SQL (both IEEE divisions), so that reports built from
either store are byte for byte the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

from bibnet_ops.store._api import CollectorRun, Rollup, SiteTransition, Transition
from bibnet_ops.store._pg_base import ROLLUP_COLS, _PgBase, ms, tier_table
from bibnet_ops.store._rollup import Agg, bucket_of, bucket_start


def _s(value: int | None) -> float | None:
    return None if value is None else value / 1000.0


class _PgQueryMixin(_PgBase):
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return list(self.pg.execute(sql, tuple(params)).fetchall())

    def _last_before(self, since: float, ids: list[int] | None, hard_only: bool, columns: str) -> list[tuple[Any, ...]]:
        """Each check's last transition before `since` (its state then), ordered by time then check."""
        hard = "AND hard = 1" if hard_only else ""
        where, params = ("", ()) if ids is None else ("WHERE c.id = ANY(%s)", (ids,))
        rows = self._fetch(
            f"SELECT {columns} FROM checks c CROSS JOIN LATERAL (SELECT * FROM transitions "
            f"WHERE check_id = c.id AND t < %s {hard} ORDER BY t DESC, id DESC LIMIT 1) tr {where} ORDER BY c.id",
            (ms(since), *params),
        )
        return sorted(rows, key=itemgetter(1))

    def transitions(
        self, since: float, until: float, check_ids: Sequence[str] | None = None, hard_only: bool = True
    ) -> list[Transition]:
        """Transitions in [since, until), preceded for each check by its last one before `since`."""
        ids = self._ids(check_ids)
        hard = "AND hard = 1" if hard_only else ""
        where_ids, params = ("", ()) if ids is None else ("AND check_id = ANY(%s)", (ids,))
        cols = "tr.check_id, tr.t, tr.old, tr.new, tr.hard, tr.reason, tr.flapping"
        before = self._last_before(since, ids, hard_only, cols)
        rows = self._fetch(
            f"SELECT check_id, t, old, new, hard, reason, flapping FROM transitions tr "
            f"WHERE t >= %s AND t < %s {hard} {where_ids} ORDER BY t, id",
            (ms(since), ms(until), *params),
        )
        return [
            Transition(self._name(r[0]), r[1] / 1000.0, r[2], r[3], bool(r[4]), r[5], bool(r[6]))
            for r in [*before, *rows]
        ]

    def hard_changes(
        self, since: float, until: float, check_ids: Sequence[str] | None = None
    ) -> dict[str, list[tuple[float, str, str]]]:
        """Hard transitions per check as (time, new state, reason), in time order, each check's list led
        by its last one before `since`."""
        ids = self._ids(check_ids)
        where_ids, params = ("", ()) if ids is None else ("AND check_id = ANY(%s)", (ids,))
        out: dict[str, list[tuple[float, str, str]]] = {}
        before = self._last_before(since, ids, True, "tr.check_id, tr.t, tr.new, tr.reason")
        for cid, t, new, reason in sorted(before, key=itemgetter(0)):
            out[self._name(cid)] = [(t / 1000.0, new, reason)]
        rows = self._fetch(
            f"SELECT check_id, t, new, reason FROM transitions "
            f"WHERE t >= %s AND t < %s AND hard = 1 {where_ids} ORDER BY t, id",
            (ms(since), ms(until), *params),
        )
        lists: dict[int, list[tuple[float, str, str]]] = {}
        for cid, t, new, reason in rows:
            changes = lists.get(cid)
            if changes is None:
                changes = lists[cid] = out.setdefault(self._name(cid), [])
            changes.append((t / 1000.0, new, reason))
        return out

    def site_transitions(
        self, since: float, until: float, site_ids: Sequence[str] | None = None
    ) -> list[SiteTransition]:
        """Site status changes in [since, until), preceded for each site by its last one before `since`."""
        where, params = ("", ()) if site_ids is None else ("AND site = ANY(%s)", (list(site_ids),))
        rows = self._fetch(
            f"SELECT site, t, old, new, reason, root_cause FROM site_transitions "
            f"WHERE t >= %s AND t < %s {where} ORDER BY t, id",
            (ms(since), ms(until), *params),
        )
        before = self._fetch(
            f"SELECT * FROM (SELECT DISTINCT ON (site) site, t, old, new, reason, root_cause, id FROM site_transitions "
            f"WHERE t < %s {where} ORDER BY site, t DESC, id DESC) last ORDER BY t, id",
            (ms(since), *params),
        )
        return [SiteTransition(r[0], r[1] / 1000.0, r[2], r[3], r[4], r[5]) for r in [*before, *rows]]

    def rollups(self, tier: str, since: float, until: float, check_ids: Sequence[str] | None = None) -> list[Rollup]:
        """Rollups of a tier whose bucket starts in [since, until), ordered by check then time."""
        table = tier_table(tier)
        ids = self._ids(check_ids)
        lo, hi = self._bucket_range(tier, since, until)
        where_ids, params = ("", ()) if ids is None else ("AND check_id = ANY(%s)", (ids,))
        rows = self._fetch(
            f"SELECT check_id, bucket, {ROLLUP_COLS} FROM {table} "
            f"WHERE bucket >= %s AND bucket < %s {where_ids} ORDER BY check_id, bucket",
            (lo, hi, *params),
        )
        out = []
        for row in rows:
            agg = Agg.from_row(row[2:])
            out.append(
                Rollup(
                    check_id=self._name(row[0]),
                    start=bucket_start(tier, row[1], self.timezone),
                    count=agg.n,
                    failures=agg.failures,
                    latency_min=_s(agg.lat_min),
                    latency_avg=agg.lat_sum / agg.lat_n / 1000.0 if agg.lat_n else None,
                    latency_max=_s(agg.lat_max),
                    value_min=agg.v_min,
                    value_avg=agg.v_sum / agg.v_n if agg.v_n else None,
                    value_max=agg.v_max,
                    value_last=agg.v_last,
                    delta=agg.delta,
                )
            )
        return out

    def _bucket_range(self, tier: str, since: float, until: float) -> tuple[int, int]:
        lo, hi = bucket_of(tier, since, self.timezone), bucket_of(tier, until, self.timezone)
        if bucket_start(tier, lo, self.timezone) < since:
            lo += 1
        if bucket_start(tier, hi, self.timezone) < until:
            hi += 1
        return lo, hi

    def delta_sums(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, float]:
        """Sum of counter increments per check over buckets starting in [since, until)."""
        lo, hi = self._bucket_range(tier, since, until)
        rows = self._fetch(
            f"SELECT check_id, coalesce(sum(delta), 0) FROM {tier_table(tier)} "
            f"WHERE check_id = ANY(%s) AND bucket >= %s AND bucket < %s GROUP BY check_id ORDER BY check_id",
            (self._ids(check_ids) or [], lo, hi),
        )
        return {self._name(cid): float(total) for cid, total in rows}

    def bucket_maxima(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, list[float]]:
        """Each bucket's maximum value per check (in time order) over buckets starting in [since, until)."""
        lo, hi = self._bucket_range(tier, since, until)
        # a bucket with one value stores it as v_sum only (see Agg.to_row); values are in thousandths
        rows = self._fetch(
            f"SELECT check_id, coalesce(v_max, v_sum) / 1000.0 FROM {tier_table(tier)} "
            f"WHERE check_id = ANY(%s) AND bucket >= %s AND bucket < %s AND coalesce(v_n, n) > 0 "
            f"ORDER BY check_id, bucket",
            (self._ids(check_ids) or [], lo, hi),
        )
        return {self._name(cid): [value for _, value in group] for cid, group in groupby(rows, itemgetter(0))}

    def bucket_counts(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, int]:
        """How many buckets with a value each check has among those starting in [since, until)."""
        lo, hi = self._bucket_range(tier, since, until)
        rows = self._fetch(
            f"SELECT check_id, count(*) FROM {tier_table(tier)} WHERE check_id = ANY(%s) AND bucket >= %s "
            f"AND bucket < %s AND coalesce(v_n, n) > 0 GROUP BY check_id ORDER BY check_id",
            (self._ids(check_ids) or [], lo, hi),
        )
        return {self._name(cid): int(count) for cid, count in rows}

    def bucket_top(self, tier: str, since: float, until: float, check_ids: Sequence[str], n: int) -> list[float]:
        """The `n` largest of the bucket maxima `bucket_maxima` gives for these checks, largest first."""
        lo, hi = self._bucket_range(tier, since, until)
        rows = self._fetch(
            f"SELECT coalesce(v_max, v_sum) / 1000.0 AS v FROM {tier_table(tier)} "
            f"WHERE check_id = ANY(%s) AND bucket >= %s AND bucket < %s AND coalesce(v_n, n) > 0 "
            f"ORDER BY v DESC LIMIT %s",
            (self._ids(check_ids) or [], lo, hi, n),
        )
        return [value for (value,) in rows]

    def oldest_bucket(self, tier: str, check_ids: Sequence[str]) -> float | None:
        """Start of the oldest bucket kept for any of these checks (None if there is none)."""
        ids = (self._ids(check_ids) or [])[:20]  # the tier's retention is the same for every check: a few do
        rows = self._fetch(
            f"SELECT min(b) FROM unnest(%s::integer[]) AS c(id) "
            f"CROSS JOIN LATERAL (SELECT min(bucket) AS b FROM {tier_table(tier)} WHERE check_id = c.id) m",
            (ids,),
        )
        oldest = rows[0][0] if rows else None
        return None if oldest is None else bucket_start(tier, oldest, self.timezone)

    def runs(self, since: float, until: float) -> list[CollectorRun]:
        """Collector runs overlapping [since, until)."""
        rows = self._fetch(
            "SELECT id, started, heartbeat, stopped, host, pid FROM runs "
            "WHERE started < %s AND coalesce(stopped, heartbeat) >= %s ORDER BY started, id",
            (ms(until), ms(since)),
        )
        return [CollectorRun(r[0], r[1] / 1000.0, r[2] / 1000.0, _s(r[3]), r[4], r[5]) for r in rows]

    def recent_transitions(self, limit: int = 50, site_id: str | None = None) -> list[Transition]:
        """Newest check transitions first (all sites, or one)."""
        where = "" if site_id is None else "WHERE check_id IN (SELECT id FROM checks WHERE site = %s)"
        params: tuple[object, ...] = () if site_id is None else (site_id,)
        rows = self._fetch(
            f"SELECT check_id, t, old, new, hard, reason, flapping FROM transitions {where} "
            f"ORDER BY t DESC, id DESC LIMIT %s",
            (*params, limit),
        )
        return [
            Transition(self._name(r[0]), r[1] / 1000.0, r[2], r[3], bool(r[4]), r[5], bool(r[6])) for r in rows
        ]

    def recent_site_transitions(self, limit: int = 50, site_id: str | None = None) -> list[SiteTransition]:
        """Newest site status changes first (all sites, or one)."""
        where = "" if site_id is None else "WHERE site = %s"
        params: tuple[object, ...] = () if site_id is None else (site_id,)
        rows = self._fetch(
            f"SELECT site, t, old, new, reason, root_cause FROM site_transitions {where} "
            f"ORDER BY t DESC, id DESC LIMIT %s",
            (*params, limit),
        )
        return [SiteTransition(r[0], r[1] / 1000.0, r[2], r[3], r[4], r[5]) for r in rows]
