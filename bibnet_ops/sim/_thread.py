"""Running a Simulator on its own event loop in a background thread (dashboards, benchmarks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bibnet_ops.sim._simulator import Simulator

__all__ = ["SimulatorThread"]

T = TypeVar("T")


class SimulatorThread:
    """`with SimulatorThread(Simulator(...)) as sim:` serves the network until the block ends.

    Calls into the simulator from other threads go through `call`, which runs them on its loop.
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="bibnet-sim", daemon=True)

    def start(self) -> Simulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(timeout=120)
        return self.sim

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the simulator's loop and return its result."""
        async def runner() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result(timeout=30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
