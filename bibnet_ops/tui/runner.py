"""Run the engine in a thread of the dashboard's own process, feeding an `EventBuffer` it drains (no Textual).

The shipped commands run the collector in a child process instead (`bibnet_ops.remote.CollectorProcess`):
at national scale a polling thread holds the interpreter lock long enough to delay key presses. This
in-process runner stays for small embedded uses and for `benchmarks/dashboard.py --in-process`, which
measures the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from bibnet_ops.engine import EngineSnapshot, Evidence
from bibnet_ops.engine import PollHealth as EnginePollHealth
from bibnet_ops.remote import snapshot_events
from bibnet_ops.tui.source import EventBuffer, PollHealth

__all__ = ["EngineThread", "Runnable"]

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.001


class Runnable(Protocol):
    """What the thread runs: an `Engine`, or a `Collector` (the engine with history and alerting)."""

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> EnginePollHealth: ...

    def poll_now(self, pattern: str | None = None) -> int: ...

    def snapshot(self) -> EngineSnapshot: ...

    def evidence(self, check_id: str) -> Evidence: ...


class EngineThread:
    """Owns a running engine: `start()` it, hand `buffer` to the dashboard, `stop()` it when the app exits.

    `loop` is the engine's event loop while it runs (for `asyncio.run_coroutine_threadsafe`), else None.

    Args:
        engine: an `Engine` or a `Collector`.
        limit: events buffered when the screen falls behind.
    """

    def __init__(self, engine: Runnable, limit: int = 200_000) -> None:
        self.engine = engine
        self.buffer = EventBuffer(
            limit=limit,
            health=self._health,
            poll_now=self._poll_now,
            stopped=self._stopped,
            resync=self._resync,
            evidence=engine.evidence,
        )
        self._unsubscribe = engine.subscribe(self.buffer)
        self._thread = threading.Thread(target=self._run, name="bibnet-engine", daemon=True)
        self._started = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> EngineThread:
        """Start polling in the background."""
        # A busy engine thread holds the GIL for the whole switch interval (5 ms by default); a shorter one
        # lets a key press reach the screen thread sooner when thousands of checks are being parsed.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self._thread.start()
        self._started.wait(timeout=10)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._started.set()
        try:
            loop.run_until_complete(self.engine.run())
        except BaseException as exc:  # the dashboard shows stale data rather than crash; the error is kept
            self.error = exc
            log.exception("engine stopped with an error")
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            self.loop = None
            loop.close()

    def _health(self) -> PollHealth | None:
        try:
            h = self.engine.health()
        except Exception:  # a health read must never take the screen down
            return None
        return PollHealth(h.checks_per_second, h.lag, h.last_poll_age)

    def _poll_now(self, pattern: str) -> bool:
        return bool(self.engine.poll_now(pattern))

    def _resync(self) -> None:
        """Queue every current state behind what is buffered, read on the engine's loop (its state lives there)."""
        loop = self.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to show
                loop.call_soon_threadsafe(self._queue_snapshot)

    def _queue_snapshot(self) -> None:
        for event in snapshot_events(self.engine.snapshot()):
            self.buffer(event)

    def _stopped(self) -> str | None:
        if not self._thread.is_alive() and self._started.is_set():
            return f"{type(self.error).__name__}: {self.error}" if self.error is not None else "stopped"
        return None

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the engine and wait for its thread (bounded: a stuck probe cannot keep us alive)."""
        self._unsubscribe()
        self.engine.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
