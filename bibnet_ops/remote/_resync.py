"""The engine's current state as events, so a dashboard that lost some can set every check and site right again.

Each check with a result becomes a `StateChange` and each site with a status a `SiteStatusChange`, both with
`old == new`: a consumer updates its picture from them without adding lines to its feed of changes.
"""

from __future__ import annotations

from bibnet_ops.engine import EngineSnapshot
from bibnet_ops.events import SiteStatusChange, StateChange

__all__ = ["snapshot_events"]


def snapshot_events(snapshot: EngineSnapshot) -> list[object]:
    """Every known check state, then every known site status, of an engine's (or collector's) `snapshot()`."""
    events: list[object] = []
    for c in snapshot.checks.values():
        if c.status is None:
            continue
        reason = c.last.reason if c.last is not None else ""
        events.append(
            StateChange(
                check_id=c.check_id,
                site_id=c.site_id,
                time=c.since if c.since is not None else 0.0,
                old=c.status,
                new=c.status,
                hard=c.hard,
                reason=reason,
                attempt=c.attempt,
                max_attempts=c.max_attempts,
                flapping=c.flapping,
            )
        )
    for s in snapshot.sites.values():
        if s.status is None:
            continue
        events.append(
            SiteStatusChange(
                site_id=s.site_id,
                time=s.since if s.since is not None else 0.0,
                old=s.status,
                new=s.status,
                reason=s.reason,
                root_cause=s.root_cause,
            )
        )
    return events
