"""The collector process: `python -m bibnet_ops.remote._child FD PARENT_PID`, started by `CollectorProcess`.

It reads a `CollectorSpec` from the socket on FD, builds the collector (inventory, history store, alerting),
streams the engine's events back in batches and answers commands until told to stop, until the socket
closes (the dashboard went away, however it died) or until its parent process is no longer its parent.
With `spec.listen`, more dashboards may attach on that Unix socket (`bibnet-ops serve`: one per browser tab),
each served apart (`_sessions`); they come and go without stopping it.
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

from bibnet_ops.remote._protocol import (
    STOP_DEADLINE,
    CollectorSpec,
    Command,
    Failed,
    NotAvailableError,
    Ready,
    Reloaded,
    Reply,
    Stopped,
    pack_error,
)
from bibnet_ops.remote._resync import snapshot_events
from bibnet_ops.remote._sessions import Listener, Session

__all__ = ["main"]

log = logging.getLogger("bibnet_ops.collector")

# Seconds between poll-health figures sent to the dashboard (and parent-alive checks).
HEALTH_INTERVAL = 1.0
# Seconds alerting gets, loop latency included, to finish deliveries in flight when the dashboard exits.
ALERT_DRAIN = 1.0


class CollectorServer:
    """Runs one collector and serves the dashboard that started it over `conn`, and any attached to `spec.listen`."""

    def __init__(self, conn: Connection, spec: CollectorSpec, parent_pid: int) -> None:
        self.spec = spec
        self.parent_pid = parent_pid
        self.limit = spec.queue_limit
        self.primary = self._session(conn, primary=True, stream=spec.stream)
        # Every session, and those that get the engine's events: replaced whole, never mutated, so the engine's
        # subscriber reads them without a lock while the listener thread adds sessions.
        self.sessions: tuple[Session, ...] = (self.primary,)
        self.streaming: tuple[Session, ...] = (self.primary,) if spec.stream else ()
        self._sessions_lock = threading.Lock()
        self.listener = Listener(spec.listen) if spec.listen else None
        self.collector: Any = None
        self.ready: Ready | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_reason = ""
        self._stopping = threading.Lock()

    def _session(self, conn: Connection, *, primary: bool, stream: bool) -> Session:
        return Session(
            conn,
            self.spec.queue_limit,
            self.spec.batch_interval,
            primary=primary,
            stream=stream,
            on_command=self._command,
            on_closed=self._closed,
            on_lost_state=self._lost_state,
        )

    async def serve(self) -> int:
        """Build and run the collector; the exit status of the process."""
        from bibnet_ops.collector import Collector
        from bibnet_ops.inventory import ConfigError, load_inventory
        from bibnet_ops.store import StoreError

        self.loop = asyncio.get_running_loop()
        self.primary.start_sending()
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
        self.limit = max(spec.queue_limit, 2 * (len(collector.check_ids) + len(inventory.sites)))
        self.primary.outbox.limit = self.limit
        collector.subscribe(self._fan_out)
        self.ready = Ready(os.getpid(), len(collector.check_ids), collector.store_path, collector.alerting is not None)
        self.primary.outbox.message(self.ready)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            # A Python-level handler runs between bytecodes, not behind the loop's queue of callbacks.
            signal.signal(sig, lambda number, _frame: self.stop(f"signal {signal.Signals(number).name}"))
        self.primary.start_reading()
        if self.listener is not None:
            self.listener.accept_forever(self._attach)
        health = asyncio.create_task(self._health())
        try:
            await collector.run()
        except Exception as exc:
            log.exception("the collector stopped with an error")
            return self._finish(Failed(f"{type(exc).__name__}: {exc}"), 1)
        finally:
            health.cancel()
        return self._finish(Stopped(self.stop_reason or "stopped"), 0)

    def _fan_out(self, event: object) -> None:
        """The engine subscriber: queue the event for every dashboard that follows the stream."""
        for session in self.streaming:
            session.outbox.event(event)

    def _finish(self, message: object, status: int, timeout: float = 2.0) -> int:
        if self.listener is not None:
            self.listener.close()
        sessions = self.sessions
        for session in sessions:
            session.outbox.message(message)
            session.sender.begin_close()
        deadline = time.monotonic() + timeout
        for session in sessions:
            session.sender.close(max(0.0, deadline - time.monotonic()))
        return status

    # Attached dashboards (`bibnet-ops serve`: one per browser tab).

    def _attach(self, conn: Connection) -> None:
        """A dashboard connected to the listener: it gets Ready, then every current state, then the stream."""
        session = self._session(conn, primary=False, stream=True)
        session.outbox.limit = self.limit
        if self.ready is not None:
            session.outbox.message(self.ready)
        session.start_sending()
        with contextlib.suppress(RuntimeError):  # the loop is closed: the collector is stopping anyway
            assert self.loop is not None
            self.loop.call_soon_threadsafe(self._welcome, session)

    def _welcome(self, session: Session) -> None:
        # On the loop, between two engine events: the snapshot and the stream that follows it leave no gap.
        session.outbox.extend(snapshot_events(self.collector.snapshot()))
        with self._sessions_lock:
            self.sessions = (*self.sessions, session)
            self.streaming = (*self.streaming, session)
        session.start_reading()
        log.info("a dashboard attached (%d now)", len(self.sessions) - 1)

    def _detach(self, session: Session) -> None:
        with self._sessions_lock:
            self.sessions = tuple(s for s in self.sessions if s is not session)
            self.streaming = tuple(s for s in self.streaming if s is not session)
        session.end()

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
        # Whoever asked is leaving: what the engine finds from now on is not worth the senders' time.
        for session in self.sessions:
            session.outbox.close()
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
                health = self.collector.health()
                for session in self.sessions:
                    session.outbox.health(health)
            if os.getppid() != self.parent_pid:
                self.stop("the dashboard process is gone")
            await asyncio.sleep(HEALTH_INTERVAL)

    # Commands, read on each session's thread and run on the loop (where the engine and the AlertManager live).

    def _command(self, session: Session, command: Command) -> None:
        if command.name == "stop":
            if session.primary:
                self.stop(command.args.get("reason", "the dashboard asked"))
            else:
                self._detach(session)
            return
        with contextlib.suppress(RuntimeError):
            assert self.loop is not None
            self.loop.call_soon_threadsafe(self._handle, session, command)

    def _closed(self, session: Session) -> None:
        if session.primary:
            self.stop("the dashboard closed the connection")
        else:
            self._detach(session)

    def _handle(self, session: Session, command: Command) -> None:
        if command.name == "reload":
            assert self.loop is not None
            self.loop.create_task(self._reload(session, command), name="bibnet-reload")
            return
        try:
            value = self._run(session, command)
        except Exception as exc:  # the dashboard shows the error to the person who asked
            if command.id:
                session.outbox.message(Reply(command.id, None, *pack_error(exc)))
            return
        if command.id:
            session.outbox.message(Reply(command.id, value))

    def _run(self, session: Session, command: Command) -> Any:
        collector, args = self.collector, command.args
        if command.name == "poll":
            return collector.poll_now(args["pattern"])
        if command.name == "resync":
            self._resync(session)
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

    async def _reload(self, session: Session, command: Command) -> None:
        """Re-read the configuration directory and apply it; the reply is the outcome (or the config's issues)."""
        from bibnet_ops.inventory import load_inventory

        try:
            if self.spec.config_dir is None:
                raise NotAvailableError("this collector was given its inventory, not a directory to re-read")
            inventory = await asyncio.to_thread(load_inventory, self.spec.config_dir)
            result = self.collector.reload(inventory)
            log.warning("reloaded %s: %s", self.spec.config_dir, result.summary())
            # The other dashboards learn it in their stream, before any event of the new checks.
            for other in self.streaming:
                if other is not session:
                    other.outbox.extend([Reloaded(inventory, result.summary())])
        except Exception as exc:  # a ConfigError travels whole: the console lists its file:line issues
            self.collector.reload_failed()
            log.warning("reload refused: %s", exc)
            if command.id:
                session.outbox.message(Reply(command.id, None, *pack_error(exc)))
            return
        if command.id:
            session.outbox.message(Reply(command.id, {"result": result, "inventory": inventory}))

    # Resynchronising a dashboard that lost state events.

    def _lost_state(self, session: Session) -> None:
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._resync, session)

    def _resync(self, session: Session) -> None:
        session.resync_pending = False
        session.outbox.lost_state = False
        session.outbox.extend(snapshot_events(self.collector.snapshot()))


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
