"""What the dashboard may change, and how: acks through the AlertManager, maintenance through the store (no Textual).

Every call returns a `concurrent.futures.Future` at once, so the screen never waits: acknowledgements go to
the collector's AlertManager through an `AckService` (the collector process, `bibnet_ops.remote`, or
`LoopAcks` for a manager on an event loop of this process), maintenance windows are written by a private
worker thread through the same store API as `bibnet-ops maintenance` (the collector's MaintenanceSync reads
them from there). The access policy is checked before anything is sent (and again by the manager), so a
read-only console raises `ReadOnlyError` and writes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from bibnet_ops.alerts import AccessPolicy, Ack, AlertLog, login_name, parse_duration
from bibnet_ops.remote import NotAvailableError
from bibnet_ops.store import HistoryStore, MaintenanceWindow, StoreLike, open_store, store_exists

__all__ = [
    "AckRequest",
    "AckService",
    "ConsoleChanges",
    "LoopAcks",
    "MaintenanceRequest",
    "NotAvailableError",
    "parse_optional_duration",
]

T = TypeVar("T")


class AckService(Protocol):
    """Where acknowledgements are made: the collector's AlertManager, wherever it runs."""

    def acknowledge(
        self,
        keys: Iterable[str],
        comment: str,
        *,
        author: str | None = None,
        sticky: bool = False,
        expires_at: float | None = None,
        policy: Any = None,
    ) -> Future[Any]:
        """`AlertManager.acknowledge`; the future holds the acks made or raises the manager's error."""
        ...

    def unacknowledge(self, keys: Iterable[str], *, who: str | None = None, policy: Any = None) -> Future[Any]:
        """`AlertManager.unacknowledge`; the future holds the acks ended."""
        ...

    def active_acks(self) -> Future[Any] | None:
        """The acks holding now per the manager, or None when no manager can answer (read the store)."""
        ...


class LoopAcks:
    """An AlertManager running on an event loop of this process (`loop()` returns it, or None if not running)."""

    def __init__(self, alerting: Any, loop: Callable[[], asyncio.AbstractEventLoop | None]) -> None:
        self.alerting = alerting
        self._loop = loop

    def acknowledge(
        self,
        keys: Iterable[str],
        comment: str,
        *,
        author: str | None = None,
        sticky: bool = False,
        expires_at: float | None = None,
        policy: Any = None,
    ) -> Future[Any]:
        targets = list(keys)

        async def run() -> list[Ack]:
            acks: list[Ack] = self.alerting.acknowledge(
                targets, comment, author=author, sticky=sticky, expires_at=expires_at, policy=policy
            )
            return acks

        return self._on_loop(run)

    def unacknowledge(self, keys: Iterable[str], *, who: str | None = None, policy: Any = None) -> Future[Any]:
        targets = list(keys)

        async def run() -> list[Ack]:
            ended: list[Ack] = self.alerting.unacknowledge(targets, who=who, policy=policy)
            return ended

        return self._on_loop(run)

    def active_acks(self) -> Future[Any] | None:
        if self.alerting is None or self._running_loop() is None:
            return None

        async def run() -> dict[str, Ack]:
            now = time.time()
            return {k: a for k, a in self.alerting.acks.items() if a.active(now)}

        return self._on_loop(run)

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        loop = self._loop()
        return loop if loop is not None and loop.is_running() and not loop.is_closed() else None

    def _on_loop(self, make: Callable[[], Coroutine[Any, Any, T]]) -> Future[T]:
        loop = self._running_loop()
        if self.alerting is None or loop is None:
            return _failed(NotAvailableError("no alerting manager running"))
        return asyncio.run_coroutine_threadsafe(make(), loop)


@dataclass(frozen=True)
class AckRequest:
    """An acknowledgement as filled in on the screen."""

    keys: tuple[str, ...]
    comment: str
    sticky: bool = False
    expires_in: float | None = None


@dataclass(frozen=True)
class MaintenanceRequest:
    """A maintenance window starting now, as filled in on the screen."""

    scope: str  # "site" or "region"
    target: str
    duration: float
    reason: str
    exclude_from_sla: bool = True


def parse_optional_duration(text: str) -> float | None:
    """`""` -> None; `"2h"`, `"90m"`, `"1h30m"`, `"45"` (seconds) -> seconds (> 0).

    Raises:
        ValueError: not a duration, or zero.
    """
    text = text.strip()
    if not text:
        return None
    seconds = parse_duration(int(text) if text.isdigit() else text)
    if seconds <= 0:
        raise ValueError("a duration must be longer than zero")
    return seconds


