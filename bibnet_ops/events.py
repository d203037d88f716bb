"""Events the engine emits to its subscribers (store, alerts, screens, exporters).

The engine knows nothing of who listens: subscribers receive these plain objects, in order, and
must not block (hand heavy work to a queue or a thread).
"""

from __future__ import annotations

from dataclasses import dataclass

from bibnet_ops.model import CheckStatus, Sample, SiteStatus

__all__ = ["Event", "FlappingChange", "Sample", "SiteStatusChange", "StateChange"]


@dataclass(frozen=True)
class StateChange:
    """A check changed state. `hard` is False while retries are still being spent (a SOFT state)."""

    check_id: str
    site_id: str
    time: float
    old: CheckStatus
    new: CheckStatus
    hard: bool
    reason: str = ""
    attempt: int = 1
    max_attempts: int = 1
    flapping: bool = False


@dataclass(frozen=True)
class SiteStatusChange:
    """A site's derived status changed.

    For a root cause going DOWN, `affected` lists the sites behind it that are now UNREACHABLE, so one
    event (and one alert) covers them all; for an UNREACHABLE site, `root_cause` names the site to blame.
    """

    site_id: str
    time: float
    old: SiteStatus
    new: SiteStatus
    reason: str = ""
    root_cause: str | None = None
    affected: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlappingChange:
    """A check started or stopped flapping (state changes above/below the flap thresholds)."""

    check_id: str
    site_id: str
    time: float
    flapping: bool
    percent: float


Event = Sample | StateChange | SiteStatusChange | FlappingChange
