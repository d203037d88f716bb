"""What the alert manager tracks: problems failing now and the alerts it has opened for them."""

from __future__ import annotations

from dataclasses import dataclass, field

from bibnet_ops.inventory import Rule

__all__ = ["OpenAlert", "Problem", "Route"]


@dataclass
class Problem:
    """Something HARD-failing now: a site DOWN/DEGRADED (`site:<id>`) or a check (`site/device/check`)."""

    key: str
    site_id: str
    check_id: str | None
    state: str
    since: float
    reason: str = ""
    affected: set[str] = field(default_factory=set)


@dataclass
class Route:
    """One rule's notifications for one alert: who has been told, when last, how far escalated."""

    rule: Rule
    receivers: list[str]
    last_sent: float
    level: int = 0


@dataclass
class OpenAlert:
    """An alert that has notified someone and will send them a recovery."""

    id: int
    key: str
    site_id: str
    check_id: str | None
    state: str
    since: float
    opened_at: float
    reason: str = ""
    affected: set[str] = field(default_factory=set)
    routes: dict[int, Route] = field(default_factory=dict)
    recovering_since: float | None = None
    hold_until: float = 0.0

    @property
    def told(self) -> list[str]:
        """Every receiver notified about this alert, in the order they were first told."""
        return list(dict.fromkeys(r for route in self.routes.values() for r in route.receivers))
