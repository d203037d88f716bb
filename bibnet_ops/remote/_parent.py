"""The dashboard's side: start the collector in a child process, receive its events, send it commands.

`CollectorProcess` is an event source (`drain`, `poll_health`, `poll_now`, `collector_stopped`, `evidence`) and the
acknowledgement service of a console (`acknowledge`, `unacknowledge`, `active_acks`, all returning futures).
A reader thread receives the child's batches into a bounded buffer the screen drains on its timer; nothing
here waits for the child except `stop()`, which is bounded. If the child dies, the reader records why and
fails whatever was waiting on it; if the dashboard dies, the child sees its socket close and stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

import bibnet_ops
from bibnet_ops.engine import PollHealth, matches
from bibnet_ops.inventory import Inventory
from bibnet_ops.remote._protocol import (
    STOP_DEADLINE,
    Batch,
    CollectorSpec,
    Command,
    Failed,
    NotAvailableError,
    Ready,
    Reloaded,
    Reply,
    Stopped,
    unpack_error,
)
from bibnet_ops.store import StoreLike, StoreTarget

__all__ = ["CollectorProcess"]

CHILD_MODULE = "bibnet_ops.remote._child"


class CollectorProcess:
    """One collector running in a child process for `inventory`.

    Args:
        inventory: what the dashboard shows; the child loads the same directory (`inventory.root`).
        store: as `Collector(store=...)`: a path, None for the configured store, False for none.
        alerts: attach alerting in the child.
        first_spread: seconds over which the engine spreads its first polls.
        ship_inventory: send this very inventory to the child instead of having it read the directory
            (for inventories changed after loading, e.g. tests with shortened check intervals).
        limit: events buffered here when the screen falls behind (the child also bounds its own queue).
        queue_limit: events the child holds while this side is not reading.
        listen: a Unix socket path where other dashboards may attach to the child (see `attach`).
        stream: receive the engine's events here (False for a process that only starts the collector for
            attached dashboards, as `bibnet-ops serve` does).
    """

    def __init__(
        self,
        inventory: Inventory,
        *,
        store: StoreLike | bool | None = None,
        alerts: bool = True,
        first_spread: float = 60.0,
        ship_inventory: bool = False,
        limit: int = 200_000,
        queue_limit: int = 100_000,
        listen: str | Path | None = None,
        stream: bool = True,
    ) -> None:
        from bibnet_ops.store import resolve_store

        self.spec = CollectorSpec(
            config_dir=None if ship_inventory else Path(inventory.root),
            inventory=inventory if ship_inventory else None,
            store=store,
            alerts=alerts,
            first_spread=first_spread,
            queue_limit=queue_limit,
            listen=str(listen) if listen is not None else None,
            stream=stream,
        )
        self._checks = list(inventory.checks)
        self._attached: Path | None = None
        # Known before the child opens it, so maintenance windows and history work from the first frame.
        self.store_path: Path | StoreTarget | None = None  # a SQLite file's Path, else the target (prints redacted)
        if store is not False:
            given = None if store is None or store is True else store
            target = resolve_store(given, inventory.settings, inventory.root)
            self.store_path = target.path or target
        # Room for at least two full snapshots, or a resync could never get through whole.
        self.limit = max(limit, 2 * (len(inventory.checks) + len(inventory.sites)))
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: Ready | None = None
        self.dropped_here = 0
        self.dropped_there = 0
        self._events: deque[object] = deque()
        self._resync = False
        self._lock = threading.Lock()
        self._health: tuple[PollHealth, float] | None = None
        self._pending: dict[int, Future[Any]] = {}
        self._ids = itertools.count(1)
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._log: IO[bytes] | None = None
        self._sock: socket.socket | None = None
        self._stopped: str | None = None
        self._said: Failed | Stopped | None = None

    @classmethod
    def attach(
        cls, inventory: Inventory, path: str | Path, *, store: StoreLike | bool | None = None, limit: int = 200_000
    ) -> CollectorProcess:
        """A console on a collector another process started with `listen=path` (`bibnet-ops serve`).

        It receives the same events and sends the same commands as the process that started the collector,
        but it starts and stops nothing: `start()` connects, `stop()` leaves. Call `start()` next.
        """
        self = cls(inventory, store=store, limit=limit)
        self._attached = Path(path)
        return self

    # Starting and stopping.

    def start(self) -> CollectorProcess:
        """Start the child and return at once: it loads the inventory and opens the store on its own time."""
        if self._attached is not None:
            return self._connect(self._attached)
        mine, theirs = socket.socketpair()
        self._log = tempfile.TemporaryFile(prefix="bibnet-collector-")  # noqa: SIM115 - kept open until stop()
        env = dict(os.environ)
        package_root = str(Path(bibnet_ops.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE, str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                env=env,
                # Its own session: the terminal's signals (ctrl+c before the screen starts, SIGHUP) are ours to act on.
                start_new_session=True,
            )
        finally:
            theirs.close()
        # The reader owns a duplicate, so shutting `mine` down wakes it without closing a descriptor under it.
        self._sock = mine
        self._conn = Connection(os.dup(mine.fileno()))
        self._reader = threading.Thread(target=self._read, name="bibnet-collector-reader", daemon=True)
        self._reader.start()
        self._send(self.spec)
        return self

    def _connect(self, path: Path) -> CollectorProcess:
        """Connect to a served collector's socket; a refused or missing socket makes a stopped source, not a crash."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            self._stopped = f"cannot reach the collector at {path}: {exc.strerror or exc}"
            return self
        self._sock = sock
        self._conn = Connection(os.dup(sock.fileno()))
        self._reader = threading.Thread(target=self._read, name="bibnet-collector-reader", daemon=True)
        self._reader.start()
        return self

    @property
    def attached(self) -> bool:
        """A console on a collector another process runs (see `attach`)."""
        return self._attached is not None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        """Started and not (known to be) stopped; still true while the child is starting up."""
        return (self.proc is not None or self._conn is not None) and self._stopped is None

    def stop(self, timeout: float = STOP_DEADLINE + 1.0, on_slow: Callable[[], None] | None = None) -> None:
        """Ask the child to stop, wait at most `timeout` seconds, then end it by force; never hangs.

        The child commits the history it has queued before it exits (at most STOP_DEADLINE seconds), so the
        default wait lets it finish; `on_slow` is called once if that takes more than a second.
        """
        proc = self.proc
        if proc is None and self._conn is None:
            return
        if proc is None:
            self._send(Command(0, "stop", {"reason": "the dashboard left"}))  # leaves; the collector stays
        elif proc.poll() is None:
            self._send(Command(0, "stop", {"reason": "the dashboard exited"}))
            try:
                try:
                    proc.wait(min(1.0, timeout))
                except subprocess.TimeoutExpired:
                    if on_slow is not None:
                        on_slow()
                    proc.wait(max(0.0, timeout - 1.0))
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(1.0)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not None:
            self._reader.join(2.0)
        self._mark_stopped()
        if self._conn is not None and (self._reader is None or not self._reader.is_alive()):
            self._conn.close()
        if self._sock is not None:
            self._sock.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the child's log (its stderr), for telling a technician why it stopped."""
        if self._log is None:
            return ""
        try:
            text = os.pread(self._log.fileno(), 64_000, max(0, os.fstat(self._log.fileno()).st_size - 64_000))
        except (OSError, ValueError):  # closed by stop() meanwhile
            return ""
        return "\n".join(text.decode("utf-8", "replace").splitlines()[-lines:])

    # Receiving.

    def _read(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # an undecodable message: skip it rather than lose the collector
                continue
            if isinstance(message, Batch):
                self._receive(message)
            elif isinstance(message, Reply):
                self._answer(message)
            elif isinstance(message, Ready):
                self.ready = message
            elif isinstance(message, Failed | Stopped):
                self._said = message
        self._mark_stopped()

    def _receive(self, batch: Batch) -> None:
        with self._lock:
            self._events.extend(batch.events)
            over = len(self._events) - self.limit
            if over > 0:
                for _ in range(over):
                    self._events.popleft()
                self.dropped_here += over
                self._resync = True
            self.dropped_there = batch.dropped
            if batch.health is not None:
                self._health = (batch.health, time.monotonic())

    def _answer(self, reply: Reply) -> None:
        future = self._pending.pop(reply.id, None)
        if future is None or future.done():
            return
        if reply.error_text or reply.error is not None:
            future.set_exception(unpack_error(reply.error, reply.error_text))
        else:
            future.set_result(reply.value)

    def _mark_stopped(self) -> None:
        if self._stopped is not None:
            return
        reason = self._reason()  # may wait a moment for the exit status: not under the lock drain() takes
        with self._lock:
            if self._stopped is not None:
                return
            self._stopped = reason
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(NotAvailableError(f"the collector stopped ({self._stopped})"))

    def _reason(self) -> str:
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                code = None
        said = self._said
        if isinstance(said, Failed):
            return said.reason
        if self._attached is not None:
            return said.reason if said is not None else "the served collector closed the connection"
        if code is None:
            return "connection lost"
        if code < 0:
            return f"killed by {_signal_name(-code)}"
        if isinstance(said, Stopped):
            return said.reason
        last = next((line for line in reversed(self.log_tail().splitlines()) if line.strip()), "")
        return f"exit code {code}" + (f": {last.strip()}" if code and last else "")

    # The event source.

    def drain(self) -> list[object]:
        """Events received since the last call, oldest first (a `Reloaded` among them: another console reloaded)."""
        with self._lock:
            out = list(self._events)
            self._events.clear()
            resync, self._resync = self._resync, False
        for event in out:
            if type(event) is Reloaded:
                self._checks = list(event.inventory.checks)  # poll_now matches the reloaded checks
        if resync:
            # Some were dropped here: ask for every state again, once the screen has caught up (not before,
            # or the snapshot itself would overflow a screen that is not draining).
            self._send(Command(0, "resync"))
        return out

    def poll_health(self) -> PollHealth | None:
        """The child's latest poll-health figures, the last poll's age counted up to now; None before any."""
        with self._lock:
            got = self._health
        if got is None:
            return None
        health, received = got
        if health.last_poll_age is None:
            return health
        return dataclasses.replace(health, last_poll_age=health.last_poll_age + time.monotonic() - received)

    def poll_now(self, pattern: str) -> bool:
        """Ask the child to run the checks matching `site[/device[/check]]` now; False if none or stopped."""
        if not self.running or not any(matches(c, pattern) for c in self._checks):
            return False
        return self._send(Command(0, "poll", {"pattern": pattern}))

    def collector_stopped(self) -> str | None:
        """Why the collector is not running, or None while it starts or runs."""
        return self._stopped

    def events_dropped(self) -> int:
        """Events lost so far, in the child's queue or in this buffer, because the screen fell behind."""
        return self.dropped_here + self.dropped_there

    def evidence(self, check_id: str) -> Future[Any]:
        """The raw reply the check's last result was judged on (`engine.Evidence`), fetched from the child."""
        return self._call("evidence", {"check_id": check_id})

    # Acknowledgements, run by the child's AlertManager.

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
        """`AlertManager.acknowledge` in the child; the future holds its acks or raises its error."""
        args = {"targets": list(keys), "comment": comment, "author": author, "sticky": sticky,
                "expires_at": expires_at, "policy": policy}
        return self._call("ack", args)

    def unacknowledge(self, keys: Iterable[str], *, who: str | None = None, policy: Any = None) -> Future[Any]:
        """`AlertManager.unacknowledge` in the child."""
        return self._call("unack", {"targets": list(keys), "who": who, "policy": policy})

    def active_acks(self) -> Future[Any] | None:
        """The acks holding now per the child's manager; None when it cannot say (stopped, no alerting)."""
        if not self.running or (self.ready is not None and not self.ready.alerting):
            return None
        return self._call("acks", {})

    def reload_config(self) -> Future[Any]:
        """Make the child re-read its configuration directory and apply it (`Collector.reload`).

        The future holds `{"result": Reconfiguration, "inventory": Inventory}`, or raises the
        `ConfigError` listing the new configuration's issues (the running one stays).
        """
        future = self._call("reload", {})

        def follow(done: Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                self._checks = list(done.result()["inventory"].checks)  # poll_now matches the new checks

        future.add_done_callback(follow)
        return future

    def _call(self, name: str, args: dict[str, Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            stopped = self._stopped
            if stopped is None:
                command_id = next(self._ids)
                self._pending[command_id] = future
        if stopped is not None or self._conn is None:
            future.set_exception(NotAvailableError(f"the collector is not running ({stopped or 'not started'})"))
            return future
        if not self._send(Command(command_id, name, args)):
            with self._lock:
                self._pending.pop(command_id, None)
            if not future.done():
                future.set_exception(NotAvailableError("the collector is not reachable"))
        return future

    def _send(self, message: object) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            with self._send_lock:
                conn.send(message)
        except (OSError, ValueError):
            return False
        return True


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
