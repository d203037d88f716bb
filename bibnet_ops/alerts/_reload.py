"""Reloading alerting with the collector's configuration: new rules and receivers, the same open alerts.

An open alert keeps its id, who was told and how far it escalated as long as a rule equal to the one that
routed it still matches; a new rule matching it tells its receivers at the next tick, as for a new
problem. Problems and alerts of checks or sites removed from the configuration are dropped without a
notification (nothing recovered; the record is closed and says why).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bibnet_ops.alerts._receivers import make_receiver
from bibnet_ops.alerts._state import OpenAlert, Route
from bibnet_ops.inventory import AlertsConfig, Inventory

__all__ = ["ReloadMixin"]

log = logging.getLogger("bibnet_ops.alerts")


class ReloadMixin:
    """`reconfigure()` for the AlertManager (kept apart so the manager stays about decisions)."""

    config: AlertsConfig
    inventory: Inventory
    dispatcher: Any
    problems: dict[str, Any]
    alerts: dict[str, OpenAlert]
    site_status: dict[str, Any]
    flapping: dict[str, float]
    _hooks: list[Any]
    _site_checks: dict[str, set[str]]
    _failing: dict[str, set[str]]
    _retrying: dict[str, set[str]]
    _last_sample: dict[str, float]
    _behind: dict[str, set[str]]

    if TYPE_CHECKING:
        def _rules_for(self, p: Any) -> list[tuple[int, Any]]: ...  # provided by AlertManager

    def reconfigure(self, config: AlertsConfig, inventory: Inventory, removed_checks: Iterable[str] = (),
                    removed_sites: Iterable[str] = ()) -> list[int]:
        """Take new rules, receivers and inventory; forget what was removed. Call it on the manager's loop.

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
        self._replace_receivers(config)
        gone_keys = {k for k, p in self.problems.items()
                     if p.site_id in gone_sites or (p.check_id is not None and p.check_id in gone_checks)}
        gone_keys |= {k for k, a in self.alerts.items()
                      if a.site_id in gone_sites or (a.check_id is not None and a.check_id in gone_checks)}
        for key in gone_keys:
            self.problems.pop(key, None)
        closed: list[int] = []
        now = time.time()
        for key in sorted(gone_keys):
            alert = self.alerts.pop(key, None)
            if alert is not None:
                closed.append(alert.id)
                log.info("alert %s closed without notification: %s was removed from the configuration",
                         alert.id, key)
                self._close_record(alert.id, now)
        for mapping in (self._site_checks, self._failing, self._retrying, self._behind):
            for site in gone_sites:
                mapping.pop(site, None)
            for members in mapping.values():
                members -= gone_checks
                members -= gone_sites
        for check in gone_checks:
            self._last_sample.pop(check, None)
            self.flapping.pop(check, None)
        for site in gone_sites:
            self.site_status.pop(site, None)
        for alert in self.alerts.values():
            self._reroute(alert, now)
        for hook in self._hooks:
            if hasattr(hook, "sites") and hasattr(hook, "current"):  # MaintenanceSync follows the new sites
                hook.sites = list(inventory.sites)
                hook.current = {s for s in hook.current if s in inventory.sites}
        return closed

    def _replace_receivers(self, config: AlertsConfig) -> None:
        """Keep receivers whose configuration is unchanged (their connections too); build the others."""
        old = dict(self.dispatcher.receivers)
        wanted = config.receivers if config.enabled else {}
        new = {}
        for name, rc in wanted.items():
            kept = old.get(name)
            new[name] = kept if kept is not None and kept.config == rc else make_receiver(rc)
        retired = [r for name, r in old.items() if new.get(name) is not r]
        self.dispatcher.receivers = new
        if retired:
            # deliveries in flight keep their receiver object; it is closed once they are done
            self._background(self._retire(retired))

    def _background(self, coro: Any) -> None:
        """Run `coro` on the loop as one of the dispatcher's tasks (drained by its `aclose`)."""
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop: nothing is running to close or record
            coro.close()
            return
        self.dispatcher._tasks.add(task)
        task.add_done_callback(self.dispatcher._tasks.discard)

    async def _retire(self, receivers: list[Any]) -> None:
        others = [t for t in self.dispatcher._tasks if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=60.0)
        for receiver in receivers:
            try:
                await receiver.aclose()
            except Exception as exc:  # a receiver that cannot close cleanly is only logged
                log.debug("closing receiver %s: %s", receiver.name, exc)

    def _reroute(self, alert: OpenAlert, now: float) -> None:
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

    def _close_record(self, alert_id: int, now: float) -> None:
        closer = getattr(self, "_db_call", None)
        if closer is not None:
            self._background(closer("close_alert", alert_id, now))
