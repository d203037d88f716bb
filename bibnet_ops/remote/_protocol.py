"""What the dashboard and its collector process say to each other over their socket (pickled, both ends ours).

Parent -> child: the `CollectorSpec` first, then `Command`s. Child -> parent: `Ready` once the collector
runs (or `Failed`), `Batch`es of engine events every ~0.1 s, `Reply`s to commands, and `Stopped` last.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bibnet_ops.engine import PollHealth
from bibnet_ops.inventory import Inventory
from bibnet_ops.store import StoreLike

__all__ = [
    "STOP_DEADLINE",
    "Batch",
    "CollectorSpec",
    "Command",
    "Failed",
    "NotAvailableError",
    "Ready",
    "Reloaded",
    "Reply",
    "Stopped",
    "pack_error",
    "unpack_error",
]


STOP_DEADLINE = 8.0
"""Seconds the collector process takes at most to commit its history and exit once told to stop."""


class NotAvailableError(RuntimeError):
    """The console has no alerting manager, no history store or no running collector for this change."""


@dataclass(frozen=True)
class CollectorSpec:
    """How to build the collector in the child: the same inventory and options the dashboard got.

    Args:
        config_dir: the inventory directory the child loads (ignored when `inventory` is given).
        inventory: an inventory to use as is (pickled across; for inventories not read from a directory).
        store: as `Collector(store=...)`: a path, URL or StoreTarget, None for the configured store, False for none.
        alerts: attach alerting.
        first_spread: seconds over which the engine spreads its first polls.
        queue_limit: events held for a dashboard that does not read (the oldest are dropped beyond it).
        batch_interval: seconds between batches of events.
        listen: a Unix socket path more dashboards may attach to (`bibnet-ops serve`); None: none.
        stream: send the engine's events to the process that started the collector (False when it only
            serves attached dashboards).
    """

    config_dir: Path | None = None
    inventory: Inventory | None = None
    store: StoreLike | bool | None = None
    alerts: bool = True
    first_spread: float = 60.0
    queue_limit: int = 100_000
    batch_interval: float = 0.1
    listen: str | None = None
    stream: bool = True


@dataclass(frozen=True)
class Command:
    """Something the dashboard asks of the collector; `id` pairs it with its `Reply` (0: no reply wanted)."""

    id: int
    name: str  # "poll", "ack", "unack", "acks", "evidence", "resync", "reload" or "stop"
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ready:
    """The collector is polling: its process id, how many checks, the store it writes, whether it alerts."""

    pid: int
    checks: int
    store: StoreLike | None
    alerting: bool


@dataclass(frozen=True)
class Batch:
    """Engine events in emission order; `dropped` counts events lost so far because the dashboard lagged."""

    events: list[object]
    dropped: int = 0
    health: PollHealth | None = None


@dataclass(frozen=True)
class Reply:
    """The answer to a command: its value, or the error it raised (pickled apart, see `pack_error`)."""

    id: int
    value: Any = None
    error: bytes | None = None
    error_text: str = ""


@dataclass(frozen=True)
class Failed:
    """The collector could not start or crashed; `reason` is what a technician needs to fix it."""

    reason: str


@dataclass(frozen=True)
class Reloaded:
    """In the event stream: the collector now runs this re-read configuration (another console asked for it)."""

    inventory: Inventory
    summary: str = ""


@dataclass(frozen=True)
class Stopped:
    """The collector stopped in an orderly way (history committed, alerting drained)."""

    reason: str


def pack_error(exc: BaseException) -> tuple[bytes | None, str]:
    """The exception pickled (None if it cannot be) and its text, so the parent raises the same error."""
    text = str(exc) or type(exc).__name__
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt (custom __init__ signatures)
    except Exception:
        return None, text
    return data, text


def unpack_error(data: bytes | None, text: str) -> BaseException:
    """The exception a `Reply` carries; a RuntimeError with its text when it could not travel."""
    if data is not None:
        try:
            exc = pickle.loads(data)
        except Exception:
            exc = None
        if isinstance(exc, BaseException):
            return exc
    return RuntimeError(text)
