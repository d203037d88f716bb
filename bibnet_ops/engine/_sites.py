"""Site status derived from check states, with parent/child dependencies and root-cause folding.

The rule, evaluated for a site whose checks all have a first result:

- **Reachability checks** of a site are the checks of its network devices (templates of kind
  `network`, `router`, `switch`, `gateway` or `uplink`); a site without such a device uses all its
  checks except those of the collector's own machine (`host` probe, kind `collector`).
- A site is **silent** when every reachability check with a known result is CRITICAL now (SOFT or
  HARD; UNKNOWN results say nothing either way): nothing of the site answers.
- **MAINTENANCE** when `set_maintenance(site, True)` was called.
- **UNREACHABLE** when the site is silent and its parent is DOWN or UNREACHABLE (or in MAINTENANCE and
  silent); `root_cause` is the DOWN site up the chain.
- **DOWN** when the site is silent and every reachability check is HARD CRITICAL, once the parent has
  been re-checked at once and answers (while the parent is silent but not yet HARD DOWN the site's
  status is held, so the parent's DOWN event comes first and names it).
- **DEGRADED** when some check is HARD non-OK but the site answers; **UP** otherwise.

One root cause, one event: before a site is declared DOWN, its descendants' reachability checks are
re-polled at once, and the DOWN event lists in `affected` every descendant that turned UNREACHABLE in
the same step; their own UNREACHABLE events follow, each with `root_cause` set. When a DOWN site
recovers, its UNREACHABLE descendants keep that status until their checks have been re-polled at once,
and only then are they declared anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bibnet_ops.engine._checkstate import CheckState
from bibnet_ops.events import SiteStatusChange
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckSpec, CheckStatus, Site, SiteStatus

__all__ = ["NETWORK_KINDS", "SiteState", "SiteTracker", "reachability_checks"]

NETWORK_KINDS = frozenset({"network", "router", "switch", "gateway", "uplink"})
_LOCAL_KINDS = frozenset({"collector"})
_BLOCKING = (SiteStatus.DOWN, SiteStatus.UNREACHABLE)
_HOLDING_BACK = (SiteStatus.DOWN, SiteStatus.UNREACHABLE, SiteStatus.MAINTENANCE)
_CRIT = CheckStatus.CRITICAL
_REASON_LIMIT = 160


def reachability_checks(inventory: Inventory, site: Site, checks: list[CheckSpec]) -> list[CheckSpec]:
    """The checks whose failure means the whole site is cut off (see the module docstring)."""
    kinds: dict[str, str] = {}
    for device in site.devices:
        template = inventory.templates.get(device.template)
        kinds[device.id] = template.kind if template is not None else ""
    network = [c for c in checks if kinds.get(c.device_id, "") in NETWORK_KINDS]
    if network:
        return network
    remote = [c for c in checks if c.probe != "host" and kinds.get(c.device_id, "") not in _LOCAL_KINDS]
    return remote or checks


@dataclass
class SiteState:
    """What the engine knows of one site; `status` is None until every check has a first result."""

    site: Site
    check_ids: list[str]
    reach_ids: list[str]
    status: SiteStatus | None = None
    since: float | None = None
    reason: str = ""
    root_cause: str | None = None
    maintenance: bool = False
    waiting: set[str] = field(default_factory=set)
    parent_rechecked: bool = False
    children_rechecked: bool = False
    siblings_rechecked: bool = False
    blocked_rechecked: bool = False
    silent: bool = False


@dataclass
class _Decision:
    status: SiteStatus
    reason: str
    root_cause: str | None = None


class SiteTracker:
    """Derives site statuses and emits `SiteStatusChange` events.

    Args:
        inventory: the sites and their parents.
        checks: the check states, by check id (only the engine's checks are considered).
        emit: where site events go.
        request_poll: asks the scheduler to poll check ids at once.
        clock: wall-clock time for event stamps.
    """

    def __init__(
        self,
        inventory: Inventory,
        checks: dict[str, CheckState],
        emit: Callable[[SiteStatusChange], None],
        request_poll: Callable[[Iterable[str]], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._checks = checks
        self._emit = emit
        self._request_poll = request_poll
        self._clock = clock
        self.sites: dict[str, SiteState] = {}
        self._children: dict[str, list[str]] = {}
        self._waiters: dict[str, set[str]] = {}  # check id -> sites waiting for its next result
        self._quiet = False
        self._build(inventory)

    def _build(self, inventory: Inventory) -> None:
        """(Re)build the sites and their parent links from the inventory, keeping known sites' state."""
        by_site: dict[str, list[CheckSpec]] = {}
        for check in self._checks.values():
            by_site.setdefault(check.spec.site_id, []).append(check.spec)
        old, self.sites = self.sites, {}
        for site_id, site in inventory.sites.items():
            specs = by_site.get(site_id, [])
            reach = [c.id for c in reachability_checks(inventory, site, specs)]
            kept = old.get(site_id)
            if kept is None:
                kept = SiteState(site, [c.id for c in specs], reach)
            else:
                kept.site, kept.check_ids, kept.reach_ids = site, [c.id for c in specs], reach
                kept.waiting &= set(self._checks)
            self.sites[site_id] = kept
        self._children = {}
        for site_id, site in inventory.sites.items():
            if site.parent in self.sites and site.parent != site_id:
                self._children.setdefault(site.parent, []).append(site_id)
        waiters: dict[str, set[str]] = {}
        for check_id, sites in self._waiters.items():
            still = {s for s in sites if s in self.sites} if check_id in self._checks else set()
            if still:
                waiters[check_id] = still
        self._waiters = waiters

    def reconfigure(self, inventory: Inventory, quiet: Iterable[str] = ()) -> None:
        """Follow a new inventory: sites added or removed, checks and parents changed; the check states
        (the dict given at construction) must already be updated.

        Sites kept keep their status, `since` and maintenance; every site is re-derived (an event only
        where its status really changes, e.g. it lost its only failing check). Sites in `quiet` (added
        with seeded checks) take their derived status without an event, as a continuation.
        """
        self._build(inventory)
        for state in self.sites.values():
            state.silent = self._silent(state)
            if not state.check_ids and not state.maintenance:
                # none of its checks is polled here any more (removed, or handed to another collector): its
                # status is forgotten quietly, as its checks were, rather than re-derived into a recovery
                state.status, state.since, state.reason, state.root_cause = None, None, "", None
                state.waiting.clear()
        for site_id in sorted(quiet, key=self._depth):  # parents first: a child's status depends on them
            found = self.sites.get(site_id)
            if found is None or found.status is not None:
                continue
            state = found
            self._quiet = True
            try:
                decision = self._decide(state)
            finally:
                self._quiet = False
            if decision is not None:
                state.status, state.since = decision.status, self._clock()
                state.reason, state.root_cause = decision.reason, decision.root_cause
        roots = [sid for sid, st in self.sites.items() if st.site.parent not in self.sites or st.site.parent == sid]
        changes: list[tuple[SiteState, SiteStatus | None]] = []
        seen: set[str] = set()
        for site_id in [*roots, *self.sites]:
            self._evaluate_tree(site_id, changes, seen)
        self._publish(changes)

    # Inputs.

    def check_changed(self, site_id: str) -> None:
        """A check of this site changed status or hard state."""
        if site_id in self.sites:
            self._evaluate(site_id)

    def result_arrived(self, check_id: str) -> None:
        """A result came in: release the sites that were waiting for it."""
        sites = self._waiters.pop(check_id, None)
        if not sites:
            return
        for site_id in sites:
            state = self.sites[site_id]
            state.waiting.discard(check_id)
            if not state.waiting:
                self._evaluate(site_id)

    def set_maintenance(self, site_id: str, on: bool) -> None:
        """Put a site in (or take it out of) MAINTENANCE; its status is re-derived at once."""
        state = self.sites[site_id]
        if state.maintenance != on:
            state.maintenance = on
            self._evaluate(site_id)

    def _depth(self, site_id: str) -> int:
        depth, seen = 0, {site_id}
        state = self.sites.get(site_id)
        while state is not None and state.site.parent in self.sites and state.site.parent not in seen:
            seen.add(state.site.parent)
            state = self.sites[state.site.parent]
            depth += 1
        return depth

    def descendants(self, site_id: str) -> list[str]:
        out: list[str] = []
        stack = list(self._children.get(site_id, ()))
        seen: set[str] = {site_id}
        while stack:
            sid = stack.pop()
            if sid in seen:
                continue
            seen.add(sid)
            out.append(sid)
            stack.extend(self._children.get(sid, ()))
        return out

    # Derivation.

    def _evaluate(self, site_id: str) -> None:
        changes: list[tuple[SiteState, SiteStatus | None]] = []
        self._evaluate_tree(site_id, changes, set())
        self._publish(changes)

    def _evaluate_tree(self, site_id: str, changes: list[tuple[SiteState, SiteStatus | None]],
                       seen: set[str]) -> None:
        if site_id in seen:
            return
        seen.add(site_id)
        state = self.sites[site_id]
        before_status, before_silent = state.status, state.silent
        state.silent = self._silent(state)
        decision = self._decide(state)
        if decision is not None:
            if decision.status != state.status:
                changes.append((state, state.status))
                state.status = decision.status
                state.since = self._clock()
            state.reason = decision.reason
            state.root_cause = decision.root_cause
        if before_status in _HOLDING_BACK and state.status not in _HOLDING_BACK:
            self._recheck_behind(site_id)
        if state.status != before_status or state.silent != before_silent:
            for child in self._children.get(site_id, ()):
                self._evaluate_tree(child, changes, seen)

    def _decide(self, state: SiteState) -> _Decision | None:
        """The site's status now, or None to keep it (first results missing or a re-check pending)."""
        if state.maintenance:
            return _Decision(SiteStatus.MAINTENANCE, "maintenance")
        checks = self._checks
        if not state.check_ids or not all(checks[c].has_result for c in state.check_ids):
            return None  # nothing of it polled here (yet): its status is not ours to say
        blocker = self._blocker(state)
        if blocker is not None and state.silent:
            state.waiting.clear()
            state.siblings_rechecked = False
            return _Decision(SiteStatus.UNREACHABLE, f"behind {blocker}, which is down", blocker)
        if state.waiting:
            return None
        if blocker is None:
            state.blocked_rechecked = False
        else:
            # the site answers while its parent is still down: learn the parent's fate before anything else
            upstream = self.sites[state.site.parent or ""]
            if not upstream.silent:
                return None  # the parent answers again and is proving its recovery
            if not state.blocked_rechecked:
                state.blocked_rechecked = True
                if self._wait_for(state, upstream.reach_ids):
                    return None
        if state.silent and self._hard_down(state):
            parent = self.sites.get(state.site.parent or "")
            if parent is not None and not parent.maintenance:
                if not state.parent_rechecked:
                    state.parent_rechecked = True
                    if self._wait_for(state, parent.reach_ids):
                        return None
                if parent.silent and parent.status not in _BLOCKING:
                    return None  # the parent is failing but not yet HARD DOWN: let it settle first
            if not state.children_rechecked and state.status != SiteStatus.DOWN:
                state.children_rechecked = True
                behind = [c for sid in self.descendants(state.site.id) for c in self.sites[sid].reach_ids]
                if self._wait_for(state, behind):
                    return None
            state.siblings_rechecked = False
            return _Decision(SiteStatus.DOWN, "no answer: " + self._first_reason(state.reach_ids))
        if state.silent:
            return None  # every reachability check is failing, some still SOFT: the site's fate is open
        state.parent_rechecked = state.children_rechecked = False
        bad = [checks[c] for c in state.check_ids if checks[c].hard_status != CheckStatus.OK]
        if bad:
            if not state.siblings_rechecked and state.status != SiteStatus.DEGRADED:
                # poll the whole site once before calling it DEGRADED: the other checks may be failing
                # too (an outage starting) or recovering too (an outage ending)
                state.siblings_rechecked = True
                if self._wait_for(state, state.check_ids):
                    return None
            parts = [f"{c.spec.device_id}/{c.spec.name} {c.hard_status.value}" for c in bad]
            text = f"{len(bad)} check{'s' if len(bad) > 1 else ''} not OK: " + ", ".join(parts)
            return _Decision(SiteStatus.DEGRADED, _cut(text))
        state.siblings_rechecked = False
        return _Decision(SiteStatus.UP, "")

    def _silent(self, state: SiteState) -> bool:
        known = [self._checks[c].status for c in state.reach_ids if self._checks[c].has_result]
        known = [s for s in known if s != CheckStatus.UNKNOWN]
        return bool(known) and all(s == _CRIT for s in known)

    def _hard_down(self, state: SiteState) -> bool:
        known = [self._checks[c] for c in state.reach_ids if self._checks[c].has_result]
        known = [c for c in known if c.hard_status != CheckStatus.UNKNOWN]
        return bool(known) and all(c.hard_status == _CRIT and c.hard for c in known)

    def _blocker(self, state: SiteState) -> str | None:
        """The DOWN site to blame when the parent blocks the path to this one, else None."""
        parent = self.sites.get(state.site.parent or "")
        if parent is None or parent is state:
            return None
        if parent.status == SiteStatus.DOWN:
            return parent.site.id
        if parent.status == SiteStatus.UNREACHABLE:
            return parent.root_cause or parent.site.id
        if parent.status == SiteStatus.MAINTENANCE and parent.silent:
            return parent.site.id
        return None

    def _wait_for(self, state: SiteState, check_ids: Iterable[str]) -> bool:
        """Poll these checks at once and hold the site's status until they have answered."""
        ids = [c for c in check_ids if c in self._checks]
        if not ids or self._quiet:
            return False
        state.waiting.update(ids)
        for check_id in ids:
            self._waiters.setdefault(check_id, set()).add(state.site.id)
        self._request_poll(ids)
        return True

    def _recheck_behind(self, site_id: str) -> None:
        """A blocking site recovered: re-poll its UNREACHABLE descendants before declaring them anything."""
        for sid in self.descendants(site_id):
            child = self.sites[sid]
            if child.status == SiteStatus.UNREACHABLE:
                self._wait_for(child, child.check_ids)

    def _first_reason(self, check_ids: list[str]) -> str:
        for check_id in check_ids:
            last = self._checks[check_id].last
            if last is not None and last.reason:
                return _cut(f"{check_id.split('/', 1)[-1]}: {last.reason}")
        return "every reachability check is CRITICAL"

    # Output.

    def _publish(self, changes: list[tuple[SiteState, SiteStatus | None]]) -> None:
        """Emit the step's changes, each DOWN first and naming the sites it made UNREACHABLE."""
        if not changes:
            return
        now = self._clock()
        unreachable: dict[str, list[str]] = {}
        for state, _old in changes:
            if state.status == SiteStatus.UNREACHABLE and state.root_cause:
                unreachable.setdefault(state.root_cause, []).append(state.site.id)
        ordered = [c for c in changes if c[0].status != SiteStatus.UNREACHABLE]
        ordered += [c for c in changes if c[0].status == SiteStatus.UNREACHABLE]
        for state, old in ordered:
            new = state.status
            assert new is not None
            affected = tuple(unreachable.get(state.site.id, ())) if new == SiteStatus.DOWN else ()
            self._emit(SiteStatusChange(
                site_id=state.site.id,
                time=now,
                # the first status of a site is reported against an assumed UP, like checks' assumed OK
                old=old if old is not None else SiteStatus.UP,
                new=new,
                reason=state.reason,
                root_cause=state.root_cause if new == SiteStatus.UNREACHABLE else None,
                affected=affected,
            ))


def _cut(text: str) -> str:
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"
