"""The accounted entities of a report: sites (site/region rows), devices (device/kind rows) or checks.

A device's timeline comes from the store's device spans when it keeps them (one row per device outage),
else from its checks' hard transitions; both give the same figures to the last bit (tests/test_device_spans.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

from bibnet_ops.accounting import (
    CHECK_CATEGORY,
    SITE_CATEGORY,
    UNKNOWN,
    UP,
    Availability,
    Segment,
    timeline,
    worst_of,
)
from bibnet_ops.inventory._model import Inventory
from bibnet_ops.model import CheckSpec, Site
from bibnet_ops.store import DeviceSpans, HistoryStore

__all__ = ["Unit", "account_units"]


@dataclass
class Unit:
    """One accounted entity (a site, a device or a check) with what the rows need from it."""

    key: str
    name: str
    site: Site
    kind: str
    checks: list[CheckSpec]
    figures: Availability
    reasons: dict[float, str] = field(default_factory=dict)


def account_units(
    store: HistoryStore,
    inventory: Inventory,
    sites: list[Site],
    kinds: dict[str, str],
    by: str,
    since: float,
    horizon: float,
    accounted: Callable[[list[Segment], Site], Availability],
) -> list[Unit]:
    """Account each site (site/region rows), device (device/kind rows) or check (check rows)."""
    units: list[Unit] = []
    if by in ("site", "region"):
        changes: dict[str, list[tuple[float, str]]] = defaultdict(list)
        reasons: dict[str, dict[float, str]] = defaultdict(dict)
        for tr in store.site_transitions(since, horizon, [s.id for s in sites]):
            changes[tr.site_id].append((tr.time, tr.new))
            reasons[tr.site_id][max(tr.time, since)] = tr.reason
        by_site: dict[str, list[CheckSpec]] = defaultdict(list)
        for check in inventory.checks:  # one pass: Inventory.checks_of scans every check per call
            by_site[check.site_id].append(check)
        for site in sites:
            segments = timeline(changes[site.id], since, horizon, SITE_CATEGORY)
            units.append(
                Unit(
                    site.id,
                    site.name_fr,
                    site,
                    site.kind,
                    by_site[site.id],
                    accounted(segments, site),
                    reasons[site.id],
                )
            )
        return units
    devices: dict[str, list[CheckSpec]] = defaultdict(list)
    for check in inventory.checks:
        devices[check.device_key if by != "check" else check.id].append(check)
    spans = store.device_spans(since, horizon) if by != "check" else None
    from_spans = {key for key, checks in devices.items() if spans is not None and _spans_cover(spans, key, checks)}
    rest = [c.id for key, checks in devices.items() if key not in from_spans for c in checks]
    check_changes = store.hard_changes(since, horizon, rest) if rest else {}
    for key, checks in sorted(devices.items()):
        site = inventory.sites[checks[0].site_id]
        if spans is not None and key in from_spans:
            device_spans = spans.spans.get(key, [])
            if key in spans.known:
                segments = _span_segments(device_spans, since, horizon)
            else:  # none of its checks ever had a hard state
                segments = [(since, horizon, UNKNOWN)] if horizon > since else []
            figures = accounted(segments, site)
            started_by = _span_reasons(store, device_spans, figures, checks, since)
        else:
            lines = [check_changes.get(c.id, []) for c in checks]
            figures = accounted(worst_of(lines, since, horizon, CHECK_CATEGORY), site)
            started_by = {o.start: _reason_at(lines, o.start, since) for o in figures.outages}
        kind = kinds.get(checks[0].template, checks[0].template)
        units.append(Unit(key, f"{site.name_fr} — {key.split('/', 1)[1]}", site, kind, checks, figures, started_by))
    return units


def _spans_cover(spans: DeviceSpans, key: str, checks: list[CheckSpec]) -> bool:
    """Whether the store's spans of a device are its timeline for these checks: they combine every check
    the store knows of the device, so one the inventory no longer has would count there but not here."""
    return key not in spans.known or spans.checks.get(key, frozenset()) <= {c.id for c in checks}


def _span_segments(
    spans: list[tuple[float, float | None, str, str | None]], since: float, until: float
) -> list[Segment]:
    """The device timeline `worst_of` gives, from the store's spans that are not up (up between them)."""
    out: list[Segment] = []
    cursor = since
    for start, stop, category, _ in spans:
        if start < since:
            start = since
        end = until if stop is None else stop
        if start > cursor:
            out.append((cursor, start, UP))
        out.append((start, end, category))
        cursor = end
    if cursor < until:
        out.append((cursor, until, UP))
    return out


def _span_reasons(
    store: HistoryStore,
    spans: list[tuple[float, float | None, str, str | None]],
    figures: Availability,
    checks: list[CheckSpec],
    since: float,
) -> dict[float, str]:
    """Each outage's reason as `_reason_at` finds it: the span's own, unless several checks changed at
    its start (the inventory order says whose) or it began before the period (the transitions say)."""
    reasons = {}
    i = 0
    for o in figures.outages:  # outages are some of the down spans, in the same order
        reason = None
        if o.start > since:
            while spans[i][0] < o.start:
                i += 1
            reason = spans[i][3]
        if reason is None:
            upto = store.hard_changes(since, o.start + 0.001, [c.id for c in checks])
            reason = _reason_at([upto.get(c.id, []) for c in checks], o.start, since)
        reasons[o.start] = reason
    return reasons


def _reason_at(lines: list[list[tuple[float, str, str]]], start: float, since: float) -> str:
    """The reason of the last change at `start` (changes before `since` count as at `since`) of the last
    check, in inventory order, that has one: the state change that started an outage."""
    for line in reversed(lines):
        i = bisect_right(line, start, key=itemgetter(0)) - 1
        if i >= 0 and max(line[i][0], since) == start:
            return line[i][2]
    return ""
