"""What `bibnet-ops collect` does as a service: /metrics, a pid file, and reload on SIGHUP.

A reload re-reads the inventory directory and its templates on a thread (the loop keeps polling), then
applies it on the loop with `Collector.reload`. An invalid new configuration is refused: every issue
is logged as `file:line: [key] message` and the running configuration stays. Each outcome is also
written next to the pid file (`<pid file>.reload`, one JSON object) so `bibnet-ops reload` can say
what happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from bibnet_ops.inventory import ConfigError, Inventory, load_inventory

__all__ = [
    "CollectorService",
    "ServiceError",
    "collector_process",
    "pid_file_path",
    "read_pid_file",
    "service_for",
    "status_path",
]

log = logging.getLogger("bibnet_ops.collect")


class ServiceError(Exception):
    """The service cannot start as configured (metrics address taken, another collector owns the pid file)."""


def pid_file_path(configured: str | None, inventory: Inventory) -> Path | None:
    """The pid file: the option, else `[collector] pid_file` (relative to the config directory)."""
    value = configured or (inventory.settings.get("collector") or {}).get("pid_file")
    if not value:
        return None
    path = Path(str(value)).expanduser()
    if not configured and not path.is_absolute():
        path = Path(inventory.root) / path
    return path


def status_path(pid_file: Path) -> Path:
    """Where the collector writes the outcome of each reload."""
    return pid_file.with_name(pid_file.name + ".reload")


def read_pid_file(path: Path) -> int | None:
    """The process id in a pid file, None if missing, unreadable or stale (no such process, or a recycled
    pid now running something other than a bibnet-ops collector)."""
    try:
        pid = int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid > 0 and collector_process(pid) else None


def collector_process(pid: int) -> bool:
    """True when `pid` is alive and runs `bibnet-ops collect` (a recycled pid must not get our signal)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:  # no /proc (or not ours to read): alive is all we can tell
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    args = cmdline.split(b"\0")
    return b"collect" in args and any(b"bibnet" in arg for arg in args)


class CollectorService:
    """Serve /metrics, hold the pid file and reload on SIGHUP for one running collector.

    Args:
        collector: the running Collector.
        config_dir: the directory re-read on reload.
        metrics: `HOST:PORT` for /metrics, or None.
        pid_file: where to write the pid, or None.
        collector_id: the `collector` label of /metrics health series (a regional collector's id; default
            the host name).
    """

    def __init__(self, collector: Any, config_dir: Path, metrics: str | None, pid_file: Path | None,
                 collector_id: str | None = None) -> None:
        self.collector = collector
        self.collector_id = collector_id
        self.config_dir = config_dir
        self.metrics_address = metrics
        self.pid_file = pid_file
        self.metrics: Any = None
        self.reloads = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reloading: asyncio.Task[None] | None = None
        self._again = False

    def start(self) -> CollectorService:
        """Claim the pid file, start /metrics and install the SIGHUP handler (on the running loop)."""
        self._loop = asyncio.get_running_loop()
        if self.pid_file is not None:
            other = read_pid_file(self.pid_file)
            if other is not None and other != os.getpid():
                raise ServiceError(f"{self.pid_file}: another collector is running (pid {other})")
            try:
                self.pid_file.parent.mkdir(parents=True, exist_ok=True)
                self.pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
            except OSError as exc:
                raise ServiceError(f"cannot write the pid file {self.pid_file}: {exc.strerror}") from None
        if self.metrics_address:
            from bibnet_ops.metrics import MetricsAddressError, MetricsServer

            try:
                self.metrics = MetricsServer(self.collector, self.metrics_address, self.collector_id).start()
            except MetricsAddressError as exc:
                self._release()
                raise ServiceError(f"--metrics: {exc}") from None
            except OSError as exc:
                self._release()
                raise ServiceError(f"cannot serve /metrics on {self.metrics_address}: {exc.strerror or exc}") from None
        self._loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        return self

    def stop(self) -> None:
        """Stop /metrics, remove the SIGHUP handler and the pid file."""
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(signal.SIGHUP)
        if self._reloading is not None:
            self._reloading.cancel()
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        self._release()

    def _release(self) -> None:
        if self.pid_file is not None and read_pid_file(self.pid_file) == os.getpid():
            with contextlib.suppress(OSError):
                self.pid_file.unlink()
            with contextlib.suppress(OSError):
                status_path(self.pid_file).unlink()

    # Reloading.

    def request_reload(self) -> None:
        """SIGHUP: reload now, or once more after the reload under way (signals arriving meanwhile fold)."""
        if self._reloading is not None and not self._reloading.done():
            self._again = True
            return
        assert self._loop is not None
        self._reloading = self._loop.create_task(self._reload(), name="bibnet-reload")

    async def _reload(self) -> None:
        while True:
            self._again = False
            await self.reload_once()
            if not self._again:
                return

    async def reload_once(self) -> dict[str, Any]:
        """Re-read the configuration and apply it; returns the outcome written to the status file."""
        started = time.time()
        log.info("reload: reading %s", self.config_dir)
        try:
            inventory = await asyncio.to_thread(load_inventory, self.config_dir)
        except ConfigError as err:
            self.collector.reload_failed()
            errors = [str(issue) for issue in err.issues] or [str(err)]
            for line in errors:
                log.error("reload refused: %s", line)
            log.error("reload refused: %d problem%s in the new configuration; the running one stays",
                      len(errors), "" if len(errors) == 1 else "s")
            outcome: dict[str, Any] = {"ok": False, "errors": errors}
        except Exception as exc:  # an unreadable directory must not end the collector
            self.collector.reload_failed()
            log.exception("reload failed; the running configuration stays")
            outcome = {"ok": False, "errors": [f"{type(exc).__name__}: {exc}"]}
        else:
            try:
                result = self.collector.reload(inventory)
            except Exception as exc:
                self.collector.reload_failed()
                log.exception("reload failed while applying; the running configuration stays where it could")
                outcome = {"ok": False, "errors": [f"{type(exc).__name__}: {exc}"]}
            else:
                self.reloads += 1
                log.info("reloaded %s: %s", self.config_dir, result.summary())
                outcome = {"ok": True, "summary": result.summary(), "added": list(result.added),
                           "removed": list(result.removed), "changed": list(result.changed),
                           "sites_added": list(result.sites_added), "sites_removed": list(result.sites_removed)}
        outcome.update(time=started, pid=os.getpid(), reloads=self.reloads)
        self._write_status(outcome)
        return outcome

    def _write_status(self, outcome: dict[str, Any]) -> None:
        if self.pid_file is None:
            return
        path = status_path(self.pid_file)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(outcome, ensure_ascii=False) + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            log.warning("cannot write the reload status %s: %s", path, exc.strerror)


def service_for(args: argparse.Namespace, inventory: Inventory, collector: Any) -> CollectorService:
    """The service of `collect` from its options and `[collector]` settings."""
    settings = inventory.settings.get("collector") or {}
    metrics = getattr(args, "metrics", None) or settings.get("metrics")
    pid_file = pid_file_path(getattr(args, "pid_file", None), inventory)
    return CollectorService(collector, Path(inventory.root), metrics, pid_file,
                            getattr(args, "collector_id", None) or None)
