"""The engine's current state as events, so a dashboard that lost some can set every check and site right again.

Each check with a result becomes a `StateChange` and each site with a status a `SiteStatusChange`, both with
`old == new`: a consumer updates its picture from them without adding lines to its feed of changes.
"""

from __future__ import annotations

from typing import Any

from bibnet_ops.events import SiteStatusChange, StateChange

__all__ = ["snapshot_events"]


def snapshot_events(engine: Any) -> list[object]:
    """Every known check state, then every known site status, of `engine` (an `Engine`), now."""
    events: list[object] = []
    for check_id in engine.check_ids:
        c = engine.check_state(check_id)
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
    for site_id in engine.inventory.sites:
        try:
            s = engine.site_state(site_id)
        except KeyError:  # a site the engine does not follow (no checks selected)
            continue
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
