"""Attach alerting to a running collector or dashboard in one line: `build_alerting(inventory, store, engine)`.

It reads `[alerts]` from the inventory, opens the store's alerting tables, builds the receivers, subscribes
the manager to the engine, and keeps the engine's MAINTENANCE status in step with the store's windows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bibnet_ops.alerts._dispatch import Dispatcher
from bibnet_ops.alerts._manager import AlertManager
from bibnet_ops.alerts._receivers import make_receiver
from bibnet_ops.alerts._store import AlertLog
from bibnet_ops.inventory import AlertsConfig, Inventory, parse_alerts
from bibnet_ops.store import MaintenanceSchedule, StoreTarget, resolve_store

__all__ = ["MaintenanceSync", "alerting_config", "build_alerting", "store_file"]

log = logging.getLogger("bibnet_ops.alerts")


class _Engine(Protocol):
    def subscribe(self, callback: Callable[[Any], None]) -> Any: ...


def store_file(store: object) -> StoreTarget | None:
    """The store behind `store`: a path, URL or StoreTarget, or any object with a `target` (StoreWriter) or a
    `path` attribute (SqliteStore)."""
    if store is None:
        return None
    if isinstance(store, str | Path | StoreTarget):
        return resolve_store(store)
    target = getattr(store, "target", None)
    if isinstance(target, StoreTarget):
        return target
    path = getattr(store, "path", None)
    return resolve_store(Path(path)) if path is not None else None


class MaintenanceSync:
    """Tell the engine which sites are in a maintenance window (it then reports them as MAINTENANCE).

    Args:
        schedule: the store's windows (cached).
        sites: site ids to follow.
        set_maintenance: the engine's `set_maintenance(site_id, on)`.
        interval: seconds between re-evaluations (window edges are seen within this delay).
    """

    def __init__(self, schedule: MaintenanceSchedule, sites: list[str],
                 set_maintenance: Callable[[str, bool], Any], interval: float = 5.0) -> None:
        self.schedule = schedule
        self.sites = sites
        self.set_maintenance = set_maintenance
        self.interval = interval
        self.current: set[str] = set()
        self._last = float("-inf")

    async def __call__(self, now: float) -> None:
        """Tick hook: re-read windows (in a thread) and switch sites whose maintenance began or ended."""
        if now - self._last < self.interval:
            return
        self._last = now
        try:
            await asyncio.to_thread(self.schedule.windows)
        except Exception as exc:  # an unreadable store keeps the last known windows
            log.error("maintenance windows: %s", exc)
        active = {s for s in self.sites if self.schedule.active(s, now) is not None}
        for site in sorted(active - self.current):
            log.info("maintenance begins: %s", site)
            self.set_maintenance(site, True)
        for site in sorted(self.current - active):
            log.info("maintenance ends: %s", site)
            self.set_maintenance(site, False)
        self.current = active

    def follow(self, inventory: Inventory) -> None:
        """Follow the sites of a new inventory (alerting was reconfigured)."""
        self.sites = list(inventory.sites)
        self.current = {s for s in self.current if s in inventory.sites}


def alerting_config(inventory: Inventory) -> AlertsConfig:
    """The `[alerts]` table of the inventory as the manager uses it (no rules when alerting is disabled)."""
    config = parse_alerts(inventory.settings.get("alerts") or {}, inventory.sites, inventory.root)
    if not config.enabled:
        config = type(config)(enabled=False, receivers=config.receivers, rules=(), settle=config.settle,
                              settle_max=config.settle_max, subject_prefix=config.subject_prefix)
    return config


def build_alerting(inventory: Inventory, store: object, engine: _Engine | None = None, *,
                   tick: float = 1.0, clock: Callable[[], float] = time.time,
                   maintenance_interval: float = 5.0) -> AlertManager:
    """An AlertManager for this inventory, subscribed to `engine` and recording into `store`.

    Use it as `async with build_alerting(inventory, store, engine):` around the engine's run (or call
    `await manager.start()` / `await manager.stop()`). With `[alerts] enabled = false` (or no `[alerts]`),
    nothing is sent, but maintenance windows and acknowledgements still work.

    Args:
        inventory: the loaded inventory (its `settings["alerts"]` was validated by the loader).
        store: the history store (a path, a `postgresql://` URL, a StoreTarget, or a StoreWriter/SqliteStore),
            or None (no records).
        engine: anything with `subscribe(callback)`; its `set_maintenance(site_id, on)` is called when
            a maintenance window begins or ends, if it has one.
        tick: seconds between alerting decisions.
        maintenance_interval: seconds between maintenance-window evaluations.
    """
    config = alerting_config(inventory)
    path = store_file(store)
    alert_log = AlertLog(path) if path is not None else None
    receivers = {name: make_receiver(rc) for name, rc in config.receivers.items()} if config.enabled else {}
    dispatcher = Dispatcher(receivers, alert_log, clock=clock)
    schedule = None
    if path is not None:
        schedule = MaintenanceSchedule(path, {s.id: s.region for s in inventory.sites.values()},
                                       refresh=maintenance_interval)
    sched = schedule

    def in_maintenance(site_id: str, t: float) -> bool:
        return sched is not None and sched.active(site_id, t) is not None

    manager = AlertManager(config, inventory, dispatcher, alert_log, in_maintenance=in_maintenance, clock=clock,
                           tick=tick, poll_now=getattr(engine, "poll_now", None))
    if engine is not None:
        engine.subscribe(manager.handle)
        setter = getattr(engine, "set_maintenance", None)
        if schedule is not None and setter is not None:
            sync = MaintenanceSync(schedule, list(inventory.sites), setter, maintenance_interval)
            manager.add_hook(sync, follow=sync.follow)
        elif schedule is not None:
            log.warning("the engine has no set_maintenance(): sites in maintenance are silenced but not marked")
    return manager
