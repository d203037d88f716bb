"""The SQLite history store: one file in WAL mode, safe against a killed process, readable while written.

One `SqliteStore` object belongs to one thread (the writer's, or a reader's); readers open their own
connection with `readonly=True`, which WAL lets run alongside the writer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from bibnet_ops.store._api import (
    AuditEntry,
    CheckInfo,
    CollectorRun,
    MaintenanceWindow,
    Rollup,
    SchemaTooNewError,
    SiteTransition,
    StoreError,
    Transition,
)
from bibnet_ops.store._rollup import Agg, bucket_of, bucket_start
from bibnet_ops.store._schema import ROLLUP_TIERS, SCHEMA_VERSION, migrate

__all__ = ["Retention", "SqliteStore"]

_ROLLUP_COLS = "n, failures, lat_n, lat_min, lat_sum, lat_max, v_n, v_min, v_sum, v_max, v_last, delta"
_MAINT_COLS = (
    'id, scope, target, start, "end", days, local_start, local_end, timezone, exclude_sla, reason, '
    "created_by, created_at, ended_by, ended_at"
)


def _ms(t: float) -> int:
    return round(t * 1000)


def _s(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


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


class SqliteStore:
    """History in one SQLite file (see the module docstring for threading rules)."""

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        timezone: str = "Africa/Algiers",
        retention: Retention | None = None,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.retention = retention or Retention()
        self._check_ids: dict[str, int] = {}
        self._check_names: dict[int, str] = {}
        self._retention_cursor: tuple[int, int] = (0, 0)
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"history store {self.path} does not exist (has `collect` run yet?)")
                uri = f"file:{self.path.resolve()}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                # FULL: a committed transition survives even a power cut, at one fsync per batch
                self.conn.execute("PRAGMA synchronous = FULL")
                migrate(self.conn, str(self.path))
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('timezone', ?)", (timezone,))
            else:
                version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
                if version == 0:
                    raise StoreError(f"{self.path} is not a bibnet-ops history store (or is empty)")
                if version > SCHEMA_VERSION:
                    raise SchemaTooNewError(
                        f"{self.path} has schema version {version}, but this bibnet-ops only knows up to "
                        f"version {SCHEMA_VERSION}: upgrade bibnet-ops"
                    )
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
            self.timezone = row[0] if row else timezone
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open history store {self.path}: {exc}") from exc
        self._load_checks()

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ checks
    def _load_checks(self) -> None:
        for cid, name in self.conn.execute("SELECT id, name FROM checks"):
            self._check_ids[name] = cid
            self._check_names[cid] = name

    def register_checks(self, checks: Iterable[CheckInfo]) -> None:
        """Record checks (ids, site, device, metric, device kind); existing ones get their details updated."""
        with self._tx():
            for c in checks:
                self.conn.execute(
                    "INSERT INTO checks (name, site, device, metric, kind) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET site = excluded.site, device = excluded.device, "
                    "metric = excluded.metric, kind = excluded.kind",
                    (c.check_id, c.site_id, c.device_id, c.metric, c.kind),
                )
        self._load_checks()

    def _check_id(self, name: str) -> int:
        cid = self._check_ids.get(name)
        if cid is None:
            site, _, rest = name.partition("/")
            device = rest.partition("/")[0]
            cur = self.conn.execute(
                "INSERT INTO checks (name, site, device) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id",
                (name, site, device),
            )
            cid = int(cur.fetchone()[0])
            self._check_ids[name] = cid
            self._check_names[cid] = name
        return cid

    def checks(self) -> list[CheckInfo]:
        rows = self.conn.execute("SELECT name, site, device, metric, kind FROM checks ORDER BY name")
        return [CheckInfo(*row) for row in rows]

    def counters(self) -> dict[str, float]:
        """Last counter value seen per check (to count increments across a collector restart)."""
        rows = self.conn.execute("SELECT name, last_counter FROM checks WHERE last_counter IS NOT NULL")
        return {name: float(v) for name, v in rows}

    def _ids(self, names: Sequence[str] | None) -> list[int] | None:
        if names is None:
            return None
        return [self._check_ids[n] for n in names if n in self._check_ids]

    # ------------------------------------------------------------------ writing
    def _tx(self) -> _Transaction:
        return _Transaction(self.conn)

    def write_batch(
        self,
        transitions: Sequence[Transition],
        site_transitions: Sequence[SiteTransition],
        rollups: Sequence[tuple[str, str, int, Agg]],
        flapping: Sequence[tuple[str, float, bool, float]] = (),
        counters: dict[str, float] | None = None,
    ) -> None:
        """Commit one batch atomically; rollups (tier, check, bucket, agg) merge into existing buckets."""
        with self._tx():
            self.conn.executemany(
                "INSERT INTO transitions (check_id, t, old, new, hard, flapping, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        self._check_id(tr.check_id),
                        _ms(tr.time),
                        tr.old,
                        tr.new,
                        int(tr.hard),
                        int(tr.flapping),
                        tr.reason,
                    )
                    for tr in transitions
                ],
            )
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
            with self._tx():
                cur = self.conn.execute(
                    "DELETE FROM transitions WHERE id IN (SELECT id FROM transitions WHERE t < ? ORDER BY t LIMIT ?)",
                    (cutoff_ms, batch_checks * 100),
                )
            if cur.rowcount:
                self._retention_cursor = (stage, 0)
                return cur.rowcount
        self._retention_cursor = (0, 0)
        return None

    # ------------------------------------------------------------------ reading
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

    # ------------------------------------------------------------------ maintenance
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


def _tier(tier: str) -> str:
    if tier not in ROLLUP_TIERS:
        raise ValueError(f"unknown rollup tier {tier!r}")
    return tier


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


class _Transaction:
    """`with store._tx():` — BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
