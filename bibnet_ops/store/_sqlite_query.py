"""The read side of the SQLite history store: transitions, rollups and collector runs over a period."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter

from bibnet_ops.store._api import CollectorRun, Rollup, SiteTransition, Transition
from bibnet_ops.store._rollup import Agg, bucket_of, bucket_start
from bibnet_ops.store._schema import ROLLUP_TIERS
from bibnet_ops.store._sqlite_base import _ROLLUP_COLS, _ms, _s, _SqliteBase, _tier


class _QueryMixin(_SqliteBase):
    def transitions(
        self, since: float, until: float, check_ids: Sequence[str] | None = None, hard_only: bool = True
    ) -> list[Transition]:
        """Transitions in [since, until), preceded for each check by its last one before `since`."""
        ids = self._ids(check_ids)
        hard = "AND hard = 1" if hard_only else ""
        where_ids = "" if ids is None else f"AND check_id IN ({','.join(map(str, ids))})"
        rows = self.conn.execute(
            f"SELECT check_id, t, old, new, hard, reason, flapping FROM transitions "
            f"WHERE t >= ? AND t < ? {hard} {where_ids} ORDER BY t, id",
            (_ms(since), _ms(until)),
        ).fetchall()
        before = self.conn.execute(
            f"SELECT tr.check_id, tr.t, tr.old, tr.new, tr.hard, tr.reason, tr.flapping FROM checks c "
            f"JOIN transitions tr ON tr.id = (SELECT id FROM transitions WHERE check_id = c.id AND t < ? "
            f"{hard} ORDER BY t DESC, id DESC LIMIT 1) "
            f"{'' if ids is None else 'WHERE c.id IN (' + ','.join(map(str, ids)) + ')'}",
            (_ms(since),),
        ).fetchall()
        return [
            Transition(self._check_names[r[0]], r[1] / 1000.0, r[2], r[3], bool(r[4]), r[5], bool(r[6]))
            for r in [*sorted(before, key=lambda r: r[1]), *rows]
        ]

    def hard_changes(
        self, since: float, until: float, check_ids: Sequence[str] | None = None
    ) -> dict[str, list[tuple[float, str, str]]]:
        """Hard transitions per check as (time, new state, reason), in time order, each check's list led
        by its last one before `since`: what `transitions` returns, without a dataclass per row (a year
        of a national network is over half a million rows)."""
        ids = self._ids(check_ids)
        where_ids = "" if ids is None else f"AND check_id IN ({','.join(map(str, ids))})"
        names = self._check_names
        out: dict[str, list[tuple[float, str, str]]] = {}
        before = self.conn.execute(
            f"SELECT tr.check_id, tr.t / 1000.0, tr.new, tr.reason FROM checks c "
            f"JOIN transitions tr ON tr.id = (SELECT id FROM transitions WHERE check_id = c.id AND t < ? "
            f"AND hard = 1 ORDER BY t DESC, id DESC LIMIT 1) "
            f"{'' if ids is None else 'WHERE c.id IN (' + ','.join(map(str, ids)) + ')'}",
            (_ms(since),),
        ).fetchall()
        rows = self.conn.execute(
            f"SELECT check_id, t / 1000.0, new, reason FROM transitions "
            f"WHERE t >= ? AND t < ? AND hard = 1 {where_ids} ORDER BY t, id",
            (_ms(since), _ms(until)),
        )
        for cid, t, new, reason in before:
            out[names[cid]] = [(t, new, reason)]
        lists: dict[int, list[tuple[float, str, str]]] = {}
        for cid, t, new, reason in rows:
            changes = lists.get(cid)
            if changes is None:
                changes = lists[cid] = out.setdefault(names[cid], [])
            changes.append((t, new, reason))
        return out

    def site_transitions(
        self, since: float, until: float, site_ids: Sequence[str] | None = None
    ) -> list[SiteTransition]:
        """Site status changes in [since, until), preceded for each site by its last one before `since`."""
        where = "" if site_ids is None else f"AND site IN ({','.join('?' * len(site_ids))})"
        params = tuple(site_ids or ())
        rows = self.conn.execute(
            f"SELECT site, t, old, new, reason, root_cause FROM site_transitions "
            f"WHERE t >= ? AND t < ? {where} ORDER BY t, id",
            (_ms(since), _ms(until), *params),
        ).fetchall()
        before = self.conn.execute(
            f"SELECT site, t, old, new, reason, root_cause FROM site_transitions s "
            f"WHERE id = (SELECT id FROM site_transitions WHERE site = s.site AND t < ? "
            f"ORDER BY t DESC, id DESC LIMIT 1) {where}",
            (_ms(since), *params),
        ).fetchall()
        return [
            SiteTransition(r[0], r[1] / 1000.0, r[2], r[3], r[4], r[5])
            for r in [*sorted(before, key=lambda r: r[1]), *rows]
        ]

    def rollups(self, tier: str, since: float, until: float, check_ids: Sequence[str] | None = None) -> list[Rollup]:
        """Rollups of a tier whose bucket starts in [since, until), ordered by check then time."""
        if tier not in ROLLUP_TIERS:
            raise ValueError(f"unknown rollup tier {tier!r}")
        ids = self._ids(check_ids)
        lo, hi = self._bucket_range(tier, since, until)
        where_ids = "" if ids is None else f"AND check_id IN ({','.join(map(str, ids))})"
        rows = self.conn.execute(
            f"SELECT check_id, bucket, {_ROLLUP_COLS} FROM rollup_{tier} "
            f"WHERE bucket >= ? AND bucket < ? {where_ids} ORDER BY check_id, bucket",
            (lo, hi),
        )
        out = []
        for row in rows:
            agg = Agg.from_row(row[2:])
            out.append(
                Rollup(
                    check_id=self._check_names.get(row[0], str(row[0])),
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
        ids = ",".join(map(str, self._ids(check_ids) or [])) or "NULL"
        rows = self.conn.execute(
            f"SELECT check_id, total(delta) FROM rollup_{_tier(tier)} "
            f"WHERE check_id IN ({ids}) AND bucket >= ? AND bucket < ? GROUP BY check_id",
            (lo, hi),
        )
        return {self._check_names[cid]: float(total) for cid, total in rows}

    def bucket_maxima(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, list[float]]:
        """Each bucket's maximum value per check (in time order) over buckets starting in [since, until)."""
        lo, hi = self._bucket_range(tier, since, until)
        ids = ",".join(map(str, self._ids(check_ids) or [])) or "NULL"
        # a bucket with one value stores it as v_sum only (see Agg.to_row); values are in thousandths
        rows = self.conn.execute(
            f"SELECT check_id, coalesce(v_max, v_sum) / 1000.0 FROM rollup_{_tier(tier)} "
            f"WHERE check_id IN ({ids}) AND bucket >= ? AND bucket < ? AND coalesce(v_n, n) > 0 "
            f"ORDER BY check_id, bucket",
            (lo, hi),
        ).fetchall()
        names = self._check_names
        return {names[cid]: [value for _, value in group] for cid, group in groupby(rows, itemgetter(0))}

    def bucket_counts(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, int]:
        """How many buckets with a value each check has among those starting in [since, until)."""
        lo, hi = self._bucket_range(tier, since, until)
        ids = ",".join(map(str, self._ids(check_ids) or [])) or "NULL"
        rows = self.conn.execute(
            f"SELECT check_id, count(*) FROM rollup_{_tier(tier)} "
            f"WHERE check_id IN ({ids}) AND bucket >= ? AND bucket < ? AND coalesce(v_n, n) > 0 GROUP BY check_id",
            (lo, hi),
        )
        return {self._check_names[cid]: count for cid, count in rows}

    def bucket_top(self, tier: str, since: float, until: float, check_ids: Sequence[str], n: int) -> list[float]:
        """The `n` largest of the bucket maxima `bucket_maxima` gives for these checks, largest first.

        What a percentile near the top needs, sorted by SQLite in a heap of `n` values instead of every
        value of a year crossing into Python.
        """
        lo, hi = self._bucket_range(tier, since, until)
        ids = self._ids(check_ids) or []
        # one check (a row per site) binds its id: one prepared statement serves them all
        where = "check_id = ?" if len(ids) == 1 else f"check_id IN ({','.join(map(str, ids)) or 'NULL'})"
        rows = self.conn.execute(
            f"SELECT coalesce(v_max, v_sum) / 1000.0 AS v FROM rollup_{_tier(tier)} "
            f"WHERE {where} AND bucket >= ? AND bucket < ? AND coalesce(v_n, n) > 0 ORDER BY v DESC LIMIT ?",
            (*ids[:1], lo, hi, n) if len(ids) == 1 else (lo, hi, n),
        )
        return [value for (value,) in rows]

    def oldest_bucket(self, tier: str, check_ids: Sequence[str]) -> float | None:
        """Start of the oldest bucket kept for any of these checks (None if there is none)."""
        ids = self._ids(check_ids) or []
        oldest = None
        for cid in ids[:20]:  # the tier's retention is the same for every check: a few are enough
            row = self.conn.execute(
                f"SELECT min(bucket) FROM rollup_{_tier(tier)} WHERE check_id = ?", (cid,)
            ).fetchone()
            if row[0] is not None and (oldest is None or row[0] < oldest):
                oldest = row[0]
        return None if oldest is None else bucket_start(tier, oldest, self.timezone)

    def runs(self, since: float, until: float) -> list[CollectorRun]:
        """Collector runs overlapping [since, until)."""
        rows = self.conn.execute(
            "SELECT id, started, heartbeat, stopped, host, pid FROM runs "
            "WHERE started < ? AND coalesce(stopped, heartbeat) >= ? ORDER BY started",
            (_ms(until), _ms(since)),
        )
        return [CollectorRun(r[0], r[1] / 1000.0, r[2] / 1000.0, _s(r[3]), r[4], r[5]) for r in rows]

    def recent_transitions(self, limit: int = 50, site_id: str | None = None) -> list[Transition]:
        """Newest check transitions first (all sites, or one)."""
        where = "" if site_id is None else "WHERE check_id IN (SELECT id FROM checks WHERE site = ?)"
        params: tuple[object, ...] = () if site_id is None else (site_id,)
        rows = self.conn.execute(
            f"SELECT check_id, t, old, new, hard, reason, flapping FROM transitions {where} "
            f"ORDER BY t DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [
            Transition(self._check_names.get(r[0], str(r[0])), r[1] / 1000.0, r[2], r[3], bool(r[4]), r[5], bool(r[6]))
            for r in rows
        ]

    def recent_site_transitions(self, limit: int = 50, site_id: str | None = None) -> list[SiteTransition]:
        """Newest site status changes first (all sites, or one)."""
        where = "" if site_id is None else "WHERE site = ?"
        params: tuple[object, ...] = () if site_id is None else (site_id,)
        rows = self.conn.execute(
            f"SELECT site, t, old, new, reason, root_cause FROM site_transitions {where} "
            f"ORDER BY t DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [SiteTransition(r[0], r[1] / 1000.0, r[2], r[3], r[4], r[5]) for r in rows]
