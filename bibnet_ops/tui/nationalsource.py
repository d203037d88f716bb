"""The ministry's console source: live state of the whole country read from the central store (no Textual).

No collector runs in the console: the regional collectors forward their transitions to the central
PostgreSQL store, which keeps every check's and site's latest state (`national_check_state`,
`national_site_state`) and every collector's heartbeat and health (`national_collectors`). A thread
reads those small tables every `interval` seconds and turns what changed into the engine's own events,
so the dashboard's screens work unchanged; a state appears here within about `interval` plus the
collector's half-second commit of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from bibnet_ops.engine import Evidence
from bibnet_ops.events import SiteStatusChange, StateChange
from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.store import StoreTarget
from bibnet_ops.tui.source import PollHealth

__all__ = ["CollectorRow", "NationalSource", "StoreAcks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectorRow:
    """One regional collector as the central store last heard of it."""

    id: str
    group: str
    host: str
    pid: int
    heartbeat_age: float | None
    stopped: bool
    health: dict[str, Any]
    silent_after: float

    @property
    def state(self) -> str:
        """"running", "stopped" (left cleanly) or "silent" (no heartbeat for longer than its lease time)."""
        if self.stopped:
            return "stopped"
        if self.heartbeat_age is None or self.heartbeat_age > self.silent_after:
            return "silent"
        return "running"


class NationalSource:
    """An `EventSource` over the central store (see the module docstring).

    Args:
        target: the central PostgreSQL store (a read-only role is enough).
        interval: seconds between reads of the state tables.
        silent_after: a collector whose heartbeat is older than this is shown silent.
    """

    def __init__(self, target: StoreTarget, *, interval: float = 1.0, silent_after: float = 20.0) -> None:
        self.target = target
        self.interval = interval
        self.silent_after = silent_after
        self._events: deque[object] = deque()
        self._checks: dict[str, tuple[str, bool, float]] = {}
        self._sites: dict[str, tuple[str, float]] = {}
        self._collectors: list[CollectorRow] = []
        self._error: str | None = None
        self._error_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self.reads = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> NationalSource:
        self._thread = threading.Thread(target=self._run, name="bibnet-national", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.read_once()
            except Exception as exc:  # the console keeps the last picture and says the store is away
                self._failed(exc)
            self._stop.wait(self.interval)
        self._close()

    def read_once(self) -> None:
        """Read the state tables once and queue the changes as events."""
        import psycopg

        if self._conn is None:
            kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 5}
            password = self.target.resolve_password()
            if password is not None:
                kwargs["password"] = password
            self._conn = psycopg.connect(self.target.location, **kwargs)
        conn = self._conn
        checks = conn.execute("SELECT check_name, site, status, hard, since, reason, flapping "
                              "FROM national_check_state").fetchall()
        sites = conn.execute("SELECT site, status, since, reason, root_cause FROM national_site_state").fetchall()
        rows = conn.execute("SELECT id, grp, host, pid, extract(epoch FROM now() - heartbeat), stopped IS NOT NULL, "
                            "health FROM national_collectors ORDER BY grp, id").fetchall()
        for name, site, status, hard, since, reason, flapping in checks:
            key = (status, bool(hard), float(since))
            old = self._checks.get(name)
            if old == key:
                continue
            self._checks[name] = key
            new = _check_status(status)
            self._events.append(StateChange(name, site, float(since), _check_status(old[0]) if old else new, new,
                                            bool(hard), reason, flapping=bool(flapping)))
        for site, status, since, reason, root in sites:
            skey = (status, float(since))
            sold = self._sites.get(site)
            if sold == skey:
                continue
            self._sites[site] = skey
            snew = SiteStatus(status)
            self._events.append(SiteStatusChange(site, float(since), SiteStatus(sold[0]) if sold else snew, snew,
                                                 reason, root))
        self._collectors = [
            CollectorRow(r[0], r[1], r[2], int(r[3]), None if r[4] is None else float(r[4]), bool(r[5]),
                         dict(r[6] or {}), self.silent_after) for r in rows]
        self._error = None
        self._error_since = None
        self.reads += 1

    def _failed(self, exc: BaseException) -> None:
        from bibnet_ops.store._pg_conn import pg_error

        self._error = str(pg_error(exc, self.target.display, [self.target.resolve_password() or ""])) \
            if _is_psycopg(exc) else (str(exc).splitlines() or [type(exc).__name__])[0]
        if self._error_since is None:
            self._error_since = time.time()
            log.warning("national console: %s", self._error)
        self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # a dead connection may fail to close; it is gone anyway
                log.debug("closing: %s", exc)

    # ------------------------------------------------------------------ EventSource
    def drain(self) -> list[object]:
        out = []
        for _ in range(len(self._events)):
            try:
                out.append(self._events.popleft())
            except IndexError:
                break
        return out

    def poll_health(self) -> PollHealth | None:
        """The country's polling as one figure: checks/s summed, the worst lag p99 and heartbeat age."""
        running = [c for c in self._collectors if c.state == "running"]
        if not running:
            return None
        rate = sum(float(c.health.get("checks_per_second", 0.0)) for c in running)
        lag = max(float(c.health.get("lag_p99", 0.0)) for c in running)
        ages = [c.heartbeat_age for c in running if c.heartbeat_age is not None]
        return PollHealth(rate, lag, min(ages) if ages else None)

    def poll_now(self, pattern: str) -> bool:
        return False  # the console polls nothing itself: the collector owning the site does

    def collector_stopped(self) -> str | None:
        return None

    def events_dropped(self) -> int:
        return 0

    def evidence(self, check_id: str) -> Future[Evidence]:
        future: Future[Evidence] = Future()
        future.set_exception(LookupError("raw replies stay with the regional collector that polled them"))
        return future

    # ------------------------------------------------------------------ national figures
    def collectors(self) -> list[CollectorRow]:
        """Every collector the central store knows, as last read."""
        return list(self._collectors)

    def store_error(self) -> tuple[str, float] | None:
        """Why the central store cannot be read now, and since when (None while it can)."""
        if self._error is None or self._error_since is None:
            return None
        return self._error, self._error_since

    def notice(self, clock: Any = None) -> tuple[str, str] | None:
        """One line for the header: the store away, collectors silent or cut off from it (None: all well)."""
        from bibnet_ops.tui.i18n import tr

        err = self.store_error()
        if err is not None:
            return tr("national.store_away", reason=err[0]), "down"
        rows = self._collectors
        silent = [c for c in rows if c.state == "silent"]
        queued = sum(int(c.health.get("queued_events", 0)) for c in rows if c.state == "running")
        running = sum(1 for c in rows if c.state == "running")
        parts = [tr("national.collectors", running=running, total=len(rows))]
        if silent:
            parts.append(tr("national.silent", ids=", ".join(c.id for c in silent)))
        if queued:
            parts.append(tr("national.queued", n=queued))
        return " · ".join(parts), ("degraded" if silent or queued else "plain")


