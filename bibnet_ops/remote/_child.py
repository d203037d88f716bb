"""The collector process: `python -m bibnet_ops.remote._child FD PARENT_PID`, started by `CollectorProcess`.

It reads a `CollectorSpec` from the socket on FD, builds the collector (inventory, history store, alerting),
streams the engine's events back in batches and answers commands until told to stop, until the socket
closes (the dashboard went away, however it died) or until its parent process is no longer its parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from bibnet_ops.remote._outbox import Outbox, Sender
from bibnet_ops.remote._protocol import (
    STOP_DEADLINE,
    CollectorSpec,
    Command,
    Failed,
    NotAvailableError,
    Ready,
    Reply,
    Stopped,
    pack_error,
)
from bibnet_ops.remote._resync import snapshot_events

__all__ = ["main"]

log = logging.getLogger("bibnet_ops.collector")

# Seconds between poll-health figures sent to the dashboard (and parent-alive checks).
HEALTH_INTERVAL = 1.0
# Seconds alerting gets, loop latency included, to finish deliveries in flight when the dashboard exits.
ALERT_DRAIN = 1.0


class CollectorServer:
    """Runs one collector and serves one dashboard over `conn`."""

    def __init__(self, conn: Connection, spec: CollectorSpec, parent_pid: int) -> None:
        self.conn = conn
        self.spec = spec
        self.parent_pid = parent_pid
        self.outbox = Outbox(spec.queue_limit)
        self.sender = Sender(conn, self.outbox, spec.batch_interval, after_send=self._after_send)
        self.collector: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_reason = ""
        self._stopping = threading.Lock()
        self._resync_pending = False

    async def serve(self) -> int:
        """Build and run the collector; the exit status of the process."""
        from bibnet_ops.collector import Collector
        from bibnet_ops.inventory import ConfigError, load_inventory
        from bibnet_ops.store import StoreError

        self.loop = asyncio.get_running_loop()
        self.sender.start()
        spec = self.spec
        try:
            inventory = spec.inventory if spec.inventory is not None else load_inventory(spec.config_dir or ".")
            self.collector = Collector(
                inventory, store=spec.store, alerts=spec.alerts, first_spread=spec.first_spread
            )
        except (ConfigError, StoreError, OSError) as exc:
            return self._finish(Failed(str(exc)), 2)
        except Exception as exc:  # anything else still reaches the dashboard as a reason, not a silent exit
            log.exception("the collector could not start")
            return self._finish(Failed(f"{type(exc).__name__}: {exc}"), 1)
        collector = self.collector
        # Room for at least two full snapshots, or a resync could never get through whole.
        self.outbox.limit = max(self.outbox.limit, 2 * (len(collector.check_ids) + len(inventory.sites)))
        collector.subscribe(self.outbox.event)
        self.outbox.message(
            Ready(os.getpid(), len(collector.check_ids), collector.store_path, collector.alerting is not None)
        )
        for sig in (signal.SIGTERM, signal.SIGHUP):
            # A Python-level handler runs between bytecodes, not behind the loop's queue of callbacks.
            signal.signal(sig, lambda number, _frame: self.stop(f"signal {signal.Signals(number).name}"))
        threading.Thread(target=self._read_commands, name="bibnet-collector-commands", daemon=True).start()
        health = asyncio.create_task(self._health())
        try:
            await collector.run()
        except Exception as exc:
            log.exception("the collector stopped with an error")
            return self._finish(Failed(f"{type(exc).__name__}: {exc}"), 1)
        finally:
            health.cancel()
        return self._finish(Stopped(self.stop_reason or "stopped"), 0)

    def _finish(self, message: object, status: int, timeout: float = 2.0) -> int:
        self.outbox.message(message)
        self.sender.close(timeout)
        return status

    def stop(self, reason: str) -> None:
        """Commit history, drain alerting and exit; from any thread, a signal handler included.

        The work is done on a thread of its own, not on the loop: with thousands of checks the engine keeps its
        loop busy for seconds at a time, and cancelling every queued poll would take seconds more. The
        engine is left polling until the process exits; nothing it finds after this point is reported.
        """
        if not self._stopping.acquire(blocking=False):  # never blocks: a signal handler may be the caller
            return
        self.stop_reason = reason
        threading.Thread(target=self._shutdown, name="bibnet-collector-stop", daemon=True).start()

    def _shutdown(self) -> None:
        log.warning("stopping: %s", self.stop_reason)
        watchdog = threading.Timer(STOP_DEADLINE, os._exit, args=(3,))
        watchdog.daemon = True
        watchdog.start()
        # Whoever asked is leaving: what the engine finds from now on is not worth the sender's time.
        self.outbox.close()
        collector = self.collector
        if collector is not None:
            if collector.writer is not None:
                thawed = self._hold_loop()
                try:
                    collector.writer.close()  # thread-safe: later events are dropped, queued ones committed
                except Exception:
                    log.exception("history was not committed cleanly")
                finally:
                    thawed.set()
            if collector.alerting is not None and self.loop is not None:
                try:
                    asyncio.run_coroutine_threadsafe(collector.alerting.stop(drain=ALERT_DRAIN), self.loop).result(
                        ALERT_DRAIN
                    )
                except TimeoutError:
                    log.warning("alerting did not stop within %.0f s; deliveries in flight are abandoned", ALERT_DRAIN)
                except Exception:  # deliveries still in flight are abandoned, and logged
                    log.exception("alerting did not stop cleanly")
        os._exit(self._finish(Stopped(self.stop_reason), 0, timeout=0.5))

    def _hold_loop(self) -> threading.Event:
        """Hold the engine's loop at its next callback until the returned event is set (or STOP_DEADLINE passes).

        A busy engine takes half of the interpreter's time from the history writer, which then needs twice as long
        to commit what is queued; results found from now on are not reported anyway.
        """
        thawed = threading.Event()
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already: nothing to hold
                self.loop.call_soon_threadsafe(thawed.wait, STOP_DEADLINE)
        return thawed

    async def _health(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a health figure is never worth stopping for
                self.outbox.health(self.collector.health())
            if os.getppid() != self.parent_pid:
                self.stop("the dashboard process is gone")
            await asyncio.sleep(HEALTH_INTERVAL)

    # Commands, read on a thread and run on the loop (where the engine and the AlertManager live).

    def _read_commands(self) -> None:
        assert self.loop is not None
        while True:
            try:
                command = self.conn.recv()
            except (EOFError, OSError):
                self.stop("the dashboard closed the connection")
                return
            if isinstance(command, Command) and command.name == "stop":
                self.stop(command.args.get("reason", "the dashboard asked"))
                continue
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._handle, command)

    def _handle(self, command: Command) -> None:
        try:
            value = self._run(command)
        except Exception as exc:  # the dashboard shows the error to the person who asked
            if command.id:
                self.outbox.message(Reply(command.id, None, *pack_error(exc)))
            return
        if command.id:
            self.outbox.message(Reply(command.id, value))

    def _run(self, command: Command) -> Any:
        collector, args = self.collector, command.args
        if command.name == "poll":
            return collector.poll_now(args["pattern"])
        if command.name == "resync":
            self._resync()
            return None
        if command.name == "evidence":
            return collector.evidence(args["check_id"])
        alerting = collector.alerting
        if alerting is None:
            raise NotAvailableError("no alerting manager running")
        if command.name == "ack":
            return alerting.acknowledge(**args)
        if command.name == "unack":
            return alerting.unacknowledge(**args)
        if command.name == "acks":
            now = time.time()
            return {k: a for k, a in alerting.acks.items() if a.active(now)}
        raise ValueError(f"unknown command {command.name!r}")

    # Resynchronising a dashboard that lost state events.

    def _after_send(self) -> None:
        if self.outbox.lost_state and not self._resync_pending and self.loop is not None:
            self._resync_pending = True
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._resync)

    def _resync(self) -> None:
        self._resync_pending = False
        self.outbox.lost_state = False
        self.outbox.extend(snapshot_events(self.collector.snapshot()))


def main(argv: list[str]) -> int:
    fd, parent_pid = int(argv[0]), int(argv[1])
    # Warnings and errors only: the log is kept for telling why the collector stopped, and must not grow per poll.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The dashboard decides when to stop: a ctrl+c meant for it must not kill the collector first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    try:
        spec = conn.recv()
    except (EOFError, OSError):
        return 0
    if os.getppid() != parent_pid or not isinstance(spec, CollectorSpec):
        return 0
    return asyncio.run(CollectorServer(conn, spec, parent_pid).serve())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
