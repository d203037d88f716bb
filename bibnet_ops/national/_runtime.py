"""One regional collector in the national network: its outbox and forwarder, its leases, its health row.

The collector builds a `NationalRuntime` when it writes to a central PostgreSQL store: the history writer
then writes to the local outbox (`open_outbox`) and the forwarder replays it to the central store. With a
collector id, `start()` joins the collector's lease group and `run()` renews, hands over and takes sites
every `tick` seconds, re-configuring the engine (`Engine.reconfigure`) with the checks of the sites it
holds, seeded from their last state in the central store so soft/hard states and outages continue.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from bibnet_ops.engine import CheckSeed
from bibnet_ops.inventory import Inventory
from bibnet_ops.national._central import Central, PgCentral, seeds_from_rows
from bibnet_ops.national._forwarder import Forwarder, ForwarderState
from bibnet_ops.national._leases import CollectorIdInUse, LeaseManager
from bibnet_ops.national._outbox import DEFAULT_MINUTE_ROWS, Outbox
from bibnet_ops.national._share import Share, resolve_share, sub_inventory
from bibnet_ops.store import StoreError, StoreTarget, StoreUnreachableError, default_store_path, open_store

__all__ = ["NationalRuntime", "outbox_path"]

log = logging.getLogger(__name__)


class _Engine(Protocol):
    def reconfigure(self, inventory: Inventory, checks: Any = None, *,
                    seed: Mapping[str, CheckSeed] | None = None) -> Any: ...

    def health(self) -> Any: ...

    def poll_now(self, pattern: str | None = None) -> int: ...


class _Writer(Protocol):
    def flush(self, timeout: float = 10.0) -> None: ...

    def register_checks(self, checks: Any) -> None: ...


def outbox_path(settings: dict[str, Any], config_dir: str | Path | None, collector_id: str,
                central: StoreTarget | None = None) -> Path:
    """`[collector] outbox` (relative to the inventory directory), else `outbox-<id>-<store>.db` beside the
    default store, where <store> is a short hash of the central store's address (one outbox per store)."""
    configured = (settings.get("collector") or {}).get("outbox")
    if configured:
        path = Path(str(configured)).expanduser()
        return path if path.is_absolute() or config_dir is None else Path(config_dir) / path
    tag = "" if central is None else "-" + hashlib.sha1(central.display.encode()).hexdigest()[:8]
    return default_store_path().parent / f"outbox-{collector_id or 'collector'}{tag}.db"


