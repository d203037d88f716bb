"""The read side of the PostgreSQL history store: transitions and collector runs over a period (rollups: `_pg_rollups`).

Each query returns rows in the order the SQLite store's does (time, then insertion order), and times are
divided into seconds in Python as SQLite does in SQL (both IEEE divisions), so that reports built from
either store are byte for byte the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from bibnet_ops.store._api import CollectorRun, SiteTransition, Transition
from bibnet_ops.store._pg_base import _PgBase, ms


def _s(value: int | None) -> float | None:
    return None if value is None else value / 1000.0


class _PgQueryMixin(_PgBase):
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return list(self.pg.execute(sql, tuple(params)).fetchall())

    def _last_before(self, since: float, ids: list[int] | None, hard_only: bool, columns: str) -> list[tuple[Any, ...]]:
        """Each check's last transition before `since` (its state then), by check name (as SQLite reads them)."""
        hard = "AND hard = 1" if hard_only else ""
        where, params = ("", ()) if ids is None else ("WHERE c.id = ANY(%s)", (ids,))
        rows = self._fetch(
            f"SELECT {columns} FROM checks c CROSS JOIN LATERAL (SELECT * FROM transitions "
            f"WHERE check_id = c.id AND t < %s {hard} ORDER BY t DESC, id DESC LIMIT 1) tr {where} ORDER BY c.name",
            (ms(since), *params),
        )
        return rows

    def transitions(
        self, since: float, until: float, check_ids: Sequence[str] | None = None, hard_only: bool = True
    ) -> list[Transition]:
        """Transitions in [since, until), preceded for each check by its last one before `since`."""
        ids = self._ids(check_ids)
        hard = "AND hard = 1" if hard_only else ""
        where_ids, params = ("", ()) if ids is None else ("AND check_id = ANY(%s)", (ids,))
        cols = "tr.check_id, tr.t, tr.old, tr.new, tr.hard, tr.reason, tr.flapping"
        before = sorted(self._last_before(since, ids, hard_only, cols), key=itemgetter(1))
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
        for cid, t, new, reason in before:
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
