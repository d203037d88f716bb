"""Delivering notifications in the background: one task per delivery, retried with backoff, each recorded.

`Dispatcher.submit()` returns at once, so the engine's loop never waits for a mail server or a webhook.
Deliveries of the same alert to the same receiver keep their order (a recovery never overtakes the problem
it ends), and a slow or dead receiver holds up nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bibnet_ops.alerts._model import Notification
from bibnet_ops.alerts._receivers import DeliveryError, Receiver, make_receiver
from bibnet_ops.alerts._store import AlertLog
from bibnet_ops.inventory import ReceiverConfig

__all__ = ["DeliveryStats", "Dispatcher"]

log = logging.getLogger("bibnet_ops.alerts")


@dataclass
class DeliveryStats:
    """Counters for a health line: deliveries in flight, sent, failed after all retries, attempts retried."""

    pending: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0


class Dispatcher:
    """Send notifications to receivers in their own asyncio tasks.

    Args:
        receivers: by name.
        alert_log: where each delivery and its outcome is recorded (None: not recorded).
        max_concurrency: deliveries in flight at once, all receivers together.
        clock: UTC epoch seconds, for the records.
    """

    def __init__(
        self,
        receivers: dict[str, Receiver],
        alert_log: AlertLog | None = None,
        *,
        max_concurrency: int = 16,
        clock: Callable[[], float] = time.time,
        db: ThreadPoolExecutor | None = None,
    ) -> None:
        self.receivers = receivers
        self.alert_log = alert_log
        self.clock = clock
        self.stats = DeliveryStats()
        self._sem = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._db = db or ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-log")
        self._own_db = db is None
        self._rng = random.Random()

    async def _in_db(self, method: str, *args: Any) -> Any:
        """Run an AlertLog method in the alert-log thread; a store failure is logged, never fatal to delivery."""
        if self.alert_log is None:
            return None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._db, getattr(self.alert_log, method), *args)
        except Exception as exc:  # a full disk must not stop the on-call engineer from being paged
            log.error("alert log: %s", exc)
            return None

    def submit(self, note: Notification, receivers: Iterable[str]) -> list[asyncio.Task[None]]:
        """Queue one notification for each named receiver; returns the delivery tasks (rarely needed)."""
        out: list[asyncio.Task[None]] = []
        for name in dict.fromkeys(receivers):
            receiver = self.receivers.get(name)
            if receiver is None:
                log.error("alert %s: no receiver named %r", note.alert_id, name)
                continue
            previous = self._last.get((name, note.alert_id))
            task = asyncio.get_running_loop().create_task(
                self._deliver(receiver, note, previous), name=f"alert-{note.alert_id}-{name}"
            )
            self._last[(name, note.alert_id)] = task
            self._tasks.add(task)
            self.stats.pending += 1
            task.add_done_callback(self._done)
            out.append(task)
        return out

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.stats.pending -= 1
        for key, last in list(self._last.items()):
            if last is task:
                del self._last[key]

    async def _deliver(self, receiver: Receiver, note: Notification, previous: asyncio.Task[None] | None) -> None:
        cfg = receiver.config
        delivery_id = await self._in_db("add_delivery", note.alert_id, receiver.name, str(note.kind), self.clock())
        if previous is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(previous)
        attempts = 0
        error = ""
        while attempts <= cfg.retries:
            attempts += 1
            try:
                async with self._sem:
                    detail = await asyncio.wait_for(receiver.send(note), cfg.timeout * 4)
            except (DeliveryError, TimeoutError) as exc:
                error = str(exc) or f"no answer within {cfg.timeout * 4:g}s"
            except Exception as exc:  # a bug in one receiver must not silence the others
                error = f"{type(exc).__name__}: {exc}"
                log.exception("receiver %s crashed", receiver.name)
            else:
                self.stats.sent += 1
                log.info("alert %s %s -> %s: %s", note.alert_id, note.kind, receiver.name, detail)
                if delivery_id:
                    await self._in_db("finish_delivery", delivery_id, "sent", attempts, self.clock(), "")
                return
            if attempts > cfg.retries:
                break
            self.stats.retried += 1
            delay = min(cfg.backoff * 2 ** (attempts - 1), cfg.backoff_max) * self._rng.uniform(0.9, 1.1)
            log.warning(
                "alert %s %s -> %s failed (attempt %d/%d): %s; retrying in %.1fs",
                note.alert_id,
                note.kind,
                receiver.name,
                attempts,
                cfg.retries + 1,
                error,
                delay,
            )
            if delivery_id:
                await self._in_db("finish_delivery", delivery_id, "pending", attempts, None, error)
            await asyncio.sleep(delay)
        self.stats.failed += 1
        log.error(
            "alert %s %s -> %s failed after %d attempt(s): %s", note.alert_id, note.kind, receiver.name, attempts, error
        )
        if delivery_id:
            await self._in_db("finish_delivery", delivery_id, "failed", attempts, self.clock(), error)

    def background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` on the loop beside the deliveries (`drain` and `aclose` wait for it too)."""
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop: nothing is running to close or record
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def replace_receivers(self, wanted: Mapping[str, ReceiverConfig]) -> None:
        """Take a new set of receivers; those whose configuration is unchanged are kept (connections too).

        Deliveries in flight keep the receiver they started with; a retired receiver is closed once they end.
        """
        old = dict(self.receivers)
        new: dict[str, Receiver] = {}
        for name, rc in wanted.items():
            kept = old.get(name)
            new[name] = kept if kept is not None and kept.config == rc else make_receiver(rc)
        retired = [r for name, r in old.items() if new.get(name) is not r]
        self.receivers = new
        if retired:
            self.background(self._retire(retired))

    async def _retire(self, receivers: list[Receiver]) -> None:
        others = [t for t in self._tasks if t is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=60.0)
        for receiver in receivers:
            try:
                await receiver.aclose()
            except Exception as exc:  # a receiver that cannot close cleanly is only logged
                log.debug("closing receiver %s: %s", receiver.name, exc)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery has finished (True), or `timeout` seconds passed (False)."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def aclose(self, timeout: float = 5.0) -> None:
        """Give deliveries in flight `timeout` seconds, cancel the rest, and close the receivers."""
        await self.drain(timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        for receiver in self.receivers.values():
            with contextlib.suppress(Exception):
                await receiver.aclose()
        if self._own_db:
            self._db.shutdown(wait=True)