def _check_status(value: str) -> CheckStatus:
    try:
        return CheckStatus(value)
    except ValueError:
        return CheckStatus.UNKNOWN


def _is_psycopg(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, psycopg.Error)


class StoreAcks:
    """Acknowledgements written straight into the central store, where the owning collector's manager reads them.

    The console runs no AlertManager: the collector that polls the site re-reads the store's acks every few
    seconds and stops reminders and escalation from then on.
    """

    def __init__(self, target: StoreTarget) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.target = target
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bibnet-acks")

    def _with_log(self, work: Any) -> Future[Any]:
        def run() -> Any:
            from bibnet_ops.alerts import AlertLog

            log = AlertLog(self.target)
            try:
                return work(log)
            finally:
                log.close()

        return self._pool.submit(run)

    def acknowledge(self, keys: Any, comment: str, *, author: str | None = None, sticky: bool = False,
                    expires_at: float | None = None, policy: Any = None) -> Future[Any]:
        from bibnet_ops.alerts import acknowledge

        targets = list(keys)
        return self._with_log(lambda log: acknowledge(log, targets, comment, sticky=sticky, expires_at=expires_at,
                                                      author=author, policy=policy))

    def unacknowledge(self, keys: Any, *, who: str | None = None, policy: Any = None) -> Future[Any]:
        from bibnet_ops.alerts import unacknowledge

        targets = list(keys)
        return self._with_log(lambda log: unacknowledge(log, targets, who=who, policy=policy))

    def active_acks(self) -> Future[Any] | None:
        return None  # the console reads them from the store

    def close(self) -> None:
        self._pool.shutdown(wait=False)
