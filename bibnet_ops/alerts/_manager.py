"""The alert manager: turns the engine's events into notifications, one per root cause, at the right time.

`handle(event)` is the engine subscriber: it only updates in-memory state and returns. A periodic tick
decides what to send: a problem opens an alert once it has been HARD for the rule's `after` (and for the
`settle` delay, so root causes and re-checks are known), is re-notified and escalated while nobody has
acknowledged it, and ends with a recovery to everyone who was told. Checks of a site that is DOWN,
UNREACHABLE or in maintenance stay quiet; so does a site behind a down parent (the parent's alert lists it).
A flapping check opens no alert; if one is open, its receivers are told once that it flaps, and its
reminders, escalation and recovery wait until it settles (as Icinga does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bibnet_ops.alerts._ack_api import AckMixin
from bibnet_ops.alerts._dispatch import Dispatcher
from bibnet_ops.alerts._model import Ack, NotificationKind
from bibnet_ops.alerts._notes import NoteMixin
from bibnet_ops.alerts._reload import ReloadMixin
from bibnet_ops.alerts._state import OpenAlert, Problem, Route
from bibnet_ops.alerts._store import AlertLog
from bibnet_ops.events import FlappingChange, Sample, SiteStatusChange, StateChange
from bibnet_ops.inventory import AlertsConfig, Inventory, Rule
from bibnet_ops.model import CheckStatus, SiteStatus

__all__ = ["AlertManager", "OpenAlert", "Problem"]

log = logging.getLogger("bibnet_ops.alerts")

_COVERING = (SiteStatus.DOWN, SiteStatus.UNREACHABLE, SiteStatus.MAINTENANCE)


class AlertManager(NoteMixin, AckMixin, ReloadMixin):
    """Subscribe `manager.handle` to the engine, then `await manager.start()`; `await manager.stop()` at exit.

    Args:
        config: the parsed `[alerts]` table.
        inventory: sites (names, regions, parents) for matching rules and folding dependants.
        dispatcher: delivers notifications in the background.
        alert_log: the store's alerting tables (None: nothing recorded, acks kept in memory only).
        in_maintenance: `(site_id, t) -> bool`, from the store's maintenance windows.
        clock: UTC epoch seconds (event times are compared with it).
        tick: seconds between decisions.
        ack_refresh: seconds between re-reads of acks made elsewhere (e.g. `bibnet-ops ack`).
        startup_grace: after a restart, how long an alert left open by the previous run waits for its
            problem to show again before its recovery is sent.
        poll_now: the engine's `poll_now(site_id)`, to re-check a site and its parents at once when one of
            its checks fails (so that a check alert is not sent for what is really a site outage).
    """

    def __init__(
        self,
        config: AlertsConfig,
        inventory: Inventory,
        dispatcher: Dispatcher,
        alert_log: AlertLog | None = None,
        *,
        in_maintenance: Callable[[str, float], bool] | None = None,
        clock: Callable[[], float] = time.time,
        tick: float = 1.0,
        ack_refresh: float = 5.0,
        startup_grace: float = 600.0,
        db: ThreadPoolExecutor | None = None,
        poll_now: Callable[[str], Any] | None = None,
    ) -> None:
        self.config = config
        self.inventory = inventory
        self.dispatcher = dispatcher
        self.alert_log = alert_log
        self.in_maintenance = in_maintenance or (lambda _site, _t: False)
        self.clock = clock
        self.tick = tick
        self.ack_refresh = ack_refresh
        self.startup_grace = startup_grace
        self.site_status: dict[str, SiteStatus] = {}
        self.problems: dict[str, Problem] = {}
        self.alerts: dict[str, OpenAlert] = {}
        self.acks: dict[str, Ack] = {}
        self._behind: dict[str, set[str]] = {}
        self._left_cover: dict[str, float] = {}
        self._retrying: dict[str, set[str]] = {}
        self._failing: dict[str, set[str]] = {}
        self._last_sample: dict[str, float] = {}
        self._site_checks: dict[str, set[str]] = {}
        self._to_confirm: set[str] = set()
        self.flapping: dict[str, float] = {}
        self._flap_news: list[tuple[str, bool]] = []
        self.poll_now = poll_now
        self._next_id = 1
        self._acks_read = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._db = db or dispatcher._db
        self._hooks: list[Callable[[float], Any]] = []

    # ------------------------------------------------------------------ events (synchronous, never block)
    def handle(self, event: object) -> None:
        """Engine subscriber: record a state change; decisions wait for the next tick."""
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
            if f"site:{sid}" not in self.alerts:
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

    # ------------------------------------------------------------------ helpers
    def _ancestors(self, site_id: str) -> list[str]:
        out: list[str] = []
        site = self.inventory.sites.get(site_id)
        while site is not None and site.parent and site.parent not in out:
            out.append(site.parent)
            site = self.inventory.sites.get(site.parent)
        return out

    def _quiet_since(self, site_id: str) -> float:
        """When the site and all its ancestors last stopped being DOWN/UNREACHABLE/in maintenance."""
        return max(
            (self._left_cover.get(s, float("-inf")) for s in [site_id, *self._ancestors(site_id)]),
            default=float("-inf"),
        )

    def _covered(self, p: Problem, now: float) -> str | None:
        """Why a problem must stay quiet now (None: it may notify)."""
        if self.site_status.get(p.site_id) == SiteStatus.MAINTENANCE or self.in_maintenance(p.site_id, now):
            return "maintenance"
        if p.check_id is not None and self.site_status.get(p.site_id) in (SiteStatus.DOWN, SiteStatus.UNREACHABLE):
            return "site"
        if p.check_id is None and self.site_status.get(p.site_id) == SiteStatus.UNREACHABLE:
            return "parent"
        for anc in self._ancestors(p.site_id):
            parent_problem = self.problems.get(f"site:{anc}")
            if self.site_status.get(anc) in (SiteStatus.DOWN, SiteStatus.UNREACHABLE) or (
                parent_problem is not None and parent_problem.state == SiteStatus.DOWN
            ):
                if p.check_id is None:
                    self._behind.setdefault(anc, set()).add(p.site_id)
                return "parent"
        return None

    def _rules_for(self, p: Problem | OpenAlert) -> list[tuple[int, Rule]]:
        site = self.inventory.sites.get(p.site_id)
        out: list[tuple[int, Rule]] = []
        for i, rule in enumerate(self.config.rules):
            if rule.matches(p.state, site, p.check_id):
                out.append((i, rule))
                if rule.stop:
                    break
        return out

    async def _db_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.alert_log is None:
            return None
        fn = getattr(self.alert_log, method)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._db, lambda: fn(*args, **kwargs))
        except Exception as exc:  # recording must never stop notifying
            log.error("alert log: %s", exc)
            return None

    # ------------------------------------------------------------------ decisions
    async def evaluate(self, now: float | None = None) -> None:
        """Decide and send what is due now (the tick calls this; tests may call it directly)."""
        now = self.clock() if now is None else now
        if self.alert_log is not None and now - self._acks_read >= self.ack_refresh:
            self._acks_read = now
            acks = await self._db_call("active_acks", now)
            if acks is not None:
                self.acks = acks
        if self.poll_now is not None and self._to_confirm:
            sites, self._to_confirm = self._to_confirm, set()
            for site in {a for s in sites for a in (s, *self._ancestors(s))}:
                try:
                    self.poll_now(site)
                except Exception as exc:  # a site the engine does not poll is simply not re-checked
                    log.debug("poll_now(%s): %s", site, exc)
        for hook in self._hooks:
            result = hook(now)
            if asyncio.iscoroutine(result):
                await result
        await self._tell_flapping(now)
        for key, problem in list(self.problems.items()):
            if key not in self.alerts:
                await self._maybe_open(problem, now)
        for key, alert in list(self.alerts.items()):
            ongoing = self.problems.get(key)
            if ongoing is None:
                await self._maybe_recover(alert, now)
            else:
                await self._follow_up(alert, ongoing, now)

    def _suspect(self, p: Problem, now: float) -> bool:
        """A check problem waits while its site or a site above it fails as a whole (every check failing: the
        engine is about to call it DOWN), and until their other checks have answered since it began.

        They may be about to make the site (or its parent) DOWN, whose alert would then cover this one;
        the wait is bounded by `settle_max` so that one flapping or slow check cannot hold everything back.
        """
        if p.check_id is None or now - p.since >= self.config.settle_max:
            return False
        for site in (p.site_id, *self._ancestors(p.site_id)):
            retrying = self._retrying.get(site, set())
            polled = self._site_checks.get(site, set())
            if polled and polled <= self._failing.get(site, set()):
                return True
            for check in polled:
                if check != p.key and (check in retrying or self._last_sample.get(check, 0.0) < p.since):
                    return True
        return False

    def _due_routes(self, p: Problem, alert: OpenAlert | None, now: float) -> list[tuple[int, Rule]]:
        if alert is None and self._suspect(p, now):
            return []
        ready = max(p.since, self._quiet_since(p.site_id))
        return [
            (i, r)
            for i, r in self._rules_for(p)
            if (alert is None or i not in alert.routes)
            and now >= p.since + max(r.after, self.config.settle)
            and now >= ready + self.config.settle
        ]

    async def _tell_flapping(self, now: float) -> None:
        """Tell the receivers of an open alert once when its check starts, and once when it stops, flapping."""
        news, self._flap_news = self._flap_news, []
        for key, started in news:
            alert = self.alerts.get(key)
            if alert is None or not alert.told:
                continue
            if started:
                log.info("alert %s: %s is flapping; notifications paused", alert.id, key)
                self.dispatcher.submit(self._note(NotificationKind.FLAPPING, alert, now), alert.told)
            elif key in self.problems:  # still failing; if it recovered, the recovery says so
                self.dispatcher.submit(self._note(NotificationKind.FLAPPING_STOPPED, alert, now), alert.told)

    async def _maybe_open(self, p: Problem, now: float) -> None:
        if p.key in self.flapping or self._covered(p, now) or self._acked(p.key, now):
            return
        due = self._due_routes(p, None, now)
        if not due:
            return
        affected = p.affected | self._behind.get(p.site_id, set()) if p.check_id is None else set()
        alert_id = await self._db_call(
            "open_alert", p.key, p.site_id, p.check_id, p.state, p.since, now, p.reason, sorted(affected)
        )
        if not alert_id:
            alert_id = self._next_id
        self._next_id = max(self._next_id, alert_id) + 1
        alert = OpenAlert(alert_id, p.key, p.site_id, p.check_id, p.state, p.since, now, p.reason, affected)
        self.alerts[p.key] = alert
        await self._add_routes(alert, due, now)

    async def _add_routes(self, alert: OpenAlert, due: list[tuple[int, Rule]], now: float) -> None:
        told_before = set(alert.told)
        for i, rule in due:
            alert.routes[i] = Route(rule, list(rule.receivers), now)
        note = self._note(NotificationKind.PROBLEM, alert, now)
        targets = [r for r in alert.told if r not in told_before]
        log.info("alert %s opened: %s %s -> %s", alert.id, alert.state, alert.key, ", ".join(targets))
        self.dispatcher.submit(note, targets)
        await self._db_call("update_alert", alert.id, receivers=alert.told)

    async def _follow_up(self, alert: OpenAlert, p: Problem, now: float) -> None:
        """An alert whose problem persists: track changes, then remind and escalate unless quiet."""
        alert.recovering_since = None
        alert.hold_until = 0.0
        changed = p.state != alert.state or not (p.affected | self._behind.get(p.site_id, set())) <= alert.affected
        alert.state, alert.reason = p.state, p.reason or alert.reason
        if p.check_id is None:
            alert.affected |= p.affected | self._behind.get(p.site_id, set())
        if changed:
            await self._db_call(
                "update_alert", alert.id, state=alert.state, affected=alert.affected, reason=alert.reason
            )
        if alert.key in self.flapping or self._covered(p, now) or self._acked(alert.key, now):
            return
        due = self._due_routes(p, alert, now)
        if due:
            await self._add_routes(alert, due, now)
        for route in alert.routes.values():
            rule = route.rule
            steps = rule.escalate[route.level :]
            for step in steps:
                if now - alert.opened_at < step.after:
                    break
                route.level += 1
                extra = [r for r in step.receivers if r not in route.receivers]
                route.receivers += extra
                log.info("alert %s escalated (level %d) -> %s", alert.id, route.level, ", ".join(step.receivers))
                self.dispatcher.submit(self._note(NotificationKind.ESCALATION, alert, now, route.level), step.receivers)
                route.last_sent = now
                await self._db_call("update_alert", alert.id, receivers=alert.told)
            if rule.renotify > 0 and now - route.last_sent >= rule.renotify:
                route.last_sent = now
                self.dispatcher.submit(self._note(NotificationKind.REMINDER, alert, now, route.level), route.receivers)

    async def _maybe_recover(self, alert: OpenAlert, now: float) -> None:
        """The problem is gone: once dependants have been re-checked, tell everyone who was told."""
        if alert.key in self.flapping:
            alert.recovering_since = None
            return
        if alert.recovering_since is None:
            alert.recovering_since = now
        if now < alert.hold_until:
            return
        waiting = [s for s in alert.affected if self.site_status.get(s) == SiteStatus.UNREACHABLE]
        if waiting and now - alert.recovering_since < self.config.settle_max:
            return  # the engine is re-checking the sites behind it; their settled state goes in the message
        if now - alert.recovering_since < min(self.config.settle, 2 * self.tick) and alert.affected:
            return
        still_down = [s for s in alert.affected if self.site_status.get(s) in (SiteStatus.DOWN, SiteStatus.UNREACHABLE)]
        del self.alerts[alert.key]
        note = self._note(NotificationKind.RECOVERY, alert, now, still_down=still_down)
        log.info("alert %s recovered: %s -> %s", alert.id, alert.key, ", ".join(alert.told))
        self.dispatcher.submit(note, alert.told)
        await self._db_call("close_alert", alert.id, now)
        ack = self.acks.get(alert.key)
        if ack is not None and not ack.sticky:
            self.acks.pop(alert.key, None)
            await self._db_call("end_acks", [alert.key], "bibnet-ops", now, "recovered")

    # ------------------------------------------------------------------ lifecycle
    def add_hook(self, hook: Callable[[float], Any]) -> None:
        """Run `hook(now)` (sync or async) at the start of every tick (e.g. syncing maintenance windows)."""
        self._hooks.append(hook)

    async def start(self) -> None:
        """Adopt alerts left open by a previous run, then start ticking."""
        if self.alert_log is not None:
            now = self.clock()
            for rec in await self._db_call("alerts", open_only=True) or []:
                alert = OpenAlert(
                    rec.id,
                    rec.key,
                    rec.site_id,
                    rec.check_id,
                    rec.state,
                    rec.since,
                    rec.opened_at,
                    rec.reason,
                    set(rec.affected),
                    hold_until=now + self.startup_grace,
                )
                for i, rule in self._rules_for(alert):
                    alert.routes[i] = Route(
                        rule, [r for r in rec.receivers if r in rule.receivers] or list(rule.receivers), now
                    )
                if rec.receivers and not alert.routes:
                    alert.routes[-1] = Route(Rule("adopted", tuple(rec.receivers)), list(rec.receivers), now)
                self.alerts[rec.key] = alert
                self._next_id = max(self._next_id, rec.id + 1)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alert-manager")

    async def _run(self) -> None:
        while True:
            try:
                await self.evaluate()
            except Exception:  # one bad decision must not end alerting for the whole network
                log.exception("alert manager tick failed")
            await asyncio.sleep(self.tick)

    async def stop(self, drain: float = 5.0) -> None:
        """Stop ticking and give deliveries in flight `drain` seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.dispatcher.aclose(drain)

    async def __aenter__(self) -> AlertManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
