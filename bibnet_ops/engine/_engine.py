"""The Engine: scheduler + check state machines + site dependencies, publishing typed events.

It knows nothing of screens, stores or alerting: they call `subscribe(callback)` and read `snapshot()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bibnet_ops.engine._checkstate import CheckState
from bibnet_ops.engine._evidence import Evidence, evidence_of
from bibnet_ops.engine._health import PollHealth
from bibnet_ops.engine._reconfigure import CheckSeed, Reconfiguration
from bibnet_ops.engine._scheduler import TIMEOUT_MARGIN, Scheduler
from bibnet_ops.engine._sites import SiteTracker
from bibnet_ops.events import Event, StateChange
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckSpec, CheckStatus, Sample, SiteStatus

__all__ = [
    "CheckSnapshot",
    "Engine",
    "EngineSnapshot",
    "SiteSnapshot",
    "Subscriber",
    "close_probe_clients",
    "matches",
]

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]
"""Receives every event synchronously, in order, on the engine's loop; must return quickly."""


@dataclass(frozen=True)
class CheckSnapshot:
    """One check as the engine sees it now (`status` is None before its first result)."""

    check_id: str
    site_id: str
    status: CheckStatus | None
    hard_status: CheckStatus
    hard: bool
    attempt: int
    max_attempts: int
    since: float | None
    last: Sample | None
    flapping: bool
    flap_percent: float
    polling: bool


@dataclass(frozen=True)
class SiteSnapshot:
    """One site's derived status now (`status` is None until every check has a first result)."""

    site_id: str
    status: SiteStatus | None
    since: float | None
    reason: str
    root_cause: str | None
    maintenance: bool


@dataclass(frozen=True)
class EngineSnapshot:
    """A read-only copy of the engine's state for screens; `time` is UTC epoch seconds."""

    time: float
    checks: Mapping[str, CheckSnapshot]
    sites: Mapping[str, SiteSnapshot]
    health: PollHealth


def matches(check: CheckSpec, pattern: str | None) -> bool:
    """True when the check matches `SITE`, `SITE/DEVICE` or `SITE/DEVICE/CHECK` (everything when empty)."""
    parts = [p for p in (pattern or "").split("/") if p]
    ident = (check.site_id, check.device_id, check.name)
    return all(a == b for a, b in zip(parts, ident, strict=False))


async def close_probe_clients() -> None:
    """Release the probes' pooled connections (HTTP clients, SNMP engine) of the running loop."""
    http = sys.modules.get("bibnet_ops.probes._httpclient")
    if http is not None:
        with contextlib.suppress(Exception):
            await http.close_clients()
    snmp = sys.modules.get("bibnet_ops.probes.snmp")
    if snmp is not None:
        with contextlib.suppress(Exception):
            snmp.close()


