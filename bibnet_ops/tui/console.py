"""The dashboard's changing actions: acknowledge, remove acks, start and end maintenance — or refuse, read-only.

`ConsoleApp` is the part of the app that owns them. Forms collect what the person wants; `ConsoleChanges`
schedules the change off the screen's thread and returns a future; a worker awaits it and posts
`ChangeDone`, whose handler tells the person and refreshes what the change affects (acks, windows).
The acks shown beside problems come the same way (`AcksLoaded`), re-read every few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from textual.app import App
from textual.message import Message

from bibnet_ops.alerts import Ack, ReadOnlyError
from bibnet_ops.tui.changes import AckRequest, ConsoleChanges, MaintenanceRequest
from bibnet_ops.tui.fmt import age
from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.screens.forms import AckForm, MaintenanceForm
from bibnet_ops.tui.screens.windows import WindowsLoaded

__all__ = ["AcksLoaded", "ChangeDone", "ConsoleApp"]

# Seconds between re-reads of the acks shown (the manager itself re-reads the store every 5 s).
ACK_REFRESH = 3.0


class ChangeDone(Message):
    """A change finished: `ok`, what it was (`action`: a policy action), its result or the error text."""

    def __init__(self, action: str, ok: bool, result: Any = None, error: str = "") -> None:
        super().__init__()
        self.action = action
        self.ok = ok
        self.result = result
        self.error = error


class AcksLoaded(Message):
    """The acks holding now, by problem key."""

    def __init__(self, acks: dict[str, Ack]) -> None:
        super().__init__()
        self.acks = acks


class ConsoleApp(App[None]):
    """App base holding the console's changes, the policy and the acks shown.

    Args:
        changes: what this console may change (None: nothing; a still picture or no collector).
    """

    def __init__(self, changes: ConsoleChanges | None = None) -> None:
        super().__init__()
        self.changes = changes
        self.acks: dict[str, Ack] = {}
        self._acks_loading = False
        self._acks_read = float("-inf")

    @property
    def read_only(self) -> bool:
        """True on a read-only console (`--read-only`, `[dashboard] read_only = true`)."""
        return self.changes is not None and self.changes.read_only

    def refuse(self, action: str) -> bool:
        """Tell the person (and return True) when `action` cannot be done from this console."""
        if self.changes is None:
            self.notify(tr("note.no_changes"), severity="warning")
            return True
        if not self.changes.allows(action):
            self.notify(tr("note.read_only", reason=self.changes.policy.reason), severity="warning")
            return True
        return False

    def ack_text(self, *keys: str) -> str:
        """The ack shown for the first of `keys` acknowledged now (`✔ ack by ali: on it`), else ""."""
        for key in keys:
            ack = self.acks.get(key)
            if ack is not None:
                if ack.comment:
                    return tr("ack.by", who=ack.author, comment=ack.comment)
                return tr("ack.by_bare", who=ack.author)
        return ""

    # Acknowledgements.

    def request_ack(self, keys: list[str]) -> None:
        """Ask for a comment (sticky, expiry), then acknowledge `keys`."""
        if self.refuse("ack"):
            return
        if not keys:
            self.notify(tr("note.nothing_selected"))
            return
        self.push_screen(AckForm(keys), self._send_ack)

    def _send_ack(self, request: AckRequest | None) -> None:
        if request is None or self.changes is None:
            return
        self._start("ack", lambda changes: changes.acknowledge(request))

    def request_unack(self, keys: list[str]) -> None:
        """Remove the acks holding on `keys` (those without one are left alone)."""
        if self.refuse("unack"):
            return
        acked = [k for k in keys if k in self.acks]
        if not acked:
            self.notify(tr("note.nothing_acked"))
            return
        self._start("unack", lambda changes: changes.unacknowledge(acked))

    def refresh_acks(self, force: bool = False) -> None:
        """Re-read the acks shown, at most every ACK_REFRESH seconds unless `force`."""
        if self.changes is None or self._acks_loading:
            return
        now = time.monotonic()
        if not force and now - self._acks_read < ACK_REFRESH:
            return
        self._acks_read = now
        self._acks_loading = True
        self.run_worker(self._load_acks(self.changes.active_acks()), group="acks", exit_on_error=False)

    async def _load_acks(self, future: Future[dict[str, Ack]]) -> None:
        try:
            acks = await asyncio.wrap_future(future)
        except Exception:  # the next refresh tries again; showing stale acks beats a crash
            acks = None
        finally:
            self._acks_loading = False
        if acks is not None:
            self.post_message(AcksLoaded(acks))

    def on_acks_loaded(self, message: AcksLoaded) -> None:
        old, new = self.acks, message.acks
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        self.acks = dict(new)
        if changed:
            self.acks_changed(changed)

    def acks_changed(self, keys: set[str]) -> None:
        """Redraw what shows these problem keys (the dashboard forwards to its screens)."""

    # Maintenance.

    def request_maintenance(self, site_id: str | None) -> None:
        """Ask how long, for the site or its region, then start a maintenance window now."""
        if self.refuse("maintenance.add"):
            return
        if not site_id:
            self.notify(tr("note.no_site"))
            return
        self.push_screen(MaintenanceForm(site_id), self._send_maintenance)

    def _send_maintenance(self, request: MaintenanceRequest | None) -> None:
        if request is None:
            return
        self._start("maintenance.add", lambda changes: changes.start_maintenance(request), request)

    def end_window(self, window_id: int) -> None:
        """End a maintenance window now."""
        if self.refuse("maintenance.end"):
            return
        self._start("maintenance.end", lambda changes: changes.end_maintenance(window_id))

    def load_windows(self, target: Any) -> None:
        """Read the windows now and ahead; `target` (a screen) gets `WindowsLoaded`."""
        if self.changes is None:
            target.post_message(WindowsLoaded([], tr("note.no_changes")))
            return
        self.run_worker(self._read_windows(self.changes, target), group="windows", exit_on_error=False)

    async def _read_windows(self, changes: ConsoleChanges, target: Any) -> None:
        try:
            windows = await asyncio.wrap_future(changes.maintenance_windows())
        except Exception as exc:  # an unreadable store is shown, not fatal
            target.post_message(WindowsLoaded([], str(exc)))
            return
        target.post_message(WindowsLoaded(windows))

    # Reloading the collector's configuration.

    def request_reload(self) -> None:
        """Make the collector re-read the inventory and templates; an invalid one is refused and listed."""
        if self.refuse("collector.reload"):
            return
        self.notify(tr("note.reloading"))
        self._start("collector.reload", lambda changes: changes.reload_config())

    def config_reloaded(self, inventory: Any) -> None:
        """The collector runs a new inventory (the dashboard shows it from now on)."""

    # Running a change.

    def _start(self, action: str, make: Callable[[ConsoleChanges], Future[Any]], request: Any = None) -> None:
        if self.changes is None:
            return
        try:
            future = make(self.changes)
        except (ReadOnlyError, ValueError) as exc:
            self.post_message(ChangeDone(action, False, request, str(exc)))
            return
        self.run_worker(self._await_change(action, future, request), group="changes", exit_on_error=False)

    async def _await_change(self, action: str, future: Future[Any], request: Any) -> None:
        try:
            result = await asyncio.wrap_future(future)
        except Exception as exc:  # the person is told; nothing else depends on it
            self.post_message(ChangeDone(action, False, request, str(exc) or type(exc).__name__))
            return
        self.post_message(ChangeDone(action, True, result if request is None else (request, result)))

    def on_change_done(self, message: ChangeDone) -> None:
        if not message.ok:
            if message.action == "collector.reload":
                self.notify(tr("note.reload_refused", error=message.error), severity="error", timeout=30)
                return
            self.notify(tr("note.change_failed", error=message.error), severity="error")
            return
        action, result = message.action, message.result
        if action == "ack":
            self.notify(tr("note.acked", keys=_keys(a.key for a in result)))
            self.refresh_acks(force=True)
        elif action == "unack":
            self.notify(tr("note.unacked", keys=_keys(a.key for a in result) or "—"))
            self.refresh_acks(force=True)
        elif action == "maintenance.add":
            request, window_id = result
            target = f"{request.scope} {request.target}"
            self.notify(tr("note.maint_started", id=window_id, target=target, duration=age(request.duration)))
        elif action == "maintenance.end":
            self.notify(tr("note.maint_ended", id=result.id))
        elif action == "collector.reload":
            self.notify(tr("note.reloaded", summary=result["result"].summary()))
            self.config_reloaded(result["inventory"])
        self.change_applied(action)

    def change_applied(self, action: str) -> None:
        """A change succeeded: screens that show its effect reload (the dashboard forwards to its screens)."""


def _keys(keys: Any) -> str:
    shown = list(keys)
    return ", ".join(shown[:4]) + (f" +{len(shown) - 4}" if len(shown) > 4 else "")
