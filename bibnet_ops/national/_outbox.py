"""The collector's local outbox: everything it would write to the central store, in a SQLite file first.

Every batch the history writer commits lands here (one SQLite transaction, synchronous=FULL), and the
forwarder replays it to the central store in sequence order. One sequence numbers every row (events,
rollups, counters), so "forwarded up to N" is one number the central store keeps in the same
transaction as the rows themselves: a replay interrupted between the central commit and the local
delete skips what the central store already has (`Forwarder`).

Bound: transitions, site changes, flapping changes and hour/day rollups are never dropped (hour and day
rollups merge in place, so 72 h of a 300-site region is ~110,000 small rows); minute rollups are kept up to
`max_minute_rows` (default 600,000: ~6.5 h of 1,500 checks) and the oldest minutes go first beyond it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bibnet_ops.store import CheckInfo, SiteTransition, StoreError, Transition
from bibnet_ops.store._rollup import Agg

__all__ = ["DEFAULT_MINUTE_ROWS", "Outbox", "OutboxBatch"]

DEFAULT_MINUTE_ROWS = 600_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rollups (
    seq INTEGER PRIMARY KEY, tier TEXT NOT NULL, check_name TEXT NOT NULL, bucket INTEGER NOT NULL, agg TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rollups_key ON rollups (tier, check_name, bucket);
CREATE INDEX IF NOT EXISTS rollups_minutes ON rollups (tier, bucket);
CREATE TABLE IF NOT EXISTS counters (check_name TEXT PRIMARY KEY, value REAL NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS states (
    check_name TEXT PRIMARY KEY, status TEXT NOT NULL, hard INTEGER NOT NULL, hard_status TEXT NOT NULL,
    since REAL NOT NULL, reason TEXT NOT NULL
) WITHOUT ROWID;
"""


@dataclass
class OutboxBatch:
    """Rows of the outbox up to `seq`, in the form the central store's `write_batch` takes."""

    seq: int
    checks: list[CheckInfo] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    site_transitions: list[SiteTransition] = field(default_factory=list)
    flapping: list[tuple[str, float, bool, float]] = field(default_factory=list)
    rollups: list[tuple[str, str, int, Agg]] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    runs: list[tuple[str, float]] = field(default_factory=list)  # ("start"|"stop", time)

    @property
    def rows(self) -> int:
        return (len(self.checks) + len(self.transitions) + len(self.site_transitions) + len(self.flapping)
                + len(self.rollups) + len(self.counters) + len(self.runs))


