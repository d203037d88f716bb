"""The alert manager: turns the engine's events into notifications, one per root cause, at the right time.

It works with three collaborators, each keeping its own state: a `ProblemTracker` (the engine subscriber:
what is failing now and what covers it), an `AckBook` (the acks holding now) and a `Dispatcher` (the
receivers and the deliveries in flight). The manager itself keeps the alerts it has opened and decides, at
each tick, what to send: a problem opens an alert once it has been HARD for the rule's `after` (and for the
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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bibnet_ops.alerts._ackbook import AckBook
from bibnet_ops.alerts._dispatch import Dispatcher
from bibnet_ops.alerts._model import Ack, Notification, NotificationKind
from bibnet_ops.alerts._notes import notification
from bibnet_ops.alerts._policy import AccessPolicy
from bibnet_ops.alerts._problems import ProblemTracker
from bibnet_ops.alerts._state import OpenAlert, Problem, Route
from bibnet_ops.alerts._store import AlertLog
from bibnet_ops.inventory import AlertsConfig, Inventory, Rule
from bibnet_ops.model import SiteStatus

__all__ = ["AlertManager", "OpenAlert", "Problem"]

log = logging.getLogger("bibnet_ops.alerts")


class AlertManager:
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
        self.clock = clock
        self.tick = tick
        self.ack_refresh = ack_refresh
        self.startup_grace = startup_grace
        self.poll_now = poll_now
        self.alerts: dict[str, OpenAlert] = {}
        self.tracker = ProblemTracker(
            inventory, in_maintenance or (lambda _site, _t: False), lambda key: key in self.alerts
        )
        self.book = AckBook(alert_log, clock)
        self._next_id = 1
        self._acks_read = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._db = db or dispatcher._db
        self._hooks: list[Callable[[float], Any]] = []
        self._followers: list[Callable[[Inventory], None]] = []

    # ------------------------------------------------------------------ what others ask of it
    def handle(self, event: object) -> None:
        """Engine subscriber: record a state change; decisions wait for the next tick."""
        self.tracker.handle(event)

    @property
    def acks(self) -> dict[str, Ack]:
        """The acks known now, by problem key (some may have expired: see `Ack.active`)."""
        return self.book.acks

    @property
    def flapping(self) -> dict[str, float]:
        """Checks flapping now, with when they started to."""
        return self.tracker.flapping

    def acknowledge(
        self,
        targets: Iterable[str],
        comment: str,
        *,
        author: str | None = None,
        sticky: bool = False,
        expires_at: float | None = None,
        policy: AccessPolicy | None = None,
    ) -> list[Ack]:
        """Acknowledge problems now (batch); stops their reminders and escalation at once.

        Raises:
            ReadOnlyError: the console is read-only.
        """
        return self.book.acknowledge(
            targets, comment, author=author, sticky=sticky, expires_at=expires_at, policy=policy
        )

    def unacknowledge(
        self, targets: Iterable[str], *, who: str | None = None, policy: AccessPolicy | None = None
    ) -> list[Ack]:
        """Remove acks (reminders and escalation resume).

        Raises:
            ReadOnlyError: the console is read-only.
        """
        return self.book.unacknowledge(targets, who=who, policy=policy)

    def ack_for(self, key: str) -> Ack | None:
        """The ack holding for a problem key now, if any (for showing beside the problem)."""
        return self.book.holding(key, self.clock())

    # ------------------------------------------------------------------ helpers
    def _note(
        self, kind: NotificationKind, alert: OpenAlert, now: float, level: int = 0, still_down: Iterable[str] = ()
    ) -> Notification:
        return notification(
            kind,
            alert,
            now,
            inventory=self.inventory,
            subject_prefix=self.config.subject_prefix,
            ack=self.book.holding(alert.key, now),
            level=level,
            still_down=still_down,
        )

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
                self.book.replace(acks)
        tracker = self.tracker
        if self.poll_now is not None:
            sites = tracker.take_to_confirm()
            for site in {a for s in sites for a in (s, *tracker.ancestors(s))}:
                try:
                    self.poll_now(site)
                except Exception as exc:  # a site the engine does not poll is simply not re-checked
                    log.debug("poll_now(%s): %s", site, exc)
        for hook in self._hooks:
            result = hook(now)
            if asyncio.iscoroutine(result):
                await result
        await self._tell_flapping(now)
        for key, problem in list(tracker.problems.items()):
            if key not in self.alerts:
                await self._maybe_open(problem, now)
        for key, alert in list(self.alerts.items()):
            ongoing = tracker.problems.get(key)
            if ongoing is None:
                await self._maybe_recover(alert, now)
            else:
                await self._follow_up(alert, ongoing, now)

    def _quiet(self, key: str, p: Problem, now: float) -> bool:
        """Nothing is sent about a flapping, covered or acknowledged problem."""
        return key in self.tracker.flapping or bool(self.tracker.covered(p, now)) or bool(self.book.holding(key, now))

    def _due_routes(self, p: Problem, alert: OpenAlert | None, now: float) -> list[tuple[int, Rule]]:
        if alert is None and self.tracker.suspect(p, now, self.config.settle_max):
            return []
        ready = max(p.since, self.tracker.quiet_since(p.site_id))
        return [
            (i, r)
            for i, r in self._rules_for(p)
            if (alert is None or i not in alert.routes)
            and now >= p.since + max(r.after, self.config.settle)
            and now >= ready + self.config.settle
        ]

    async def _tell_flapping(self, now: float) -> None:
        """Tell the receivers of an open alert once when its check starts, and once when it stops, flapping."""
        for key, started in self.tracker.take_flap_news():
            alert = self.alerts.get(key)
            if alert is None or not alert.told:
                continue
            if started:
                log.info("alert %s: %s is flapping; notifications paused", alert.id, key)
                self.dispatcher.submit(self._note(NotificationKind.FLAPPING, alert, now), alert.told)
            elif key in self.tracker.problems:  # still failing; if it recovered, the recovery says so
                self.dispatcher.submit(self._note(NotificationKind.FLAPPING_STOPPED, alert, now), alert.told)

    async def _maybe_open(self, p: Problem, now: float) -> None:
        if self._quiet(p.key, p, now):
            return
        due = self._due_routes(p, None, now)
        if not due:
            return
        affected = p.affected | self.tracker.behind(p.site_id) if p.check_id is None else set()
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
        behind = self.tracker.behind(p.site_id)
        changed = p.state != alert.state or not (p.affected | behind) <= alert.affected
        alert.state, alert.reason = p.state, p.reason or alert.reason
        if p.check_id is None:
            alert.affected |= p.affected | behind
        if changed:
            await self._db_call(
                "update_alert", alert.id, state=alert.state, affected=alert.affected, reason=alert.reason
            )
        if self._quiet(alert.key, p, now):
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
        if alert.key in self.tracker.flapping:
            alert.recovering_since = None
            return
        if alert.recovering_since is None:
            alert.recovering_since = now
        if now < alert.hold_until:
            return
        status = self.tracker.site_status
        waiting = [s for s in alert.affected if status.get(s) == SiteStatus.UNREACHABLE]
        if waiting and now - alert.recovering_since < self.config.settle_max:
            return  # the engine is re-checking the sites behind it; their settled state goes in the message
        if now - alert.recovering_since < min(self.config.settle, 2 * self.tick) and alert.affected:
            return
        still_down = [s for s in alert.affected if status.get(s) in (SiteStatus.DOWN, SiteStatus.UNREACHABLE)]
        del self.alerts[alert.key]
        note = self._note(NotificationKind.RECOVERY, alert, now, still_down=still_down)
        log.info("alert %s recovered: %s -> %s", alert.id, alert.key, ", ".join(alert.told))
        self.dispatcher.submit(note, alert.told)
        await self._db_call("close_alert", alert.id, now)
        if self.book.end_with_recovery(alert.key):
            await self._db_call("end_acks", [alert.key], "bibnet-ops", now, "recovered")

    # ------------------------------------------------------------------ reconfiguration
    def reconfigure(self, config: AlertsConfig, inventory: Inventory, removed_checks: Iterable[str] = (),
                    removed_sites: Iterable[str] = ()) -> list[int]:
        """Take new rules, receivers and inventory; forget what was removed. Call it on the manager's loop.

        An open alert keeps its id, who was told and how far it escalated as long as a rule equal to the one
        that routed it still matches; a new rule matching it tells its receivers at the next tick, as for a
        new problem. Problems and alerts of removed checks or sites are dropped without a notification
        (nothing recovered; the record is closed and says why).

        Args:
            config: the new `[alerts]` (see `alerting_config`).
            inventory: the new inventory (sites, parents, regions for rule matching).
            removed_checks: check ids no longer polled.
            removed_sites: site ids no longer in the inventory.

        Returns:
            The ids of open alerts closed because what they were about was removed.
        """
        gone_checks, gone_sites = set(removed_checks), set(removed_sites)
        self.config, self.inventory = config, inventory
        self.dispatcher.replace_receivers(config.receivers if config.enabled else {})
        gone = self.tracker.forget(inventory, gone_checks, gone_sites)
        gone |= {k for k, a in self.alerts.items()
                 if a.site_id in gone_sites or (a.check_id is not None and a.check_id in gone_checks)}
        closed: list[int] = []
        now = time.time()
        for key in sorted(gone):
            alert = self.alerts.pop(key, None)
            if alert is not None:
                closed.append(alert.id)
                log.info("alert %s closed without notification: %s was removed from the configuration",
                         alert.id, key)
                self.dispatcher.background(self._db_call("close_alert", alert.id, now))
        for alert in self.alerts.values():
            self._reroute(alert)
        for follow in self._followers:
            follow(inventory)
        return closed

    def _reroute(self, alert: OpenAlert) -> None:
        """Carry an open alert's routes over to the new rule indexes; equal rules keep their state."""
        old_routes = list(alert.routes.values())
        routes: dict[int, Route] = {}
        for i, rule in self._rules_for(alert):
            match = next((r for r in old_routes if r.rule == rule), None)
            if match is not None:
                routes[i] = match
                old_routes.remove(match)
        adopted = [r for r in old_routes if r.rule.name == "adopted"]
        for n, route in enumerate(adopted):
            routes[-1 - n] = route
        alert.routes = routes

    # ------------------------------------------------------------------ lifecycle
    def add_hook(self, hook: Callable[[float], Any], follow: Callable[[Inventory], None] | None = None) -> None:
        """Run `hook(now)` (sync or async) at the start of every tick (e.g. syncing maintenance windows).

        Args:
            hook: called with the tick's time.
            follow: called with the new inventory when alerting is reconfigured.
        """
        self._hooks.append(hook)
        if follow is not None:
            self._followers.append(follow)

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
