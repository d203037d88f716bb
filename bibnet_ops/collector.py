"""The collector: the engine with its standard listeners (history store and alerting) wired together.

`bibnet-ops collect` and the dashboard both run one. The engine itself knows nothing of the store or
alerting; this is the one place that attaches them, in the order events must reach them (history first,
so an alert's record never precedes the transition that caused it).

`reload(inventory)` applies a new configuration without a restart (SIGHUP, `bibnet-ops reload`, the
dashboard's reload command); `status()` gives the collector's own health for /metrics and screens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bibnet_ops.engine import CheckSeed, Engine, EngineSnapshot, Evidence, PollHealth, Reconfiguration
from bibnet_ops.events import Event
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckSpec

if TYPE_CHECKING:
    from bibnet_ops.national import NationalRuntime
    from bibnet_ops.store import StoreLike, StoreTarget

__all__ = ["BufferGauge", "Collector", "CollectorStatus"]

log = logging.getLogger(__name__)

# [collector] keys read once at start: a reload that changes them says a restart is needed
_RESTART_KEYS = ("store", "concurrency", "per_site_concurrency", "metrics", "pid_file")


class BufferGauge(Protocol):
    """Something buffering writes for a store that is away (an outbox): how many items wait in it."""

    def depth(self) -> int: ...


@dataclass(frozen=True)
class CollectorStatus:
    """The collector's own health now.

    Attributes:
        poll: the engine's poll-health figures over the last minute.
        checks: checks being polled.
        sites: sites in the inventory.
        store_pending: events queued for the history store, not yet committed (0 without a store).
        store_write_seconds: how long the last history commit took (0 before the first, or without a store).
        store_commits: history commits since start.
        buffer_depth: items waiting in the outbox for a store that is away (None: no outbox).
        reloads: configurations applied since start (the first load not counted).
        last_reload: UTC epoch seconds of the last applied reload, None before any.
        reload_failures: reloads refused because the new configuration was invalid.
    """

    poll: PollHealth
    checks: int
    sites: int
    store_pending: int = 0
    store_write_seconds: float = 0.0
    store_commits: int = 0
    buffer_depth: int | None = None
    reloads: int = 0
    last_reload: float | None = None
    reload_failures: int = 0


class Collector:
    """Engine + history + alerting for one inventory.

    What it offers is listed here, nothing is forwarded implicitly: `subscribe`, `run`, `stop`, `close`
    and `reload`; `check_ids`, `health()`, `snapshot()`, `status()`, `evidence()` to read; `poll_now()` and
    `set_maintenance()` to steer the engine. `engine`, `writer` and `alerting` are its parts.

    Args:
        inventory: what to poll.
        store: the history store: a SQLite path, a `postgresql://` URL or a StoreTarget; None for the
            configured one (`[collector] store`, else the user data directory); False to keep no history
            (alerting then keeps no records either).
        alerts: attach alerting (rules from `[alerts]`; disabled rules still honour maintenance windows).
        first_spread: seconds over which the engine spreads its first polls (and a reload's added checks').
        national: a regional collector of the national network: history goes through its outbox to the
            central store (`store` is then ignored), alerting reads and records there too.
        share: narrows a reloaded inventory to this collector's share (`collect --region/--tag/--group`).
    """

    def __init__(
        self,
        inventory: Inventory,
        *,
        store: StoreLike | bool | None = None,
        alerts: bool = True,
        first_spread: float = 60.0,
        national: NationalRuntime | None = None,
        share: Callable[[Inventory], Inventory] | None = None,
    ) -> None:
        from bibnet_ops.store import Retention, StoreWriter, check_infos, resolve_store

        self.inventory = inventory
        self.engine = Engine(inventory, first_spread=first_spread)
        self.writer: Any = None
        self.national = national
        self._share = share
        self._buffer: BufferGauge | None = None
        if national is not None:
            self.writer = StoreWriter(
                national.open_outbox,  # type: ignore[arg-type]  # the outbox is the writer's part of a HistoryStore
                checks=check_infos(inventory.checks, _kinds(inventory)),
                timezone=inventory.timezone,
                on_commit=national.committed,
            ).start()
            self.writer.target = national.target  # what alerting and `store_path` name: the central store
            self.engine.subscribe(self.writer.handle)
            self._buffer = national
        elif store is not False:
            given = None if store is None or store is True else store
            target = resolve_store(given, inventory.settings, inventory.root)
            self.writer = StoreWriter(
                target,
                checks=check_infos(inventory.checks, _kinds(inventory)),
                timezone=inventory.timezone,
                retention=Retention.from_settings(inventory.settings),
            ).start()
            self.engine.subscribe(self.writer.handle)
        self.alerting: Any = None
        self._closing: asyncio.Future[None] | None = None
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload: float | None = None
        if alerts:
            from bibnet_ops.alerts import build_alerting

            records = self.writer.target if self.writer else None
            if national is not None:
                records = national.alert_records()
            self.alerting = build_alerting(inventory, records, self.engine)

    @property
    def store_path(self) -> Path | StoreTarget | None:
        """The history store written: a SQLite file's Path, else its target (prints redacted); None without history."""
        if self.writer is None:
            return None
        return self.writer.path or self.writer.target

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self.engine.subscribe(callback)

    # Reading (explicit, for runners, /metrics and screens).

    @property
    def check_ids(self) -> list[str]:
        return self.engine.check_ids

    def health(self) -> PollHealth:
        """The engine's poll-health figures over the last minute."""
        return self.engine.health()

    def snapshot(self) -> EngineSnapshot:
        """Every check's and site's state now, with the poll health."""
        return self.engine.snapshot()

    def attach_buffer(self, gauge: BufferGauge | None) -> None:
        """Report `gauge.depth()` as the outbox depth in `status()` (a store-and-forward writer calls this)."""
        self._buffer = gauge

    def status(self) -> CollectorStatus:
        """The collector's own health now (cheap: counters only)."""
        writer = self.writer
        depth = None
        if self._buffer is not None:
            try:
                depth = int(self._buffer.depth())
            except Exception as exc:  # a health figure is never worth failing a scrape for
                log.debug("outbox depth: %s", exc)
        return CollectorStatus(
            poll=self.engine.health(),
            checks=len(self.engine.check_ids),
            sites=len(self.inventory.sites),
            store_pending=int(getattr(writer, "pending", 0) or 0),
            store_write_seconds=float(getattr(writer, "last_commit_seconds", 0.0) or 0.0),
            store_commits=int(getattr(writer, "commits", 0) or 0),
            buffer_depth=depth,
            reloads=self.reloads,
            last_reload=self.last_reload,
            reload_failures=self.reload_failures,
        )

    # Reloading.

    def reload(
        self,
        inventory: Inventory,
        checks: Iterable[CheckSpec] | None = None,
        *,
        seed: Mapping[str, CheckSeed] | None = None,
    ) -> Reconfiguration:
        """Apply a new, already validated inventory without a restart; call it on the collector's loop.

        The engine diffs the checks by id (see `Engine.reconfigure`: unchanged checks keep their SOFT/HARD
        state, counters and open outage; added ones start polling; removed ones stop silently), the
        history store registers the added and changed checks, and alerting takes the new rules and
        receivers while keeping its open alerts (those of removed checks or sites are closed without a
        notification). `[collector]` keys read only at start (store, concurrency, metrics, pid_file)
        are logged as needing a restart.

        Args:
            inventory: the new inventory (load it with `load_inventory`; a ConfigError means: keep running).
            checks: the checks to poll (default: every check of `inventory`).
            seed: last known states of added checks by id (a collector taking over sites).

        Returns:
            What the engine added, removed and changed.
        """
        from bibnet_ops.store import check_infos

        if self.national is not None and checks is None:
            inventory, checks = self.national.reload(inventory)  # the share, and the checks of the sites held
        elif self._share is not None:
            inventory = self._share(inventory)
        alerts_config = None
        if self.alerting is not None:
            from bibnet_ops.alerts import alerting_config

            alerts_config = alerting_config(inventory)  # before anything changes: a failure changes nothing
        old_settings = self.inventory.settings.get("collector", {}) if isinstance(self.inventory.settings, dict) else {}
        new_settings = inventory.settings.get("collector", {}) if isinstance(inventory.settings, dict) else {}
        engine_inventory = inventory
        if self.national is not None and checks is None:
            inventory, engine_inventory = self._national_views(inventory)
        polled_before = {c.split("/", 1)[0] for c in self.engine.check_ids}
        result = self.engine.reconfigure(engine_inventory, checks, seed=seed)
        polled_now = {c.split("/", 1)[0] for c in self.engine.check_ids}
        # a site none of whose checks is polled here any more is forgotten by alerting like a removed one
        unpolled = sorted(set(result.sites_removed) | (polled_before - polled_now))
        if self.writer is not None:
            wanted = set(result.added) | set(result.changed)
            specs = [c for c in (engine_inventory.checks if checks is None else checks) if c.id in wanted]
            if specs:
                self.writer.register_checks(check_infos(specs, _kinds(inventory)))
        if self.alerting is not None and alerts_config is not None:
            self.alerting.reconfigure(alerts_config, inventory, result.removed, unpolled)
        self.inventory = inventory
        for key in _RESTART_KEYS:
            if old_settings.get(key) != new_settings.get(key):
                log.warning("[collector] %s changed: it takes effect at the next restart", key)
        self.reloads += 1
        self.last_reload = time.time()
        return result

    def _national_views(self, whole: Inventory) -> tuple[Inventory, Inventory]:
        """A regional collector's reload: (its share of the new inventory, the sites it holds now).

        The lease runtime takes the new inventory too, so its later hand-overs and take-overs use it; the
        share's membership (which sites the group splits) stays as resolved at start.
        """
        from bibnet_ops.national import sub_inventory

        national = self.national
        assert national is not None
        national.inventory = whole
        share = whole if national.share.whole else sub_inventory(whole, national.share.sites)
        return share, sub_inventory(whole, national.owned)

    def reload_failed(self) -> None:
        """Count a reload refused because the new configuration was invalid (for /metrics)."""
        self.reload_failures += 1

    # Running.

    async def join(self) -> None:
        """A regional collector joins its lease group and polls the sites it holds (before `run`).

        Raises:
            CollectorIdInUse: another running collector has this collector id.
        """
        if self.national is not None:
            await self.national.start(self.engine, self.writer)

    async def run(self) -> None:
        """Run until `stop()`; alerting is drained and history committed before returning."""
        leases: asyncio.Task[None] | None = None
        try:
            if self.alerting is not None:
                await self.alerting.start()
            if self.national is not None:
                leases = asyncio.create_task(self.national.run())
            await self.engine.run()
        finally:
            if leases is not None:
                leases.cancel()
                await asyncio.gather(leases, return_exceptions=True)
            await self.close()

    async def close(self) -> None:
        """Drain alerting and commit history, once (`run` does it on its way out).

        A process about to exit may call it without waiting for the engine to cancel every queued poll,
        which takes seconds with thousands of checks.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self.national is not None:
            try:
                await self.national.stop()  # hands the sites over before the history below is closed
            except Exception:
                log.exception("leaving the collector group")
        if self.alerting is not None:
            try:
                await self.alerting.stop()
            except Exception:  # history must still be committed if alerting fails to drain
                log.exception("alerting did not stop cleanly")
        if self.writer is not None:
            self.writer.close()
        if self.national is not None:
            self.national.close()

    def stop(self) -> None:
        self.engine.stop()

    def evidence(self, check_id: str) -> Evidence:
        """The raw reply the check's last result was judged on (see `Engine.evidence`)."""
        return self.engine.evidence(check_id)

    # Steering the engine (thread-safe, as the engine's own methods).

    def poll_now(self, pattern: str | None = None) -> int:
        """Poll the checks matching `SITE[/DEVICE[/CHECK]]` now (all when empty); how many matched."""
        return self.engine.poll_now(pattern)

    def set_maintenance(self, site_id: str, on: bool) -> None:
        """Mark a site as in maintenance (MAINTENANCE, its alerts silenced) or not (see `Engine.set_maintenance`)."""
        self.engine.set_maintenance(site_id, on)


def _kinds(inventory: Inventory) -> dict[str, str]:
    return {name: t.kind for name, t in inventory.templates.items()}
