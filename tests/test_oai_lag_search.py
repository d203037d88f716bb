"""The newest-datestamp search on its own: what it proves is always true, and exact within its budget."""

from __future__ import annotations

import random
from bisect import bisect_left

import pytest

from bibnet_ops.probes._oai_lag import DAY, Page, search_newest, to_day

NOW = 1_780_000_000.0


def lister(stamps: list[float], page: int, day: bool, log: list[float]):  # type: ignore[no-untyped-def]
    """An oldest-first provider over sorted `stamps` answering `from` like OAI-PMH (first page only)."""

    async def list_from(since: float) -> Page | None:
        log.append(since)
        start = bisect_left(stamps, since)
        items = stamps[start : start + page]
        if not items:
            return None
        newest = max(items)
        return Page(to_day(newest) if day else newest, False, len(items), start + page < len(stamps))

    return list_from


@pytest.mark.parametrize("seed", range(60))
async def test_random_repositories(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.choice([1, 10, 300, 5_000, 60_000])
    lag = rng.choice([5.0, 600.0, 3 * 3600.0, 2 * DAY, 9 * DAY, 29 * DAY, 45 * DAY])
    spread = rng.choice([3600.0, 2 * DAY, 30 * DAY, 400 * DAY])
    day = rng.random() < 0.25
    stamps = sorted(float(int(NOW - lag - rng.uniform(0, spread))) for _ in range(count - 1))
    stamps.append(float(int(NOW - lag)))
    if day:
        stamps = sorted(to_day(s) for s in stamps)
    floor = NOW - 30 * DAY
    budget = rng.choice([1, 2, 5, 20])
    log: list[float] = []
    page = rng.choice([10, 50, 100])
    found = await search_newest(lister(stamps, page, day, log), now=NOW, floor=floor, day=day, budget=budget)
    truth = stamps[-1]
    assert found.requests == len(log) <= budget
    if truth < (to_day(floor) if day else floor):
        # nothing in the window: found nothing, and never claims a record
        assert found.newest is None
        if found.empty_since is not None:
            assert all(s < found.empty_since for s in stamps)
        return
    if found.newest is not None:
        assert found.newest <= truth  # a proven lower bound on the newest datestamp
    if found.below is not None:
        assert truth < found.below  # nothing at or after `below`
    if found.exact:
        assert found.newest == truth
    if budget >= 20:
        assert found.exact, (count, lag, spread, day, log)


async def test_the_hint_costs_one_request_when_nothing_changed() -> None:
    stamps = [NOW - 86400 * k for k in range(100, 0, -1)]
    log: list[float] = []
    found = await search_newest(
        lister(stamps, 50, False, log), now=NOW, floor=NOW - 30 * DAY, day=False, budget=20, hint=stamps[-1]
    )
    assert found.exact and found.newest == stamps[-1] and log == [stamps[-1]]
