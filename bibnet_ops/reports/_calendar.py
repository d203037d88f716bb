"""Service periods: when a site is meant to be available (its opening hours, or around the clock)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bibnet_ops.accounting import Span
from bibnet_ops.model import OpeningHours

__all__ = ["DAY_NAMES", "HOURS_MODES", "local_day_bounds", "service_days", "service_spans"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_MODES = ("opening", "24x7")


def local_day_bounds(first: date, last: date, tz: str) -> Span:
    """UTC span from local midnight starting `first` to local midnight ending `last` (inclusive days)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(first, datetime.min.time(), zone).timestamp()
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).timestamp()
    return (start, end)


def _days(since: float, until: float, zone: ZoneInfo) -> list[date]:
    day = datetime.fromtimestamp(since, zone).date()
    last = datetime.fromtimestamp(until, zone).date()
    out = []
    while day <= last:
        out.append(day)
        day += timedelta(days=1)
    return out


def service_spans(hours: OpeningHours, since: float, until: float, mode: str = "opening") -> list[Span]:
    """UTC spans within [since, until) during which the site owes service.

    Args:
        hours: the site's opening hours (days, open/close in local time, holidays as YYYY-MM-DD).
        mode: "opening" for opening hours only, "24x7" for all the time.
    """
    if mode == "24x7":
        return [(since, until)] if until > since else []
    if mode != "opening":
        raise ValueError(f"unknown hours mode {mode!r} (use opening or 24x7)")
    zone = ZoneInfo(hours.timezone)
    holidays = set(hours.holidays)
    out: list[Span] = []
    for day in _days(since, until, zone):
        if DAY_NAMES[day.weekday()] not in hours.days or day.isoformat() in holidays:
            continue
        start = datetime.combine(day, hours.open, zone).timestamp()
        close_day = day + timedelta(days=1) if hours.close <= hours.open else day
        end = datetime.combine(close_day, hours.close, zone).timestamp()
        start, end = max(start, since), min(end, until)
        if start < end:
            out.append((start, end))
    return out


def service_days(hours: OpeningHours, since: float, until: float, mode: str = "opening") -> int:
    """Number of days with some service time (opening days, or calendar days for 24x7)."""
    zone = ZoneInfo(hours.timezone)
    days = {datetime.fromtimestamp(s, zone).date() for s, _ in service_spans(hours, since, until, mode)}
    if mode == "24x7":
        days = {d for d in _days(since, until - 1e-6, zone)}
    return len(days)
