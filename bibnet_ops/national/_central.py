"""Writing an outbox batch into the central PostgreSQL store, exactly once, and reading the latest states.

`PgCentral.forward` commits, in one transaction of the central store: the history rows of the batch
(through the store's own `write_batch`), the latest check and site states they imply, and the outbox's
cursor (`national_forwarded`). Either all of it is there or none, so a forwarder that dies anywhere
replays from the cursor without duplicating a transition.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from bibnet_ops.engine import CheckSeed
from bibnet_ops.model import CheckStatus
from bibnet_ops.national._outbox import OutboxBatch
from bibnet_ops.store import CheckInfo, SiteTransition, Transition

__all__ = ["Central", "PgCentral", "read_seeds", "seeds_from_rows"]


class _TxStore(Protocol):
    """What the forwarder needs of the central store (PgStore): its transaction and connection."""

    pg: Any

    def _tx(self) -> AbstractContextManager[None]: ...

    def register_checks(self, checks: Iterable[CheckInfo]) -> None: ...

    def write_batch(self, transitions: Any, site_transitions: Any, rollups: Any, flapping: Any = (),
                    counters: Any = None) -> None: ...

    def start_run(self, now: float, host: str, pid: int) -> int: ...

    def heartbeat(self, run_id: int, now: float, stopped: bool = False) -> None: ...

    def close(self) -> None: ...


class Central(Protocol):
    """The central store as the forwarder sees it."""

    def forwarded(self, outbox: str) -> int:
        """The last outbox sequence number the central store holds for this outbox (0: none)."""
        ...

    def forward(self, outbox: str, collector: str, batch: OutboxBatch) -> None:
        """Commit the batch and the cursor atomically."""
        ...

    def heartbeat(self, now: float) -> None: ...

    def close(self) -> None: ...


class PgCentral:
    """A `Central` over a writable PgStore (one thread: the forwarder's).

    Args:
        store: the open central store.
        host: this machine's name, for the collector runs the forwarder records.
        pid: this process's id.
    """

    def __init__(self, store: _TxStore, host: str = "", pid: int = 0) -> None:
        self.store = store
        self.host = host
        self.pid = pid
        self.run_id: int | None = None

    def forwarded(self, outbox: str) -> int:
        with self.store._tx():
            row = self.store.pg.execute("SELECT seq FROM national_forwarded WHERE outbox = %s", (outbox,)).fetchone()
        return int(row[0]) if row else 0

    def forward(self, outbox: str, collector: str, batch: OutboxBatch) -> None:
        store = self.store
        with store._tx():
            if batch.checks:
                store.register_checks(batch.checks)
            for kind, t in batch.runs:
                if kind == "start":
                    self.run_id = store.start_run(t, self.host, self.pid)
                elif self.run_id is not None:
                    store.heartbeat(self.run_id, t, stopped=True)
            store.write_batch(batch.transitions, batch.site_transitions, batch.rollups, batch.flapping,
                              batch.counters)
            _update_states(store.pg, collector, batch.transitions, batch.site_transitions)
            store.pg.execute(
                "INSERT INTO national_forwarded (outbox, collector, seq) VALUES (%s, %s, %s) "
                "ON CONFLICT (outbox) DO UPDATE SET seq = excluded.seq, updated = now()",
                (outbox, collector, batch.seq),
            )

    def heartbeat(self, now: float) -> None:
        """Extend the collector run the outbox started (the central `runs` table bounds known history)."""
        if self.run_id is not None:
            self.store.heartbeat(self.run_id, now)

    def close(self) -> None:
        self.store.close()


def _update_states(pg: Any, collector: str, transitions: list[Transition], sites: list[SiteTransition]) -> None:
    """Fold the batch's transitions into the latest-state tables (an older replayed change never wins)."""
    if transitions:
        pg.cursor().executemany(
            "INSERT INTO national_check_state AS s (check_name, site, status, hard, hard_status, since, reason, "
            "flapping, collector) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (check_name) DO UPDATE "
            "SET status = excluded.status, hard = excluded.hard, since = excluded.since, reason = excluded.reason, "
            "flapping = excluded.flapping, collector = excluded.collector, hard_status = CASE WHEN excluded.hard "
            "THEN excluded.status ELSE s.hard_status END WHERE s.since <= excluded.since",
            [(tr.check_id, tr.check_id.split("/", 1)[0], tr.new, tr.hard, tr.new if tr.hard else "OK", tr.time,
              tr.reason, tr.flapping, collector) for tr in transitions],
        )
    if sites:
        pg.cursor().executemany(
            "INSERT INTO national_site_state AS s (site, status, since, reason, root_cause, collector) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site) DO UPDATE SET status = excluded.status, "
            "since = excluded.since, reason = excluded.reason, root_cause = excluded.root_cause, "
            "collector = excluded.collector WHERE s.since <= excluded.since",
            [(st.site_id, st.new, st.time, st.reason, st.root_cause, collector) for st in sites],
        )


def seeds_from_rows(rows: Iterable[tuple[Any, ...]]) -> dict[str, CheckSeed]:
    """CheckSeeds from `national_check_state` rows (check, status, hard, hard_status, since, reason).

    A SOFT state seeds attempt 1: the new owner then needs the full number of retries before HARD, so a
    takeover can delay an alert by a few polls but never raise a false one.
    """
    seeds: dict[str, CheckSeed] = {}
    for check, status, hard, hard_status, since, reason in rows:
        try:
            st, hst = CheckStatus(status), CheckStatus(hard_status)
        except ValueError:
            continue
        seeds[str(check)] = CheckSeed(st, hard=bool(hard), attempt=1, since=float(since), reason=str(reason),
                                      hard_status=None if hard else hst)
    return seeds


def read_seeds(pg: Any, sites: Iterable[str]) -> dict[str, CheckSeed]:
    """The latest forwarded state of every check of these sites."""
    rows = pg.execute(
        "SELECT check_name, status, hard, hard_status, since, reason FROM national_check_state WHERE site = ANY(%s)",
        (sorted(sites),),
    ).fetchall()
    return seeds_from_rows(rows)

