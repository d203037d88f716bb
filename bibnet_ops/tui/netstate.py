"""The dashboard's picture of the network, built only from engine events (no Textual, no probes).

The app hands batches of events to `NetworkState.apply_many` on its refresh timer; the state records which
sites and checks changed so the screens redraw only those, keeps a bounded feed of state changes and short
in-memory histories for sparklines, and sums digitisation throughput.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bibnet_ops.events import FlappingChange, Sample, SiteStatusChange, StateChange
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckSpec, CheckStatus, Site, SiteStatus

__all__ = ["CheckView", "FeedEntry", "NetworkState", "SiteView"]

PAGES_METRIC = "pages_per_hour"


@dataclass
class CheckView:
    """What the screen knows of one check: its state (None until first polled) and last sample."""

    spec: CheckSpec
    status: CheckStatus | None = None
    hard: bool = True
    since: float | None = None
    reason: str = ""
    value: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    latency: float | None = None
    last_time: float | None = None
    attempt: int = 1
    max_attempts: int = 1
    flapping: bool = False


@dataclass
class SiteView:
    """What the screen knows of one site: its derived status (None until the engine reports one)."""

    site: Site
    status: SiteStatus | None = None
    since: float | None = None
    reason: str = ""
    root_cause: str | None = None


@dataclass(frozen=True)
class FeedEntry:
    """One line of the live event feed: a check or site state change."""

    time: float
    site_id: str
    check_id: str
    old: str
    new: str
    reason: str = ""
    hard: bool = True
    is_site: bool = False


class NetworkState:
    """Per-site and per-check state of the whole network, updated from engine events.

    Args:
        inventory: the sites and checks to show.
        history: how many samples each sparkline keeps.
        feed_size: how many state changes the feed keeps.
        timezone: the zone in which "pages today" starts at midnight.
    """

    def __init__(
        self,
        inventory: Inventory,
        history: int = 120,
        feed_size: int = 500,
        timezone: str = "Africa/Algiers",
    ) -> None:
        self.inventory = inventory
        self.sites: dict[str, SiteView] = {sid: SiteView(site) for sid, site in inventory.sites.items()}
        self.checks: dict[str, CheckView] = {c.id: CheckView(c) for c in inventory.checks}
        self._checks_by_site: dict[str, list[str]] = {}
        for check in inventory.checks:
            self._checks_by_site.setdefault(check.site_id, []).append(check.id)
        self.feed: deque[FeedEntry] = deque(maxlen=feed_size)
        self.feed_version = 0
        self.latency_history: dict[str, deque[float]] = {}
        self.value_history: dict[str, deque[float]] = {}
        self._history = history
        self.dirty_sites: set[str] = set()
        self.dirty_checks: set[str] = set()
        self._tz = ZoneInfo(timezone)
        self._pages_day: str = ""
        self._pages_base: dict[str, float] = {}
        self._pages_done: dict[str, float] = {}
        self._pages_last: dict[str, float] = {}
        self.events_applied = 0

    def follow(self, inventory: Inventory) -> None:
        """Show a reloaded inventory: new sites and checks appear, removed ones go, the others keep their state."""
        self.inventory = inventory
        self.sites = {sid: self.sites.get(sid) or SiteView(site) for sid, site in inventory.sites.items()}
        for sid, site in inventory.sites.items():
            self.sites[sid].site = site
        checks: dict[str, CheckView] = {}
        for check in inventory.checks:
            view = self.checks.get(check.id)
            if view is None:
                view = CheckView(check)
            view.spec = check
            checks[check.id] = view
        self.checks = checks
        self._checks_by_site = {}
        for check in inventory.checks:
            self._checks_by_site.setdefault(check.site_id, []).append(check.id)
        for history in (self.latency_history, self.value_history):
            for key in [k for k in history if k not in checks]:
                del history[key]
        self.dirty_sites.update(self.sites)
        self.dirty_checks.update(checks)

    # Applying events.

    def apply_many(self, events: Iterable[object]) -> int:
        """Apply events in order; return how many were applied."""
        n = 0
        for event in events:
            self.apply(event)
            n += 1
        return n

    def apply(self, event: object) -> None:
        """Apply one engine event (unknown event types are ignored, so newer engines stay compatible)."""
        self.events_applied += 1
        if isinstance(event, Sample):
            self._apply_sample(event)
        elif isinstance(event, StateChange):
            self._apply_state_change(event)
        elif isinstance(event, SiteStatusChange):
            self._apply_site_change(event)
        elif isinstance(event, FlappingChange):
            view = self.checks.get(event.check_id)
            if view is not None:
                view.flapping = event.flapping
                self.dirty_checks.add(event.check_id)

    def _apply_sample(self, sample: Sample) -> None:
        view = self.checks.get(sample.check_id)
        if view is None:
            return
        view.value = sample.value
        view.values = dict(sample.values)
        view.latency = sample.latency
        view.last_time = sample.time
        if view.status is None:
            # The engine reports the first state with a StateChange; until then the sample is our best guess.
            view.status = sample.status
            view.since = sample.time
            view.reason = sample.reason
        elif sample.status == view.status and sample.reason:
            view.reason = sample.reason
        if sample.latency is not None:
            self._push(self.latency_history, sample.check_id, sample.latency * 1000.0)
        if sample.value is not None and view.spec.metric != "latency":
            self._push(self.value_history, sample.check_id, sample.value)
        if view.spec.metric == PAGES_METRIC:
            self._count_pages(sample)
        self.dirty_checks.add(sample.check_id)
        self.dirty_sites.add(view.spec.site_id)

    def _apply_state_change(self, change: StateChange) -> None:
        view = self.checks.get(change.check_id)
        if view is None:
            return
        view.status = change.new
        view.hard = change.hard
        view.since = change.time
        view.reason = change.reason
        view.attempt = change.attempt
        view.max_attempts = change.max_attempts
        view.flapping = change.flapping
        self.dirty_checks.add(change.check_id)
        self.dirty_sites.add(change.site_id)
        if change.old != change.new:
            self._feed(
                FeedEntry(
                    change.time,
                    change.site_id,
                    change.check_id,
                    change.old.value,
                    change.new.value,
                    change.reason,
                    change.hard,
                )
            )

    def _apply_site_change(self, change: SiteStatusChange) -> None:
        view = self.sites.get(change.site_id)
        if view is None:
            return
        view.status = change.new
        view.since = change.time
        view.reason = change.reason
        view.root_cause = change.root_cause
        self.dirty_sites.add(change.site_id)
        if change.old != change.new:
            self._feed(
                FeedEntry(
                    change.time,
                    change.site_id,
                    "",
                    change.old.value,
                    change.new.value,
                    change.reason,
                    True,
                    is_site=True,
                )
            )

    def _feed(self, entry: FeedEntry) -> None:
        self.feed.appendleft(entry)
        self.feed_version += 1

    def _push(self, store: dict[str, deque[float]], key: str, value: float) -> None:
        series = store.get(key)
        if series is None:
            series = store[key] = deque(maxlen=self._history)
        series.append(value)

    def _count_pages(self, sample: Sample) -> None:
        """Pages scanned today, from the lifetime counter the scanner reports (`values["total"]`)."""
        total = sample.values.get("total")
        if total is None or not sample.time:
            return
        day = datetime.fromtimestamp(sample.time, self._tz).date().isoformat()
        if day != self._pages_day:
            self._pages_day = day
            self._pages_base.clear()
            self._pages_done.clear()
            self._pages_last.clear()
        cid = sample.check_id
        last = self._pages_last.get(cid)
        if last is not None and total < last:
            # Counter reset or wrap: bank what was counted and start again from the new reading.
            self._pages_done[cid] = self._pages_done.get(cid, 0.0) + last - self._pages_base[cid]
            self._pages_base[cid] = total
        self._pages_base.setdefault(cid, total)
        self._pages_last[cid] = total

    # Reading.

    def take_dirty(self) -> tuple[set[str], set[str]]:
        """Return and clear the sites and checks changed since the last call."""
        sites, checks = self.dirty_sites, self.dirty_checks
        self.dirty_sites, self.dirty_checks = set(), set()
        return sites, checks

    def site_status(self, site_id: str) -> SiteStatus | None:
        view = self.sites.get(site_id)
        return view.status if view is not None else None

    def counts(self, site_ids: Iterable[str] | None = None) -> Counter[SiteStatus | None]:
        """How many sites are in each status (None: not polled yet)."""
        ids = self.sites.keys() if site_ids is None else site_ids
        return Counter(self.sites[s].status for s in ids if s in self.sites)

    def checks_of(self, site_id: str) -> list[CheckView]:
        return [self.checks[c] for c in self._checks_by_site.get(site_id, ())]

    def throughput(self) -> float:
        """Network digitisation rate now: the sum of the latest pages/h of every scanner."""
        return sum(v.value for v in self.checks.values() if v.spec.metric == PAGES_METRIC and v.value is not None)

    def pages_today(self) -> int:
        """Pages scanned since midnight (local time) by every scanner seen today."""
        total = sum(self._pages_done.values())
        for cid, last in self._pages_last.items():
            total += last - self._pages_base.get(cid, last)
        return int(total)

    def site_events(self, site_id: str, limit: int = 20) -> list[FeedEntry]:
        """The newest feed entries about one site."""
        out = []
        for entry in self.feed:
            if entry.site_id == site_id:
                out.append(entry)
                if len(out) >= limit:
                    break
        return out
