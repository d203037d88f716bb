"""Find a repository's newest datestamp in a bounded number of OAI-PMH list requests.

OAI-PMH lists are oldest-first, so following resumption tokens from a month ago reaches the newest
record only after every page of the month: on a large catalogue that is hundreds of requests, and a
listing cut at a page limit reports an old record as the newest (a false CRITICAL at night). This
search reads only the *first* page of each listing and moves the `from` bound instead:

1. **Widen.** List from `now - 1 h` (a day with day granularity; from the newest datestamp seen at the
   previous poll when there is one), then from 8x further back each time the repository answers
   `noRecordsMatch`, down to the window's start (or `earliestDatestamp`). A first page without a
   resumption token is the whole listing: its newest datestamp is the repository's. A listing of
   nothing down to the window's start proves that nothing changed in the window.
2. **Narrow.** A first page with a resumption token proves a record at least as new as its newest
   datestamp `lo`; the newest lies in `[lo, hi)` where `hi` is the last `from` that found nothing (or
   now). List from the middle of that interval: records there raise `lo`, nothing lowers `hi`. Each
   step halves the interval and roughly halves the records listed, so a short complete page (exact
   answer) comes within a few requests even for 100,000 records changed in the window.

The search stops after `budget` requests. It then knows bounds, not the answer: `LagBounds` says so
and the probe judges it as a range (never as if the listing were complete). Times are the server's
(from its `responseDate`), so no clock skew between the collector and the repository enters the lag.
Deleted records count: a deletion is a change a harvester must fetch too.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["DAY", "LagBounds", "Page", "search_newest", "to_day"]

DAY = 86400.0
FIRST_WINDOW = 3600.0
GROWTH = 8.0


@dataclass(frozen=True)
class Page:
    """The first page of one ListIdentifiers listing.

    Attributes:
        newest: Newest datestamp on the page (UTC epoch; a day-precision stamp is that day's start).
        newest_deleted: Whether the newest entry is a deleted record.
        count: Headers on the page.
        more: The page ends with a resumption token (the listing goes on).
    """

    newest: float
    newest_deleted: bool
    count: int
    more: bool


# `from` (UTC epoch, already on the search's grid) -> the listing's first page, or None for noRecordsMatch
ListFrom = Callable[[float], Awaitable[Page | None]]


@dataclass(frozen=True)
class LagBounds:
    """What the search proved about the newest datestamp.

    Attributes:
        newest: The newest datestamp found (exact when `exact`, else a lower bound), None if none.
        newest_deleted: The newest entry found is a deletion.
        exact: `newest` is the repository's newest datestamp (to the granularity).
        below: The newest datestamp is known to be before this time (None: only "not after now").
        empty_since: Nothing changed from this time on, and nothing at all was found (`newest` None).
        requests: List requests made.
    """

    newest: float | None
    newest_deleted: bool
    exact: bool
    below: float | None
    empty_since: float | None
    requests: int


def to_day(epoch: float) -> float:
    """Start (UTC) of the day holding `epoch`."""
    return math.floor(epoch / DAY) * DAY


def _grid(epoch: float, day: bool) -> float:
    return to_day(epoch) if day else float(math.floor(epoch))


async def search_newest(
    list_from: ListFrom,
    *,
    now: float,
    floor: float,
    day: bool,
    budget: int,
    hint: float | None = None,
) -> LagBounds:
    """Find the newest datestamp at or after `floor` with at most `budget` list requests.

    Args:
        list_from: Lists from a time (already rounded to the second or day) and returns the first page.
        now: The server's current time.
        floor: Oldest time worth listing (the window's start or the repository's earliest datestamp).
        day: The repository takes `from` as a date only (day granularity).
        budget: Most list requests to make (at least 1).
        hint: Newest datestamp seen at the previous poll, tried first.

    Returns:
        Exact newest datestamp, bounds on it, or proof that nothing changed since `floor`.
    """
    floor = _grid(floor, day)
    requests = 0
    newest: float | None = None
    deleted = False
    below: float | None = None  # nothing at or after this time
    window = DAY if day else FIRST_WINDOW
    start = _grid(hint, day) if hint is not None and floor < hint <= now else None
    # widen: the smallest window that holds anything
    while requests < budget:
        since = start if start is not None else max(_grid(now - window, day), floor)
        page = await list_from(since)
        requests += 1
        if page is None:
            below = since if below is None else min(below, since)
            if since <= floor:
                return LagBounds(None, False, False, below, floor, requests)
            window *= GROWTH
            while start is not None and window <= now - since:  # the hint was older than this window
                window *= GROWTH
            start = None
            continue
        newest, deleted = page.newest, page.newest_deleted
        if not page.more:
            return LagBounds(newest, deleted, True, below, None, requests)
        break
    if newest is None:
        return LagBounds(None, False, False, below, None, requests)
    # narrow: the newest lies in [newest, below)
    step = DAY if day else 1.0
    while requests < budget:
        top = below if below is not None else _grid(now, day) + step
        if top - newest <= step:
            return LagBounds(newest, deleted, True, below, None, requests)
        mid = _grid(newest + (top - newest) / 2, day)
        if mid <= newest:
            mid = newest + step
        page = await list_from(mid)
        requests += 1
        if page is None:
            below = mid
            continue
        if page.newest >= newest:
            newest, deleted = page.newest, page.newest_deleted
        if not page.more:
            return LagBounds(newest, deleted, True, below, None, requests)
    top = below if below is not None else _grid(now, day) + step
    return LagBounds(newest, deleted, top - newest <= step, below, None, requests)


def format_datestamp(epoch: float, day: bool) -> str:
    """An OAI-PMH datestamp (`YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ`) for a UTC epoch."""
    # a repository claiming a date outside 1970..9999 must still yield a well-formed request
    stamp = dt.datetime.fromtimestamp(min(max(epoch, 0.0), 253402300799.0), dt.UTC)
    return stamp.strftime("%Y-%m-%d") if day else stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
