"""Who may change things: the read-only console for ministry staff (everything visible, nothing changeable).

The dashboard asks `policy.allows(action)` to grey out a key, and every changing call goes through
`policy.require(action)`, which raises `ReadOnlyError` — so a forgotten binding cannot slip a change through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bibnet_ops.alerts._model import ReadOnlyError

__all__ = ["ACTIONS", "AccessPolicy", "access_policy"]

# Everything a console can change; a read-only console may do none of it.
ACTIONS = frozenset(
    {
        "ack",
        "unack",
        "maintenance.add",
        "maintenance.end",
        "site.edit",
        "check.run",
        "sim.fault",
        "collector.reload",
    }
)


@dataclass(frozen=True)
class AccessPolicy:
    """Whether this console may change state; `reason` says why not, for the status bar."""

    read_only: bool = False
    reason: str = ""

    def allows(self, action: str) -> bool:
        """True when `action` (one of ACTIONS, e.g. "ack") is permitted."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        return not self.read_only

    def require(self, action: str) -> None:
        """Raise ReadOnlyError unless `action` is permitted."""
        if not self.allows(action):
            raise ReadOnlyError(f"read-only console ({self.reason}): '{action}' is not allowed")


def access_policy(settings: Mapping[str, Any] | None = None, read_only: bool = False) -> AccessPolicy:
    """The policy from `--read-only` and network.toml's `[dashboard] read_only = true` (either makes it read-only).

    Args:
        settings: `Inventory.settings` (reads `settings["dashboard"]["read_only"]`).
        read_only: the command line's `--read-only` flag.
    """
    if read_only:
        return AccessPolicy(True, "--read-only")
    dashboard = (settings or {}).get("dashboard") or {}
    if isinstance(dashboard, Mapping) and dashboard.get("read_only") is True:
        return AccessPolicy(True, "[dashboard] read_only = true")
    return AccessPolicy(False)