class ConsoleChanges:
    """The dashboard's changing actions, policy-checked, never blocking the caller.

    Args:
        policy: read-only or not (`access_policy(settings, read_only)`).
        acks: where acknowledgements are made (a `CollectorProcess`, `LoopAcks`; None: nowhere).
        alerting: an AlertManager on an event loop of this process (shorthand for `LoopAcks(alerting, loop)`).
        loop: returns the running event loop where `alerting` lives (None while not started).
        store_path: the history store (None: no maintenance windows, no acks without a manager).
        timezone: the network's time zone, recorded with new windows.
        who: the person at the keyboard (default: the login name, `SUDO_USER` under sudo).
    """

    def __init__(
        self,
        policy: AccessPolicy,
        *,
        acks: AckService | None = None,
        alerting: Any = None,
        loop: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None,
        store_path: StoreLike | None = None,
        timezone: str = "Africa/Algiers",
        who: str | None = None,
    ) -> None:
        self.policy = policy
        self.acks: AckService | None = acks if acks is not None else (
            LoopAcks(alerting, loop) if alerting is not None else None
        )
        self.store_path = store_path
        self.timezone = timezone
        self.who = who or login_name()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bibnet-console")

    @property
    def read_only(self) -> bool:
        return self.policy.read_only

    def allows(self, action: str) -> bool:
        """Whether the policy permits `action` ("ack", "unack", "maintenance.add", "maintenance.end")."""
        return self.policy.allows(action)

    def close(self) -> None:
        """Let the worker thread finish what it was given, then end it."""
        self._pool.shutdown(wait=False)

    # Acknowledgements, by the collector's AlertManager.

    def acknowledge(self, request: AckRequest) -> Future[list[Ack]]:
        """Acknowledge problems (author: `who`).

        Raises:
            ReadOnlyError: the console is read-only (raised here, before anything is sent).
        """
        self.policy.require("ack")
        expires_at = time.time() + request.expires_in if request.expires_in else None
        if self.acks is None:
            return _failed(NotAvailableError("no alerting manager running"))
        return self.acks.acknowledge(
            request.keys,
            request.comment,
            author=self.who,
            sticky=request.sticky,
            expires_at=expires_at,
            policy=self.policy,
        )

    def unacknowledge(self, keys: Iterable[str]) -> Future[list[Ack]]:
        """Remove the acks of problems.

        Raises:
            ReadOnlyError: the console is read-only.
        """
        self.policy.require("unack")
        if self.acks is None:
            return _failed(NotAvailableError("no alerting manager running"))
        return self.acks.unacknowledge(list(keys), who=self.who, policy=self.policy)

    def active_acks(self) -> Future[dict[str, Ack]]:
        """The acks holding now: the manager's (it re-reads the store every few seconds), else the store's."""
        future = self.acks.active_acks() if self.acks is not None else None
        if future is not None:
            return future
        path = self.store_path
        if path is None or not store_exists(path):
            return _done({})

        def read() -> dict[str, Ack]:
            log = AlertLog(path, readonly=True)
            try:
                return log.active_acks(time.time())
            finally:
                log.close()

        return self._pool.submit(read)

    # Reloading the collector's configuration.

    def reload_config(self) -> Future[Any]:
        """Make the collector re-read its configuration (`{"result": Reconfiguration, "inventory": ...}`).

        Raises:
            ReadOnlyError: the console is read-only.
        """
        self.policy.require("collector.reload")
        reload = getattr(self.acks, "reload_config", None)
        if reload is None:
            return _failed(NotAvailableError("no collector process to reload"))
        future: Future[Any] = reload()
        return future

    # Maintenance windows, through the store.

    def start_maintenance(self, request: MaintenanceRequest) -> Future[int]:
        """Write a one-off window from now for `request.duration` seconds; its id.

        Raises:
            ReadOnlyError: the console is read-only.
        """
        self.policy.require("maintenance.add")
        if request.scope not in ("site", "region") or request.duration <= 0:
            raise ValueError("a window needs a site or region and a duration")

        def write(store: HistoryStore) -> int:
            now = time.time()
            window = MaintenanceWindow(
                id=0,
                scope=request.scope,
                target=request.target,
                start=now,
                end=now + request.duration,
                reason=request.reason.strip(),
                exclude_from_sla=request.exclude_from_sla,
                timezone=self.timezone,
            )
            return store.add_maintenance(window, self.who, now)

        return self._with_store(write, readonly=False)

    def end_maintenance(self, window_id: int) -> Future[MaintenanceWindow]:
        """End a window now (a future one is cancelled).

        Raises:
            ReadOnlyError: the console is read-only.
        """
        self.policy.require("maintenance.end")
        return self._with_store(lambda store: store.end_maintenance(window_id, self.who, time.time()), readonly=False)

    def maintenance_windows(self) -> Future[list[MaintenanceWindow]]:
        """Windows in force now or ahead, oldest first."""
        path = self.store_path
        if path is not None and not store_exists(path):
            return _done([])
        return self._with_store(lambda store: store.maintenance_windows(since=time.time()), readonly=True)

    def _with_store(self, work: Callable[[HistoryStore], T], *, readonly: bool) -> Future[T]:
        path = self.store_path
        if path is None:
            return _failed(NotAvailableError("no history store"))

        def run() -> T:
            store = open_store(path, readonly=readonly, timezone=self.timezone)
            try:
                return work(store)
            finally:
                store.close()

        return self._pool.submit(run)


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


def _failed(exc: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(exc)
    return future
