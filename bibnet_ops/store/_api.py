"""What the history store holds and the interface every backend (SQLite, PostgreSQL) provides.

Times are UTC epoch seconds (floats) at this interface; a backend may store them differently
(both keep integer milliseconds so that transitions are kept exactly).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bibnet_ops.store._rollup import Agg

__all__ = [
    "AuditEntry",
    "CheckInfo",
    "CollectorRun",
    "DeviceSpans",
    "HistoryStore",
    "MaintenanceWindow",
    "Rollup",
    "SchemaTooNewError",
    "SiteTransition",
    "StoreError",
    "StoreUnreachableError",
    "Transition",
]


class StoreError(Exception):
    """The history store cannot be opened or used (bad path, corrupt file, locked for too long)."""


class StoreUnreachableError(StoreError):
    """The store's server cannot be reached now (nothing listening, host unknown, connection lost): try later."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer bibnet-ops whose schema this version does not know."""


@dataclass(frozen=True)
class CheckInfo:
    """What the store knows of a check besides its id: where it lives and what it measures."""

    check_id: str
    site_id: str
    device_id: str
    metric: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Transition:
    """One state change of a check, kept exactly as the engine reported it."""

    check_id: str
    time: float
    old: str
    new: str
    hard: bool
    reason: str = ""
    flapping: bool = False


@dataclass(frozen=True)
class SiteTransition:
    """One change of a site's derived status (UP/DEGRADED/DOWN/UNREACHABLE/MAINTENANCE)."""

    site_id: str
    time: float
    old: str
    new: str
    reason: str = ""
    root_cause: str | None = None


@dataclass(frozen=True)
class Rollup:
    """Aggregate of a check's samples over one bucket (a minute, an hour or a local day).

    `start` is the bucket's first second (UTC epoch); latencies are in seconds; `delta` is the sum
    of the counter increments seen in the bucket (pages scanned, for a scanner), None without a counter.
    """

    check_id: str
    start: float
    count: int
    failures: int
    latency_min: float | None = None
    latency_avg: float | None = None
    latency_max: float | None = None
    value_min: float | None = None
    value_avg: float | None = None
    value_max: float | None = None
    value_last: float | None = None
    delta: float | None = None


@dataclass(frozen=True)
class CollectorRun:
    """A period during which a collector was writing to the store.

    `stopped` is None while it runs or if it was killed; then `heartbeat` (written every minute)
    bounds how long it is known to have run.
    """

    id: int
    started: float
    heartbeat: float
    stopped: float | None = None
    host: str = ""
    pid: int = 0

    @property
    def end(self) -> float:
        """Last moment the collector is known to have been running."""
        return self.stopped if self.stopped is not None else self.heartbeat


@dataclass(frozen=True)
class MaintenanceWindow:
    """Planned work on a site, a region or the whole network.

    A one-off window runs from `start` to `end` (UTC epoch; `end` None = until ended). A recurring
    window repeats on `days` (e.g. ("fri",)) from `local_start` to `local_end` ("HH:MM", in
    `timezone`) between `start` and `end`. `exclude_from_sla` says whether its time is removed
    from the service period of availability reports.
    """

    id: int
    scope: str  # "site", "region" or "all"
    target: str  # site id, region id, or "" for "all"
    start: float
    end: float | None
    reason: str = ""
    exclude_from_sla: bool = True
    days: tuple[str, ...] = ()
    local_start: str = ""
    local_end: str = ""
    timezone: str = "Africa/Algiers"
    created_by: str = ""
    created_at: float = 0.0
    ended_by: str = ""
    ended_at: float | None = None

    @property
    def recurring(self) -> bool:
        return bool(self.days)

    def applies_to(self, site_id: str, region: str = "") -> bool:
        """Whether the window covers a site (directly, through its region, or network-wide)."""
        if self.scope == "all":
            return True
        if self.scope == "region":
            return bool(region) and self.target == region
        return self.target == site_id