class NationalRuntime:
    """The national parts of one collector (see the module docstring).

    Args:
        inventory: the whole inventory (shares are taken from it).
        share: this collector's share.
        target: the central PostgreSQL store.
        outbox: the outbox file.
        failover_delay: seconds after which a silent member's sites are taken over (leases only).
        leases: join the share's lease group (needs a collector id); False polls the whole share.
        choices: the share as chosen on the command line (group, regions, tags), taken again on a reload.
    """

    def __init__(self, inventory: Inventory, share: Share, target: StoreTarget, *, outbox: Path,
                 failover_delay: float = 20.0, leases: bool = True,
                 max_minute_rows: int = DEFAULT_MINUTE_ROWS,
                 choices: tuple[str | None, tuple[str, ...], tuple[str, ...]] = (None, (), ())) -> None:
        self.inventory = inventory
        self._choices = choices
        self.share = share
        self.target = target
        self.host = socket.gethostname()
        self.outbox_path = outbox
        self._max_minute_rows = max_minute_rows
        self._outbox: Outbox | None = None
        self._forwarder: Forwarder | None = None
        self.leases: LeaseManager | None = None
        if leases and share.collector_id:
            self.leases = LeaseManager(target.location, target.resolve_password(), share,
                                       failover_delay=failover_delay, host=self.host, pid=os.getpid())
        self.owned: set[str] = set()
        self._engine: _Engine | None = None
        self._writer: _Writer | None = None
        self._stopping = False
        self._leases_checked = 0.0  # monotonic time of the last successful lease check
        self._left_share: set[str] = set()
        self._central_ok = False  # the central store answered at start
        self.handovers = 0
        self.takeovers = 0

    # ------------------------------------------------------------------ wiring
    @property
    def outbox(self) -> Outbox:
        """The local outbox (opened by `connect`)."""
        if self._outbox is None:
            raise RuntimeError("NationalRuntime.connect() opens the outbox")
        return self._outbox

    @property
    def forwarder(self) -> Forwarder:
        if self._forwarder is None:
            raise RuntimeError("NationalRuntime.connect() creates the forwarder")
        return self._forwarder

    def open_outbox(self) -> Outbox:
        """The history writer's store (`StoreWriter(runtime.open_outbox)`)."""
        return self.outbox

    def depth(self) -> int:
        """Rows waiting in the outbox (the collector's buffer gauge)."""
        return self.outbox.depth()

    def committed(self, _transitions: int) -> None:
        """The writer committed a batch to the outbox: let the forwarder take it now."""
        self.forwarder.nudge()

    def alert_records(self) -> StoreTarget:
        """Where alerting records alerts and reads acks and maintenance: the central store when it answers,
        else a local file beside the outbox until the collector restarts (said in the log)."""
        try:
            self._check_central()
            return self.target
        except StoreUnreachableError as exc:
            local = self.outbox_path.with_name(self.outbox_path.stem + "-alerts.db")
            log.warning("central store unreachable (%s): alert records kept in %s until a restart; acks and "
                        "maintenance windows made on the central store are not seen meanwhile", _line(exc), local)
            return StoreTarget(str(local))

    def _open_central(self) -> Central:
        store: Any = open_store(self.target, timezone=self.inventory.timezone)
        return PgCentral(store, self.host, os.getpid())

    # ------------------------------------------------------------------ start / run / stop
    async def connect(self) -> None:
        """Check the central store and take this collector id there, then open the outbox.

        The central store is opened once first: that creates or upgrades its schema, and a refused password,
        a bad URL or a store of a newer schema stops the collector here with the store's own message.

        Raises:
            StoreError: the central store refuses us (not merely unreachable), or the outbox cannot be opened.
            CollectorIdInUse: another running collector has this id (the caller exits 2).
        """
        try:
            await asyncio.to_thread(self._check_central)
            self._central_ok = True
            if self.leases is not None:
                await self.leases.connect()
        except StoreUnreachableError as exc:  # poll what we can; the id is checked again on reconnect
            if self.leases is not None:
                await self.leases.disconnect()
            log.warning("central store unreachable at start (%s): polling the sites held last time", _line(exc))
        self._outbox = outbox = Outbox(self.outbox_path, timezone=self.inventory.timezone,
                                       max_minute_rows=self._max_minute_rows)
        recorded = outbox.get("central")
        if recorded not in (None, self.target.display) and outbox.depth():
            n = outbox.depth()
            outbox.shutdown()
            self._outbox = None
            raise StoreError(f"outbox {self.outbox_path} holds {n} rows for {recorded}, not for "
                             f"{self.target.display}: point this collector at that store until they are forwarded, "
                             f"or give it another --outbox")
        outbox.put("central", self.target.display)
        self._forwarder = Forwarder(self._outbox, self._open_central, collector_id=self.share.collector_id,
                                    gate=self._leases_checked_since)

    def reload(self, inventory: Inventory) -> tuple[Inventory, None]:
        """A reloaded inventory narrowed to the sites held (the share is taken from it again; sites added to
        the share are taken through leases at the next ticks).

        Raises:
            ShareError: the new configuration leaves this collector no site (the running one stays).
        """
        share = resolve_share(inventory, self.share.collector_id, *self._choices)
        self.inventory, self.share = inventory, replace(share, group=self.share.group)
        if self.leases is not None:
            self.leases.share = self.share
        self._left_share |= self.owned - set(share.sites)  # released at the next tick, once flushed
        self.owned &= set(share.sites)
        self.outbox.put("owned", json.dumps(sorted(self.owned)))
        return sub_inventory(inventory, self.owned), None

    def _leases_checked_since(self, connected_at: float) -> bool:
        """The forwarder may replay once the leases were checked after its (re)connection (see `_tick`)."""
        return self.leases is None or self._leases_checked >= connected_at

    def _check_central(self) -> None:
        open_store(self.target, timezone=self.inventory.timezone).close()

    async def start(self, engine: _Engine, writer: _Writer | None) -> None:
        """Configure the engine with the sites held (call after `connect`, before the engine runs).

        Checks start from their last known state: the central store's, or this collector's own (kept in the
        outbox) where it is newer or the central store is away, so a restart raises no false recovery.
        """
        self._engine, self._writer = engine, writer
        self.forwarder.start()
        central: dict[str, CheckSeed] = {}
        if self.leases is None:
            self.owned = set(self.share.sites)
        elif self.leases.connected:
            try:
                self.leases.owned = set(self._remembered())
                plan = await self.leases.plan(self.health())
                self._purge_lost(plan.lost_since)
                await self.leases.acquire(plan.members)
                self.owned = set(self.leases.owned)
                self._leases_checked = time.monotonic()
                central = await self.leases.seeds(self.owned)
            except Exception as exc:  # lost between connect and now: as if it had been away
                await self.leases.disconnect()
                log.warning("central store: %s", _line(exc))
                self.owned = set(self._remembered() or self.share.sites)
        else:
            self.owned = set(self._remembered() or self.share.sites)
        # seeds only apply to added checks: start from none, then add the held ones with their seeds
        engine.reconfigure(sub_inventory(self.inventory, ()), seed={})
        reachable = self.leases is None or self.leases.connected
        self._apply(self._merge_seeds(self.owned, central, reachable and self._central_ok))

    def _merge_seeds(self, sites: set[str], central: dict[str, CheckSeed], reachable: bool = True,
                     ) -> dict[str, CheckSeed]:
        """Central seeds, overridden by this collector's own newer ones: those seen and not yet forwarded, or
        all it remembers when the central store cannot be asked."""
        local = seeds_from_rows(self.outbox.states(sites, pending_only=reachable))
        newer = {c: s for c, s in local.items() if c not in central or (s.since or 0.0) > (central[c].since or 0.0)}
        return {**central, **newer}

    def _remembered(self) -> list[str]:
        text = self.outbox.get("owned")
        sites = json.loads(text) if text else []
        return [s for s in sites if s in set(self.share.sites)]

    def _apply(self, seeds: Mapping[str, CheckSeed] | None = None) -> None:
        assert self._engine is not None
        self._engine.reconfigure(sub_inventory(self.inventory, self.owned), seed=seeds or {})
        self.outbox.put("owned", json.dumps(sorted(self.owned)))

    async def run(self) -> None:
        """Heartbeat, renew, hand over and take sites until cancelled (a task beside the engine)."""
        if self.leases is None:
            return
        leases = self.leases
        while not self._stopping:
            await asyncio.sleep(leases.tick)
            try:
                if not leases.connected:
                    await leases.connect()
                    leases.owned = set(self.owned)
                await self._tick(leases)
            except CollectorIdInUse as exc:
                log.error("%s; this collector stops polling", exc)
                self.owned = set()
                self._apply()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # central store away: keep polling what we hold
                if leases.connected:
                    log.warning("central store: %s; keeping the %d sites held", _line(exc), len(self.owned))
                await leases.disconnect()

    async def _tick(self, leases: LeaseManager) -> None:
        checked = time.monotonic()
        plan = await leases.plan(self.health())
        if plan.lost:
            log.warning("leases lost to another collector: %s", ", ".join(sorted(plan.lost)))
            self.owned -= plan.lost
            self._apply()
            self._purge_lost(plan.lost_since)
        self._leases_checked = checked
        if self._left_share and await self._flush():
            await leases.release(self._left_share & leases.owned)
            self._left_share = set()
        if plan.release:
            # hand over: stop polling, get the history of these sites into the central store, then free them
            self.owned -= plan.release
            self._apply()
            if await self._flush():
                await leases.release(plan.release)
                self.handovers += len(plan.release)
                log.info("handed over %d site(s): %s", len(plan.release), ", ".join(sorted(plan.release)))
            else:
                self.owned |= plan.release & leases.owned
                self._apply()
        taken, seeds = await leases.acquire(plan.members)
        if taken:
            self.takeovers += len(taken)
            self.owned |= taken
            log.info("took %d site(s): %s", len(taken), ", ".join(sorted(taken)))
            self._apply(self._merge_seeds(taken, seeds))
            assert self._engine is not None
            for site in sorted(taken):  # a site taken over is polled at once, not within the first spread
                self._engine.poll_now(site)

    def _purge_lost(self, lost_since: dict[str, float]) -> None:
        for site, since in sorted(lost_since.items()):
            dropped = self.outbox.purge_site(site, since)
            if dropped:
                log.warning("%s was polled by another collector from %s: %d queued row(s) of it dropped "
                            "(that collector's history is the one kept)", site,
                            time.strftime("%H:%M:%S", time.localtime(since)), dropped)

    async def _flush(self, timeout: float = 10.0) -> bool:
        writer = self._writer
        if writer is not None:
            await asyncio.to_thread(writer.flush, timeout)
        return await asyncio.to_thread(self.forwarder.flush, timeout)

    async def stop(self) -> None:
        """Leave the group (the others take the sites at once); the outbox keeps what is not forwarded."""
        self._stopping = True
        if self.leases is not None:
            if self.leases.connected:
                await self._flush(5.0)
            await self.leases.stop()

    def close(self) -> None:
        """Stop the forwarder (after the history writer closed) and close the outbox."""
        if self._forwarder is not None:
            self._forwarder.stop()
        if self._outbox is not None:
            self._outbox.shutdown()

    # ------------------------------------------------------------------ health
    def forwarder_state(self) -> ForwarderState:
        return self.forwarder.state()

    def health(self) -> dict[str, Any]:
        """Figures written with every heartbeat (national_collectors.health) and shown by the console."""
        state = self.forwarder.state()
        poll = self._engine.health() if self._engine is not None else None
        return {
            "checks_per_second": round(float(getattr(poll, "checks_per_second", 0.0)), 2),
            "lag_p99": round(float(getattr(poll, "lag_p99", 0.0)), 3),
            "sites": len(self.owned),
            "outbox_depth": state.depth,
            "queued_events": state.queued_events,
            "forwarded_rows": state.forwarded_rows,
            "central_reachable": state.reachable,
            "last_outage": list(self.forwarder.last_outage) if self.forwarder.last_outage else None,
            "last_replay_seconds": state.last_replay_seconds,
            "handovers": self.handovers,
            "takeovers": self.takeovers,
            "time": time.time(),
        }


def _line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

