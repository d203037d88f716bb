"""The collector: the engine with its standard listeners (history store and alerting) wired together.

`bibnet-ops collect` and the dashboard both run one. The engine itself knows nothing of the store or
alerting; this is the one place that attaches them, in the order events must reach them (history first,
so an alert's record never precedes the transition that caused it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bibnet_ops.engine import Engine
from bibnet_ops.events import Event
from bibnet_ops.inventory import Inventory

if TYPE_CHECKING:
    from bibnet_ops.store import StoreLike, StoreTarget

__all__ = ["Collector"]

log = logging.getLogger(__name__)


class Collector:
    """Engine + history + alerting for one inventory; duck-compatible with the engine for runners.

    Args:
        inventory: what to poll.
        store: the history store: a SQLite path, a `postgresql://` URL or a StoreTarget; None for the
            configured one (`[collector] store`, else the user data directory); False to keep no history
            (alerting then keeps no records either).
        alerts: attach alerting (rules from `[alerts]`; disabled rules still honour maintenance windows).
        first_spread: seconds over which the engine spreads its first polls.
    """

    def __init__(
        self,
        inventory: Inventory,
        *,
        store: StoreLike | bool | None = None,
        alerts: bool = True,
        first_spread: float = 60.0,
    ) -> None:
        from bibnet_ops.store import Retention, StoreWriter, check_infos, resolve_store

        self.inventory = inventory
        self.engine = Engine(inventory, first_spread=first_spread)
        self.writer: Any = None
        if store is not False:
            given = None if store is None or store is True else store
            target = resolve_store(given, inventory.settings, inventory.root)
            kinds = {name: t.kind for name, t in inventory.templates.items()}
            self.writer = StoreWriter(
                target,
                checks=check_infos(inventory.checks, kinds),
                timezone=inventory.timezone,
                retention=Retention.from_settings(inventory.settings),
            ).start()
            self.engine.subscribe(self.writer.handle)
        self.alerting: Any = None
        self._closing: asyncio.Future[None] | None = None
        if alerts:
            from bibnet_ops.alerts import build_alerting

            self.alerting = build_alerting(inventory, self.writer.target if self.writer else None, self.engine)

    @property
    def store_path(self) -> StoreTarget | None:
        """The history store written (prints redacted), or None without history."""
        return self.writer.target if self.writer is not None else None

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self.engine.subscribe(callback)

    async def run(self) -> None:
        """Run until `stop()`; alerting is drained and history committed before returning."""
        try:
            if self.alerting is not None:
                await self.alerting.start()
            await self.engine.run()
        finally:
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
        if self.alerting is not None:
            try:
                await self.alerting.stop()
            except Exception:  # history must still be committed if alerting fails to drain
                log.exception("alerting did not stop cleanly")
        if self.writer is not None:
            self.writer.close()

    def stop(self) -> None:
        self.engine.stop()

    def __getattr__(self, name: str) -> Any:
        # health(), snapshot(), poll_now(), set_maintenance(), check_ids ... are the engine's
        return getattr(self.engine, name)