@dataclass(frozen=True)
class DeviceSpans:
    """Each device's worst-of timeline over a period, as the spans in it that are not up.

    `spans` maps a device ("site/device") to its (start, stop, category, reason) spans in time order:
    times in epoch seconds, `stop` None when the span lasts to the end of the period; category "down"
    or "unknown" (the time between spans is up); `reason` that of the check change that began a down
    span, None when several of the device's checks changed at that moment. A device in `known` without
    spans was up all along; one not in `known` never had a hard state (unknown all along). `checks`
    lists the check ids the store knows per device: the spans combine all of them.
    """

    checks: dict[str, frozenset[str]]
    known: frozenset[str]
    spans: dict[str, list[tuple[float, float | None, str, str | None]]]


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to a maintenance window, and when."""

    time: float
    who: str
    action: str
    window_id: int
    details: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class HistoryStore(Protocol):
    """The operations every history backend provides; the writer, reports and dashboard use only these."""

    timezone: str  # the time zone of daily rollups, kept by the store
    readonly: bool

    def close(self) -> None: ...

    # --- writing (called from the writer thread) ---
    def register_checks(self, checks: Iterable[CheckInfo]) -> None: ...

    def write_batch(
        self,
        transitions: Sequence[Transition],
        site_transitions: Sequence[SiteTransition],
        rollups: Sequence[tuple[str, str, int, Agg]],
        flapping: Sequence[tuple[str, float, bool, float]] = (),
        counters: dict[str, float] | None = None,
    ) -> None:
        """Commit one batch atomically; rollups (tier, check, bucket, agg) merge into existing buckets."""
        ...

    def counters(self) -> dict[str, float]: ...

    def start_run(self, now: float, host: str, pid: int) -> int: ...

    def heartbeat(self, run_id: int, now: float, stopped: bool = False) -> None: ...

    def apply_retention(self, now: float, batch_checks: int = 50) -> int | None:
        """Delete one small batch of expired rows; returns how many, or None when a pass is complete."""
        ...

    # --- reading ---
    def checks(self) -> list[CheckInfo]: ...

    def transitions(
        self, since: float, until: float, check_ids: Sequence[str] | None = None, hard_only: bool = True
    ) -> list[Transition]:
        """Transitions in [since, until), plus for each check the last one before `since` (its state)."""
        ...

    def hard_changes(
        self, since: float, until: float, check_ids: Sequence[str] | None = None
    ) -> dict[str, list[tuple[float, str, str]]]:
        """`transitions(hard_only=True)` as plain (time, new state, reason) tuples per check, in time order."""
        ...

    def site_transitions(
        self, since: float, until: float, site_ids: Sequence[str] | None = None
    ) -> list[SiteTransition]: ...

    def device_spans(self, since: float, until: float) -> DeviceSpans | None:
        """Each device's worst-of spans in [since, until), or None when the backend keeps none it can vouch for."""
        ...

    def rollups(
        self, tier: str, since: float, until: float, check_ids: Sequence[str] | None = None
    ) -> list[Rollup]: ...

    def delta_sums(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, float]: ...

    def bucket_maxima(
        self, tier: str, since: float, until: float, check_ids: Sequence[str]
    ) -> dict[str, list[float]]: ...

    def bucket_counts(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, int]: ...

    def bucket_top(self, tier: str, since: float, until: float, check_ids: Sequence[str], n: int) -> list[float]:
        """The `n` largest values `bucket_maxima` would give for these checks together, largest first."""
        ...

    def oldest_bucket(self, tier: str, check_ids: Sequence[str]) -> float | None: ...

    def runs(self, since: float, until: float) -> list[CollectorRun]: ...

    def recent_transitions(self, limit: int = 50, site_id: str | None = None) -> list[Transition]:
        """Newest check transitions first (all sites, or one)."""
        ...

    def recent_site_transitions(self, limit: int = 50, site_id: str | None = None) -> list[SiteTransition]:
        """Newest site status changes first (all sites, or one)."""
        ...

    # --- maintenance windows ---
    def add_maintenance(self, window: MaintenanceWindow, who: str, now: float) -> int: ...

    def end_maintenance(self, window_id: int, who: str, now: float) -> MaintenanceWindow: ...

    def maintenance_windows(
        self, since: float | None = None, until: float | None = None
    ) -> list[MaintenanceWindow]: ...

    def audit_log(self, limit: int = 100) -> list[AuditEntry]: ...
