"""What `Engine.reconfigure` takes and returns: a seed for added checks and the diff it applied.

A reload diffs the running checks against the new inventory by check id (`site/device/check`):
added checks start polling, removed ones stop, changed ones take their new settings and keep their state,
unchanged ones keep everything. A `CheckSeed` lets a caller start an added check from a known state (a
collector taking over a dead peer's sites from the central store), so its next result continues that
state instead of starting from "assumed OK".
"""

from __future__ import annotations

from dataclasses import dataclass

from bibnet_ops.model import CheckStatus

__all__ = ["CheckSeed", "Reconfiguration"]


@dataclass(frozen=True)
class CheckSeed:
    """The last known state of a check, to start an added check from it.

    Attributes:
        status: the current status (the last result's).
        hard: True when `status` is the HARD state; False for a SOFT episode (retrying or recovering).
        attempt: results counted in the SOFT episode (1 when hard).
        since: UTC epoch seconds of the last state change (None: unknown).
        reason: the last result's reason, shown until the next result.
        hard_status: the HARD state during a SOFT episode; by default OK when `status` is a failure
            (retrying) and ignored when `hard` is True.
    """

    status: CheckStatus
    hard: bool = True
    attempt: int = 1
    since: float | None = None
    reason: str = ""
    hard_status: CheckStatus | None = None

    @property
    def effective_hard_status(self) -> CheckStatus:
        """The HARD state this seed stands for."""
        if self.hard:
            return self.status
        return self.hard_status if self.hard_status is not None else CheckStatus.OK


@dataclass(frozen=True)
class Reconfiguration:
    """What a reconfiguration changed (check ids and site ids, sorted).

    Attributes:
        added: checks that started polling.
        removed: checks that stopped and were dropped.
        changed: checks that took new settings and kept their state.
        unchanged: how many checks kept everything.
        seeded: added checks started from a `CheckSeed`.
        sites_added: sites new in the inventory.
        sites_removed: sites no longer in the inventory.
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: int = 0
    seeded: tuple[str, ...] = ()
    sites_added: tuple[str, ...] = ()
    sites_removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing was added, removed or changed."""
        return not (self.added or self.removed or self.changed or self.sites_added or self.sites_removed)

    def summary(self) -> str:
        """One line for a log: `3 checks added, 1 removed, 2 changed, 120 unchanged; 1 site added`."""
        parts = [f"{len(self.added)} check{'s' if len(self.added) != 1 else ''} added",
                 f"{len(self.removed)} removed", f"{len(self.changed)} changed", f"{self.unchanged} unchanged"]
        text = ", ".join(parts)
        sites = []
        if self.sites_added:
            sites.append(f"{len(self.sites_added)} site{'s' if len(self.sites_added) != 1 else ''} added")
        if self.sites_removed:
            sites.append(f"{len(self.sites_removed)} site{'s' if len(self.sites_removed) != 1 else ''} removed")
        return text + ("; " + ", ".join(sites) if sites else "")