class Outbox:
    """A SQLite file of pending central writes; safe to use from the writer and forwarder threads at once.

    It offers the part of `HistoryStore` the history writer calls (`write_batch`, `register_checks`,
    `counters`, `start_run`, `heartbeat`, `apply_retention`), so the standard `StoreWriter` thread fills it.

    Args:
        path: the outbox file (created with its directory).
        timezone: the network's time zone (day rollups are local days).
        max_minute_rows: minute rollups kept at most; the oldest minutes are dropped beyond it.
    """

    def __init__(self, path: str | Path, *, timezone: str = "Africa/Algiers",
                 max_minute_rows: int = DEFAULT_MINUTE_ROWS) -> None:
        self.path = Path(path)
        self.timezone = timezone
        self.max_minute_rows = max_minute_rows
        self._lock = threading.Lock()
        self._file_lock = _lock_file(self.path)
        self._claimed = 0  # rows at or below this seq are (or may be) forwarded: never merged into
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a committed transition survives a power cut too
            self._db.executescript(_SCHEMA)
            self.epoch = self._meta("epoch") or self._set_meta_new("epoch", uuid.uuid4().hex)
            self._seq = max(int(self._meta("seq") or 0), self._max_seq())
            # rows found at open may already be in the central store (a kill -9 between its commit and our
            # delete): never merge into them, the forwarder sorts them out against the central cursor
            self._claimed = self._seq
            self._minute_rows = int(self._db.execute(
                "SELECT count(*) FROM rollups WHERE tier = 'minute'").fetchone()[0])
        except sqlite3.Error as exc:
            os.close(self._file_lock)
            raise StoreError(f"cannot use outbox {self.path}: {exc}") from None
        self.dropped_minute_rows = int(self._meta("dropped_minute_rows") or 0)

    # ------------------------------------------------------------------ meta
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta_new(self, key: str, value: str) -> str:
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return self._meta(key) or value

    def get(self, key: str) -> str | None:
        """A value the collector keeps with its outbox (e.g. the sites it last owned)."""
        with self._lock:
            return self._meta(key)

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                             "value = excluded.value", (key, value))

    def _max_seq(self) -> int:
        row = self._db.execute(
            "SELECT max(s) FROM (SELECT max(seq) AS s FROM events UNION ALL SELECT max(seq) FROM rollups "
            "UNION ALL SELECT max(seq) FROM counters)").fetchone()
        return int(row[0] or 0)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _save_seq(self) -> None:
        # kept apart from the rows: once the outbox is empty, a sequence number must still never come back
        self._db.execute("INSERT INTO meta (key, value) VALUES ('seq', ?) ON CONFLICT (key) DO UPDATE "
                         "SET value = excluded.value", (str(self._seq),))

    # ------------------------------------------------------------------ writer side (HistoryStore subset)
    def register_checks(self, checks: Iterable[CheckInfo]) -> None:
        rows = [[c.check_id, c.site_id, c.device_id, c.metric, c.kind] for c in checks]
        if rows:
            with self._lock, self._tx():
                self._db.execute("INSERT INTO events (seq, kind, body) VALUES (?, 'checks', ?)",
                                 (self._next(), json.dumps(rows)))
                self._save_seq()

    def counters(self) -> dict[str, float]:
        """Counters not yet forwarded (the central store's own are read by the forwarder at start)."""
        with self._lock:
            return {str(n): float(v) for n, v in self._db.execute("SELECT check_name, value FROM counters")}

    def start_run(self, now: float, host: str, pid: int) -> int:
        with self._lock, self._tx():
            self._db.execute("INSERT INTO events (seq, kind, body) VALUES (?, 'run', ?)",
                             (self._next(), json.dumps(["start", now, host, pid])))
            self._save_seq()
        return 1

    def heartbeat(self, run_id: int, now: float, stopped: bool = False) -> None:
        if stopped:
            with self._lock, self._tx():
                self._db.execute("INSERT INTO events (seq, kind, body) VALUES (?, 'run', ?)",
                                 (self._next(), json.dumps(["stop", now, "", 0])))
                self._save_seq()

    def apply_retention(self, now: float, batch_checks: int = 50) -> int | None:
        return None  # the outbox empties itself by forwarding; its bound is kept at every write

    def write_batch(
        self,
        transitions: Sequence[Transition],
        site_transitions: Sequence[SiteTransition],
        rollups: Sequence[tuple[str, str, int, Agg]],
        flapping: Sequence[tuple[str, float, bool, float]] = (),
        counters: dict[str, float] | None = None,
    ) -> None:
        """Append one batch in one transaction (durable on return); rollups merge into unclaimed rows."""
        if not (transitions or site_transitions or rollups or flapping or counters):
            return
        with self._lock, self._tx():
            ins = "INSERT INTO events (seq, kind, body) VALUES (?, ?, ?)"
            for tr in transitions:
                self._db.execute(ins, (self._next(), "t", json.dumps(
                    [tr.check_id, tr.time, tr.old, tr.new, tr.hard, tr.reason, tr.flapping])))
                # the latest state stays here after forwarding: a restart without the central store seeds from it
                self._db.execute(
                    "INSERT INTO states AS s VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (check_name) DO UPDATE SET "
                    "status = excluded.status, hard = excluded.hard, since = excluded.since, reason = excluded.reason, "
                    "hard_status = CASE WHEN excluded.hard THEN excluded.status ELSE s.hard_status END "
                    "WHERE s.since <= excluded.since",
                    (tr.check_id, tr.new, int(tr.hard), tr.new if tr.hard else "OK", tr.time, tr.reason))
            for st in site_transitions:
                self._db.execute(ins, (self._next(), "s", json.dumps(
                    [st.site_id, st.time, st.old, st.new, st.reason, st.root_cause])))
            for fl in flapping:
                self._db.execute(ins, (self._next(), "f", json.dumps(list(fl))))
            for tier, check, bucket, agg in rollups:
                self._merge_rollup(tier, check, bucket, agg)
            for check, value in (counters or {}).items():
                self._db.execute(
                    "INSERT INTO counters (check_name, value, seq) VALUES (?, ?, ?) ON CONFLICT (check_name) "
                    "DO UPDATE SET value = excluded.value, seq = excluded.seq", (check, value, self._next()))
            self._bound_minutes()
            self._save_seq()

    def _merge_rollup(self, tier: str, check: str, bucket: int, agg: Agg) -> None:
        row = self._db.execute(
            "SELECT seq, agg FROM rollups WHERE tier = ? AND check_name = ? AND bucket = ? AND seq > ?",
            (tier, check, bucket, self._claimed)).fetchone()
        if row is not None:
            merged = Agg.from_row(json.loads(row[1]))
            merged.merge(agg)
            self._db.execute("UPDATE rollups SET seq = ?, agg = ? WHERE seq = ?",
                             (self._next(), json.dumps(merged.to_row()), row[0]))
            return
        self._db.execute("INSERT INTO rollups (seq, tier, check_name, bucket, agg) VALUES (?, ?, ?, ?, ?)",
                         (self._next(), tier, check, bucket, json.dumps(agg.to_row())))
        if tier == "minute":
            self._minute_rows += 1

    def _bound_minutes(self) -> None:
        excess = self._minute_rows - self.max_minute_rows
        if excess <= 0:
            return
        # oldest minutes first; a claimed row may go too (the forwarder then finds it already gone)
        cur = self._db.execute(
            "DELETE FROM rollups WHERE seq IN (SELECT seq FROM rollups WHERE tier = 'minute' "
            "ORDER BY bucket, seq LIMIT ?)", (excess,))
        self._minute_rows -= cur.rowcount
        self.dropped_minute_rows += cur.rowcount
        self._db.execute("INSERT INTO meta (key, value) VALUES ('dropped_minute_rows', ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (str(self.dropped_minute_rows),))

    def states(self, sites: Iterable[str], pending_only: bool = False) -> list[tuple[str, str, bool, str, float, str]]:
        """The latest state this collector saw of the checks of these sites (check, status, hard, hard status,
        since, reason), as `national_check_state` holds them centrally; with `pending_only`, only of the
        checks whose transitions are still waiting to be forwarded."""
        wanted = set(sites)
        pending = " WHERE check_name IN (SELECT json_extract(body, '$[0]') FROM events WHERE kind = 't')" \
            if pending_only else ""
        with self._lock:
            rows = self._db.execute(
                "SELECT check_name, status, hard, hard_status, since, reason FROM states" + pending).fetchall()
        return [(c, st, bool(h), hs, float(t), r) for c, st, h, hs, t, r in rows if c.split("/", 1)[0] in wanted]

    def purge_site(self, site: str, since: float) -> int:
        """Drop what this collector saw of `site` from `since` on: another collector held it from then.

        A collector cut off from the central store keeps polling; if its group took the site over meanwhile,
        the new owner's history is the one of record. Hour and day rollups are kept (they cannot be split).
        """
        prefix = site + "/"
        with self._lock, self._tx():
            n = self._db.execute(
                "DELETE FROM events WHERE ((kind IN ('t', 'f') AND substr(json_extract(body, '$[0]'), 1, ?) = ?) "
                "OR (kind = 's' AND json_extract(body, '$[0]') = ?)) AND json_extract(body, '$[1]') >= ?",
                (len(prefix), prefix, site, since)).rowcount
            cur = self._db.execute(
                "DELETE FROM rollups WHERE tier = 'minute' AND substr(check_name, 1, ?) = ? AND bucket >= ?",
                (len(prefix), prefix, int(since // 60)))
            self._minute_rows -= cur.rowcount
            self._db.execute("DELETE FROM states WHERE substr(check_name, 1, ?) = ?", (len(prefix), prefix))
            return int(n + cur.rowcount)

    # ------------------------------------------------------------------ forwarder side
    @property
    def last_seq(self) -> int:
        """The sequence number of the last row written."""
        with self._lock:
            return self._seq

    def depth(self) -> int:
        """Rows waiting to be forwarded (events, rollups and counters)."""
        with self._lock:
            row = self._db.execute(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM rollups) "
                "+ (SELECT count(*) FROM counters)").fetchone()
            return int(row[0])

    def pending_events(self) -> int:
        """Transitions, site changes and flapping changes waiting (the figure the dashboard shows)."""
        with self._lock:
            return int(self._db.execute(
                "SELECT count(*) FROM events WHERE kind IN ('t', 's', 'f')").fetchone()[0])

    def claim(self, limit: int = 5000) -> OutboxBatch | None:
        """The oldest rows, at most `limit` of each kind, as one batch; None when the outbox is empty.

        Rows of the batch are no longer merged into; `release(batch.seq)` deletes them once forwarded.
        """
        with self._lock:
            upto = self._seq
            for table in ("events", "rollups", "counters"):
                row = self._db.execute(f"SELECT seq FROM {table} ORDER BY seq LIMIT 1 OFFSET ?",
                                       (limit - 1,)).fetchone()
                if row is not None:
                    upto = min(upto, int(row[0]))
            batch = OutboxBatch(upto)
            for kind, body in self._db.execute(
                    "SELECT kind, body FROM events WHERE seq <= ? ORDER BY seq", (upto,)):
                _decode_event(batch, kind, json.loads(body))
            for tier, check, bucket, agg in self._db.execute(
                    "SELECT tier, check_name, bucket, agg FROM rollups WHERE seq <= ? ORDER BY seq", (upto,)):
                batch.rollups.append((tier, check, int(bucket), Agg.from_row(json.loads(agg))))
            for check, value in self._db.execute("SELECT check_name, value FROM counters WHERE seq <= ?", (upto,)):
                batch.counters[str(check)] = float(value)
            if batch.rows == 0:
                return None
            self._claimed = upto
            return batch

    def release(self, upto: int) -> None:
        """Delete the rows at or below `upto` (the central store has them)."""
        with self._lock, self._tx():
            self._db.execute("DELETE FROM events WHERE seq <= ?", (upto,))
            cur = self._db.execute("DELETE FROM rollups WHERE seq <= ? AND tier = 'minute'", (upto,))
            self._minute_rows -= cur.rowcount
            self._db.execute("DELETE FROM rollups WHERE seq <= ?", (upto,))
            self._db.execute("DELETE FROM counters WHERE seq <= ?", (upto,))

    def close(self) -> None:
        """Nothing: the writer thread calls it on its way out, the forwarder may still be replaying."""

    def shutdown(self) -> None:
        """Close the file (after the writer and the forwarder have stopped)."""
        with self._lock:
            self._db.close()
            if self._file_lock >= 0:
                os.close(self._file_lock)  # releases the lock
                self._file_lock = -1

    def _tx(self) -> _Tx:
        return _Tx(self._db)


def _lock_file(path: Path) -> int:
    """Hold `<outbox>.lock` for the process's life: two processes appending to one outbox would interleave."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot use outbox {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StoreError(f"outbox {path} is in use by another collector process (pid {holder})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _decode_event(batch: OutboxBatch, kind: str, body: Any) -> None:
    if kind == "t":
        check, t, old, new, hard, reason, flapping = body
        batch.transitions.append(Transition(check, t, old, new, bool(hard), reason, bool(flapping)))
    elif kind == "s":
        site, t, old, new, reason, root = body
        batch.site_transitions.append(SiteTransition(site, t, old, new, reason, root))
    elif kind == "f":
        check, t, flapping, percent = body
        batch.flapping.append((check, t, bool(flapping), float(percent)))
    elif kind == "checks":
        batch.checks.extend(CheckInfo(*row) for row in body)
    elif kind == "run":
        batch.runs.append((body[0], float(body[1])))
