"""The dashboards one collector process serves: the one that started it, and those attached to its socket.

`bibnet-ops serve` runs one collector for every browser tab: each tab's dashboard connects to the collector's
Unix socket (`Listener`) and becomes a `Session` with its own outbox, sender and command reader, so a tab that
stops reading never holds back the others. Only the first session (the process that started the collector)
stops it by leaving; an attached dashboard that leaves just ends its own session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from bibnet_ops.remote._outbox import Outbox, Sender
from bibnet_ops.remote._protocol import Command

__all__ = ["Listener", "Session"]

log = logging.getLogger("bibnet_ops.collector")


class Session:
    """One dashboard on the other end of `conn`.

    Args:
        conn: the socket to that dashboard.
        limit: events held for it while it does not read.
        batch_interval: seconds between batches.
        primary: the process that started the collector (its leaving stops the collector).
        stream: send it the engine's events (the starter of a served collector only needs replies).
        on_command: called on the reader thread with each command it sends.
        on_closed: called on the reader thread once when its socket closes.
        on_lost_state: called on the sender thread when a state event was dropped for it.
    """

    def __init__(
        self,
        conn: Connection,
        limit: int,
        batch_interval: float,
        *,
        primary: bool,
        stream: bool,
        on_command: Callable[[Session, Command], None],
        on_closed: Callable[[Session], None],
        on_lost_state: Callable[[Session], None],
    ) -> None:
        self.conn = conn
        self.primary = primary
        self.stream = stream
        self.outbox = Outbox(limit)
        self.sender = Sender(conn, self.outbox, batch_interval, after_send=self._after_send)
        self.resync_pending = False
        self._on_command = on_command
        self._on_closed = on_closed
        self._on_lost_state = on_lost_state
        self._reader = threading.Thread(target=self._read, name="bibnet-collector-commands", daemon=True)

    def start_sending(self) -> Session:
        self.sender.start()
        return self

    def start_reading(self) -> Session:
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                command = self.conn.recv()
            except (EOFError, OSError):
                self._on_closed(self)
                return
            except Exception:  # an undecodable message: skip it rather than drop the dashboard
                continue
            if isinstance(command, Command):
                self._on_command(self, command)

    def _after_send(self) -> None:
        if self.outbox.lost_state and not self.resync_pending:
            self.resync_pending = True
            self._on_lost_state(self)

    def end(self) -> None:
        """Stop sending and close the socket (an attached dashboard left, or asked to leave)."""
        self.outbox.close()
        self.sender.close(0.5)
        with contextlib.suppress(OSError):
            self.conn.close()


class Listener:
    """A Unix socket attached dashboards connect to; only its owner (mode 0600, in a 0700 directory) can.

    The socket is bound at once, so dashboards started before the collector is ready wait in the backlog;
    `accept_forever` takes them only once it runs.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._sock.bind(str(self.path))
        finally:
            os.umask(old)
        self._sock.listen(64)
        self._closed = False

    def accept_forever(self, welcome: Callable[[Connection], None]) -> threading.Thread:
        """Hand every new connection to `welcome` (on a thread of its own) until `close()`."""

        def run() -> None:
            while not self._closed:
                try:
                    sock, _ = self._sock.accept()
                except OSError:
                    return
                welcome(Connection(sock.detach()))

        thread = threading.Thread(target=run, name="bibnet-collector-listener", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
