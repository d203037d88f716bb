"""What is wrong now, as the engine's events tell it: failing checks and sites, and what covers them.

`ProblemTracker.handle(event)` is the engine subscriber of alerting: it only updates this picture and
returns. The alert manager reads it at each tick to decide what to send: which problems are HARD now, which
of them stay quiet (their site or a parent is down, unreachable or in maintenance), which are still suspect
(the site as a whole may be failing), which checks flap, and which sites to re-check at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bibnet_ops.alerts._state import Problem
from bibnet_ops.events import FlappingChange, Sample, SiteStatusChange, StateChange
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckStatus, SiteStatus

__all__ = ["ProblemTracker"]

_COVERING = (SiteStatus.DOWN, SiteStatus.UNREACHABLE, SiteStatus.MAINTENANCE)


class ProblemTracker:
    """Problems failing now, by key, with each site's status and what the checks of each site are doing.

    Args:
        inventory: sites and their parents (for dependants and covering).
        in_maintenance: `(site_id, t) -> bool`, from the store's maintenance windows.
        alerted: `(key) -> bool`, whether an alert is open for a problem key (a site that becomes
            UNREACHABLE keeps its own problem while its alert is open, so the alert is followed up).
    """

    def __init__(
        self,
        inventory: Inventory,
        in_maintenance: Callable[[str, float], bool],
        alerted: Callable[[str], bool],
    ) -> None:
        self.inventory = inventory
        self.in_maintenance = in_maintenance
        self.alerted = alerted
        self.problems: dict[str, Problem] = {}
        self.site_status: dict[str, SiteStatus] = {}
        self.flapping: dict[str, float] = {}
        self._behind: dict[str, set[str]] = {}
        self._left_cover: dict[str, float] = {}
        self._retrying: dict[str, set[str]] = {}
        self._failing: dict[str, set[str]] = {}
        self._last_sample: dict[str, float] = {}
        self._site_checks: dict[str, set[str]] = {}
        self._to_confirm: set[str] = set()
        self._flap_news: list[tuple[str, bool]] = []

    # ------------------------------------------------------------------ events (synchronous, never block)
    def handle(self, event: object) -> None:
        """Engine subscriber: record a state change; decisions wait for the manager's next tick."""
        if isinstance(event, Sample):
            self._last_sample[event.check_id] = event.time
            site_id = event.check_id.partition("/")[0]
            if event.check_id not in self._site_checks.get(site_id, ()):
                self._site_checks.setdefault(site_id, set()).add(event.check_id)
        elif isinstance(event, StateChange):
            self._on_check(event)
        elif isinstance(event, SiteStatusChange):
            self._on_site(event)
        elif isinstance(event, FlappingChange):
            if event.flapping:
                self.flapping[event.check_id] = event.time
            else:
                self.flapping.pop(event.check_id, None)
            self._flap_news.append((event.check_id, event.flapping))

    def _on_check(self, ev: StateChange) -> None:
        key = ev.check_id
        retrying = self._retrying.setdefault(ev.site_id, set())
        failing = self._failing.setdefault(ev.site_id, set())
        if ev.new != CheckStatus.OK:
            failing.add(key)
        else:
            failing.discard(key)
        if ev.new != CheckStatus.OK and not ev.hard:
            retrying.add(key)
        else:
            retrying.discard(key)
        if ev.new == CheckStatus.OK:
            self.problems.pop(key, None)
            return
        if not ev.hard:
            return
        current = self.problems.get(key)
        if current is None:
            self.problems[key] = Problem(key, ev.site_id, ev.check_id, str(ev.new), ev.time, ev.reason)
            self._to_confirm.add(ev.site_id)
        else:
            current.state, current.reason = str(ev.new), ev.reason or current.reason

    def _on_site(self, ev: SiteStatusChange) -> None:
        sid, new = ev.site_id, SiteStatus(ev.new)
        old = self.site_status.get(sid, SiteStatus(ev.old))
        self.site_status[sid] = new
        if old in _COVERING and new not in _COVERING:
            self._left_cover[sid] = ev.time
        for group in self._behind.values():
            if new != SiteStatus.UNREACHABLE:
                group.discard(sid)
        if new == SiteStatus.UNREACHABLE:
            root = ev.root_cause or (self.inventory.sites[sid].parent if sid in self.inventory.sites else None)
            if root:
                self._behind.setdefault(root, set()).add(sid)
                if root_problem := self.problems.get(f"site:{root}"):
                    root_problem.affected.add(sid)
            if not self.alerted(f"site:{sid}"):
                self.problems.pop(f"site:{sid}", None)
            return
        if new == SiteStatus.MAINTENANCE:
            return  # what the site really is shows again when maintenance ends
        key = f"site:{sid}"
        if new in (SiteStatus.DOWN, SiteStatus.DEGRADED):
            affected = set(ev.affected) | self._behind.get(sid, set())
            current = self.problems.get(key)
            if current is None:
                self.problems[key] = Problem(key, sid, None, str(new), ev.time, ev.reason, affected)
            else:
                current.state, current.reason = str(new), ev.reason or current.reason
                current.affected |= affected
        else:
            self.problems.pop(key, None)

    # ------------------------------------------------------------------ questions the manager asks
    def behind(self, site_id: str) -> set[str]:
        """Sites found UNREACHABLE behind `site_id` (its dependants, cut off by its failure)."""
        return self._behind.get(site_id, set())

    def ancestors(self, site_id: str) -> list[str]:
        """The site's parent, its parent's parent, ... (the sites it depends on)."""
        out: list[str] = []
        site = self.inventory.sites.get(site_id)
        while site is not None and site.parent and site.parent not in out:
            out.append(site.parent)
            site = self.inventory.sites.get(site.parent)
        return out

    def quiet_since(self, site_id: str) -> float:
        """When the site and all its ancestors last stopped being DOWN/UNREACHABLE/in maintenance."""
        return max(
            (self._left_cover.get(s, float("-inf")) for s in [site_id, *self.ancestors(site_id)]),
            default=float("-inf"),
        )

    def covered(self, p: Problem, now: float) -> str | None:
        """Why a problem must stay quiet now (None: it may notify)."""
        if self.site_status.get(p.site_id) == SiteStatus.MAINTENANCE or self.in_maintenance(p.site_id, now):
            return "maintenance"
        if p.check_id is not None and self.site_status.get(p.site_id) in (SiteStatus.DOWN, SiteStatus.UNREACHABLE):
            return "site"
        if p.check_id is None and self.site_status.get(p.site_id) == SiteStatus.UNREACHABLE:
            return "parent"
        for anc in self.ancestors(p.site_id):
            parent_problem = self.problems.get(f"site:{anc}")
            if self.site_status.get(anc) in (SiteStatus.DOWN, SiteStatus.UNREACHABLE) or (
                parent_problem is not None and parent_problem.state == SiteStatus.DOWN
            ):
                if p.check_id is None:
                    self._behind.setdefault(anc, set()).add(p.site_id)
                return "parent"
        return None

    def suspect(self, p: Problem, now: float, settle_max: float) -> bool:
        """A check problem waits while its site or a site above it fails as a whole (every check failing: the
        engine is about to call it DOWN), and until their other checks have answered since it began.

        They may be about to make the site (or its parent) DOWN, whose alert would then cover this one;
        the wait is bounded by `settle_max` so that one flapping or slow check cannot hold everything back.
        """
        if p.check_id is None or now - p.since >= settle_max:
            return False
        for site in (p.site_id, *self.ancestors(p.site_id)):
            retrying = self._retrying.get(site, set())
            polled = self._site_checks.get(site, set())
            if polled and polled <= self._failing.get(site, set()):
                return True
            for check in polled:
                if check != p.key and (check in retrying or self._last_sample.get(check, 0.0) < p.since):
                    return True
        return False

    def take_to_confirm(self) -> set[str]:
        """Sites with a new check problem since the last call: re-check them (and their parents) at once."""
        sites, self._to_confirm = self._to_confirm, set()
        return sites

    def take_flap_news(self) -> list[tuple[str, bool]]:
        """(check id, flapping now) for every start and stop of flapping since the last call."""
        news, self._flap_news = self._flap_news, []
        return news

    # ------------------------------------------------------------------ reconfiguration
    def forget(self, inventory: Inventory, gone_checks: Iterable[str], gone_sites: Iterable[str]) -> set[str]:
        """Follow a new inventory; drop what is known of removed checks and sites.

        Returns:
            The keys of the problems dropped.
        """
        checks, sites = set(gone_checks), set(gone_sites)
        self.inventory = inventory
        dropped = {k for k, p in self.problems.items()
                   if p.site_id in sites or (p.check_id is not None and p.check_id in checks)}
        for key in dropped:
            del self.problems[key]
        for mapping in (self._site_checks, self._failing, self._retrying, self._behind):
            for site in sites:
                mapping.pop(site, None)
            for members in mapping.values():
                members -= checks
                members -= sites
        for check in checks:
            self._last_sample.pop(check, None)
            self.flapping.pop(check, None)
        for site in sites:
            self.site_status.pop(site, None)
        return dropped
