"""How states look on screen: one glyph per state (never colour alone), severity order, style names."""

from __future__ import annotations

from bibnet_ops.model import CheckStatus, SiteStatus

__all__ = [
    "CHECK_GLYPH",
    "CHECK_STYLE",
    "PENDING_GLYPH",
    "SITE_GLYPH",
    "SITE_ORDER",
    "SITE_SEVERITY",
    "SITE_STYLE",
    "worst_site_status",
]

# Shapes differ per state so the map and lists stay readable in monochrome (NO_COLOR) and for colour-blind users.
SITE_GLYPH: dict[SiteStatus, str] = {
    SiteStatus.UP: "●",
    SiteStatus.DEGRADED: "◆",
    SiteStatus.DOWN: "▼",
    SiteStatus.UNREACHABLE: "○",
    SiteStatus.MAINTENANCE: "■",
}
PENDING_GLYPH = "·"

CHECK_GLYPH: dict[CheckStatus, str] = {
    CheckStatus.OK: "✓",
    CheckStatus.WARNING: "▲",
    CheckStatus.CRITICAL: "▼",
    CheckStatus.UNKNOWN: "?",
}

# Component-class suffixes; widgets map them to theme variables in CSS ($success, $warning, $error...).
SITE_STYLE: dict[SiteStatus | None, str] = {
    SiteStatus.UP: "up",
    SiteStatus.DEGRADED: "degraded",
    SiteStatus.DOWN: "down",
    SiteStatus.UNREACHABLE: "unreachable",
    SiteStatus.MAINTENANCE: "maintenance",
    None: "pending",
}
CHECK_STYLE: dict[CheckStatus, str] = {
    CheckStatus.OK: "up",
    CheckStatus.WARNING: "degraded",
    CheckStatus.CRITICAL: "down",
    CheckStatus.UNKNOWN: "unreachable",
}

# Order of the header counts.
SITE_ORDER: tuple[SiteStatus, ...] = (
    SiteStatus.UP,
    SiteStatus.DEGRADED,
    SiteStatus.DOWN,
    SiteStatus.UNREACHABLE,
    SiteStatus.MAINTENANCE,
)

# Which marker wins when several sites share a map cell: the one a technician must see.
SITE_SEVERITY: dict[SiteStatus | None, int] = {
    None: 0,
    SiteStatus.UP: 1,
    SiteStatus.MAINTENANCE: 2,
    SiteStatus.DEGRADED: 3,
    SiteStatus.UNREACHABLE: 4,
    SiteStatus.DOWN: 5,
}


def worst_site_status(statuses: list[SiteStatus | None]) -> SiteStatus | None:
    """The most severe of several site statuses (None means not yet polled)."""
    best: SiteStatus | None = None
    for status in statuses:
        if SITE_SEVERITY[status] > SITE_SEVERITY[best]:
            best = status
    return best