class Engine:
    """Polls the inventory's checks and turns the results into states and events.

    Args:
        inventory: sites (with parents) and checks; `settings["collector"]` gives the default bounds.
        checks: the checks to poll (default: every check of the inventory).
        concurrency: devices polled at once network-wide (default: collector.concurrency, else 200).
        per_site_concurrency: devices polled at once per site (default: collector.per_site_concurrency, else 4).
        timeout_margin: seconds beyond a check's timeout before the engine cuts the probe off.
        first_spread: the first polls are spread over at most this many seconds (fewer when there are few
            checks: see `FIRST_POLLS_PER_SECOND`) and never beyond a check's interval.
        seed: seed of the scheduling jitter (for reproducible tests).
        close_clients: close the probes' pooled clients when `run()` ends.
    """

    def __init__(
        self,
        inventory: Inventory,
        checks: Iterable[CheckSpec] | None = None,
        *,
        concurrency: int | None = None,
        per_site_concurrency: int | None = None,
        timeout_margin: float = TIMEOUT_MARGIN,
        first_spread: float = 60.0,
        seed: int | None = None,
        close_clients: bool = True,
    ) -> None:
        collector = inventory.settings.get("collector", {}) if isinstance(inventory.settings, dict) else {}
        self.inventory = inventory
        self.concurrency = int(concurrency or collector.get("concurrency") or 200)
        self.per_site_concurrency = int(per_site_concurrency or collector.get("per_site_concurrency") or 4)
        specs = list(inventory.checks if checks is None else checks)
        self._states: dict[str, CheckState] = {c.id: CheckState(c) for c in specs}
        self._subscribers: list[Subscriber] = []
        self._scheduler = Scheduler(
            specs,
            self._on_result,
            concurrency=self.concurrency,
            per_site_concurrency=self.per_site_concurrency,
            timeout_margin=timeout_margin,
            first_spread=first_spread,
            rng=random.Random(seed),
        )
        self._sites = SiteTracker(inventory, self._states, self._emit, self._scheduler.poll_now)
        self._close_clients = close_clients
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False

    # Subscribers.

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Send every event to `callback`, in order; returns a function that unsubscribes it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, event: Event) -> None:
        for callback in tuple(self._subscribers):
            try:
                callback(event)
            except Exception:  # one broken subscriber must not silence the others or stop polling
                log.exception("engine subscriber %r failed", callback)

    # Running.

    async def run(self) -> None:
        """Poll until `stop()` is called or the task is cancelled; then cancel polls in flight."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        scheduler = asyncio.create_task(self._scheduler.run(), name="bibnet-engine-scheduler")
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({scheduler, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if scheduler.done():
                scheduler.result()  # re-raise a scheduler failure
        finally:
            for task in (scheduler, stopper):
                task.cancel()
            await asyncio.gather(scheduler, stopper, return_exceptions=True)
            if self._close_clients:
                await close_probe_clients()

    def stop(self) -> None:
        """Ask `run()` to end; safe from any thread and from signal handlers."""
        self._stop_requested = True
        if self._loop is None or self._stop is None:
            return
        if threading.get_ident() == self._thread:
            self._stop.set()
        else:
            self._loop.call_soon_threadsafe(self._stop.set)

    def _in_loop(self, func: Callable[[], object]) -> None:
        """Run `func` on the engine's loop (at once when already there)."""
        if self._loop is not None and self._thread is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(func)
        else:
            func()

    # Commands.

    def poll_now(self, pattern: str | None = None) -> int:
        """Poll the checks matching `SITE[/DEVICE[/CHECK]]` at once; returns how many matched."""
        ids = [cid for cid, state in self._states.items() if matches(state.spec, pattern)]
        return self._scheduler.poll_now(ids)

    def set_maintenance(self, site_id: str, on: bool) -> None:
        """Put a site in MAINTENANCE (on=True) or take it out; its status is re-derived at once.

        Raises:
            KeyError: the site is not in the inventory.
        """
        if site_id not in self._sites.sites:
            raise KeyError(site_id)
        self._in_loop(lambda: self._sites.set_maintenance(site_id, on))

    def reconfigure(
        self,
        inventory: Inventory,
        checks: Iterable[CheckSpec] | None = None,
        *,
        seed: Mapping[str, CheckSeed] | None = None,
    ) -> Reconfiguration:
        """Follow a new inventory without a restart: diff the checks by id and apply the difference.

        - added checks start polling, their first polls spread over `min(interval, first_spread)`;
          an added check with an entry in `seed` starts from that state instead of "assumed OK", so its
          next result continues it (no initial report, no false recovery);
        - removed checks stop (a poll in flight is cancelled or its result dropped) and emit nothing;
        - changed checks (same id, other settings: interval, timeout, thresholds, retries, address...)
          take the new settings and keep their state;
        - unchanged checks keep everything: status, SOFT/HARD state and attempt, flapping history.

        Site statuses are then re-derived for the new sites and parents; a site changes status (with an
        event) only if the new configuration really changes it. A site whose checks were all seeded takes
        its derived status quietly; a site left with no check polled here forgets its status quietly
        (both are hand-overs, not changes). The concurrency bounds stay as they were started.

        Call it on the engine's loop (from a signal handler installed with `loop.add_signal_handler`, a
        task, or before `run()`).

        Args:
            inventory: the new inventory.
            checks: the checks to poll (default: every check of `inventory`).
            seed: last known states of added checks, by check id (ignored for checks already polled).

        Returns:
            What was added, removed and changed.
        """
        if self._loop is not None and self._thread is not None and threading.get_ident() != self._thread:
            raise RuntimeError("Engine.reconfigure must be called on the engine's loop")
        seed = seed or {}
        specs = {c.id: c for c in (inventory.checks if checks is None else checks)}
        old_sites = set(self._sites.sites)
        removed = sorted(cid for cid in self._states if cid not in specs)
        added = [spec for cid, spec in specs.items() if cid not in self._states]
        changed = [spec for cid, spec in specs.items() if cid in self._states and self._states[cid].spec != spec]
        self._scheduler.remove(removed)
        for cid in removed:
            del self._states[cid]
        for spec in changed:
            self._states[spec.id].spec = spec
            self._scheduler.update(spec)
        now = time.time()
        seeded: list[str] = []
        for spec in added:
            state = self._states[spec.id] = CheckState(spec)
            if spec.id in seed:
                state.restore(seed[spec.id], now)
                seeded.append(spec.id)
        self.inventory = inventory
        new_sites = set(inventory.sites)
        sites_added = new_sites - old_sites
        seeded_set = set(seeded)
        by_site: dict[str, list[str]] = {}
        for spec in specs.values():
            by_site.setdefault(spec.site_id, []).append(spec.id)
        # a site all of whose checks start from seeds continues its known state: derived without an event
        quiet = [sid for sid, ids in by_site.items() if seeded_set.issuperset(ids)] if seeded_set else []
        self._sites.reconfigure(inventory, quiet)
        self._scheduler.add(added)
        return Reconfiguration(
            added=tuple(sorted(s.id for s in added)),
            removed=tuple(removed),
            changed=tuple(sorted(s.id for s in changed)),
            unchanged=len(specs) - len(added) - len(changed),
            seeded=tuple(sorted(seeded)),
            sites_added=tuple(sorted(sites_added)),
            sites_removed=tuple(sorted(old_sites - new_sites)),
        )

    # Reading.

    @property
    def check_ids(self) -> list[str]:
        return list(self._states)

    def health(self) -> PollHealth:
        """Poll-health figures over the last minute."""
        return self._scheduler.health()

    def check_state(self, check_id: str) -> CheckSnapshot:
        """The current state of one check (KeyError if unknown)."""
        state = self._states[check_id]
        return CheckSnapshot(
            check_id=check_id,
            site_id=state.spec.site_id,
            status=state.status if state.has_result else None,
            hard_status=state.hard_status,
            hard=state.hard,
            attempt=state.attempt,
            max_attempts=state.max_attempts,
            since=state.since,
            last=state.last,
            flapping=state.flapping,
            flap_percent=round(state.flap_pct, 1),
            polling=self._scheduler.running(check_id),
        )

    def evidence(self, check_id: str) -> Evidence:
        """The raw reply the check's last result was judged on, bounded and redacted (KeyError if unknown)."""
        state = self._states[check_id]
        return evidence_of(state.spec, state.last)

    def site_state(self, site_id: str) -> SiteSnapshot:
        """The current derived status of one site (KeyError if unknown)."""
        site = self._sites.sites[site_id]
        return SiteSnapshot(
            site_id=site_id,
            status=site.status,
            since=site.since,
            reason=site.reason,
            root_cause=site.root_cause,
            maintenance=site.maintenance,
        )

    def snapshot(self) -> EngineSnapshot:
        """A read-only copy of every check's and site's state plus the poll health."""
        return EngineSnapshot(
            time=time.time(),
            checks=MappingProxyType({cid: self.check_state(cid) for cid in self._states}),
            sites=MappingProxyType({sid: self.site_state(sid) for sid in self._sites.sites}),
            health=self.health(),
        )

    # The result path.

    def _on_result(self, spec: CheckSpec, sample: Sample) -> float:
        state = self._states.get(spec.id)
        if state is None:  # removed by a reconfiguration while its poll ran
            return spec.interval
        spec = state.spec  # a reconfiguration may have changed its settings while its poll ran
        self._emit(sample)
        changed = False
        for event in state.feed(sample):
            self._emit(event)
            changed = changed or isinstance(event, StateChange)
        if changed:
            self._sites.check_changed(spec.site_id)
        self._sites.result_arrived(spec.id)
        return spec.retry_interval if state.wants_retry else spec.interval
