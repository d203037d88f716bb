"""Uptime arithmetic on hand-built transition sequences, against values worked out by hand."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, datetime, time
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from bibnet_ops.accounting import (
    CHECK_CATEGORY,
    SITE_CATEGORY,
    Availability,
    account,
    combine,
    coverage,
    intersect,
    measure,
    normalize,
    subtract,
    timeline,
    worst_of,
)
from bibnet_ops.model import OpeningHours
from bibnet_ops.reports._calendar import service_days, service_spans
from bibnet_ops.store import CollectorRun, MaintenanceWindow, window_intervals

ALG = ZoneInfo("Africa/Algiers")
H = 3600.0
HOURS = OpeningHours()  # Sat-Wed 08:30-17:00 Africa/Algiers


def at(day: int, hhmm: str) -> float:
    """UTC epoch of January `day` 2026 at HH:MM Algiers time (1 Jan 2026 is a Thursday, 3 Jan a Saturday)."""
    hh, mm = map(int, hhmm.split(":"))
    return datetime.combine(date(2026, 1, day), time(hh, mm), ALG).timestamp()


def always_covered(since: float, until: float) -> list[tuple[float, float]]:
    return [(since, until)]


def site_account(
    changes: list[tuple[float, str]],
    since: float,
    until: float,
    mode: str = "24x7",
    excluded: Sequence[tuple[float, float]] = (),
    covered: list[tuple[float, float]] | None = None,
    hours: OpeningHours = HOURS,
) -> Availability:
    segments = timeline(changes, since, until, SITE_CATEGORY)
    service = service_spans(hours, since, until, mode)
    return account(segments, service, normalize(excluded), covered or always_covered(since, until), since, until)


def test_interval_algebra() -> None:
    a = normalize([(0, 10), (5, 15), (20, 30), (30, 31)])
    assert a == [(0, 15), (20, 31)]
    assert intersect(a, [(10, 25)]) == [(10, 15), (20, 25)]
    assert subtract(a, [(2, 3), (14, 21)]) == [(0, 2), (3, 14), (21, 31)]
    assert measure(a) == 26


def test_service_spans_follow_opening_days_and_holidays() -> None:
    hours = OpeningHours(holidays=("2026-01-05",))  # Monday
    spans = service_spans(hours, at(1, "00:00"), at(8, "00:00"), "opening")
    # Thu 1 and Fri 2 closed; Sat 3, Sun 4, Tue 6, Wed 7 open 8.5 h; Mon 5 holiday
    assert [datetime.fromtimestamp(s, ALG).day for s, _ in spans] == [3, 4, 6, 7]
    assert measure(spans) == 4 * 8.5 * H
    assert spans[0] == (at(3, "08:30"), at(3, "17:00"))
    assert service_days(hours, at(1, "00:00"), at(8, "00:00"), "opening") == 4
    assert service_days(hours, at(1, "00:00"), at(8, "00:00"), "24x7") == 7


def test_outage_across_midnight_24x7() -> None:
    since, until = at(3, "00:00"), at(5, "00:00")
    changes = [(since - 600, "UP"), (at(3, "23:00"), "DOWN"), (at(4, "01:00"), "UP")]
    result = site_account(changes, since, until)
    assert result.down == 2 * H and result.up == 46 * H
    assert result.ratio == pytest.approx(46 / 48)
    assert [(o.start, o.end, o.charged) for o in result.outages] == [(at(3, "23:00"), at(4, "01:00"), 2 * H)]


def test_outage_across_closing_time_counts_only_opening_hours() -> None:
    # Sunday 16:00 -> Monday 10:00: 1 h before the 17:00 close, 1.5 h after the 08:30 opening
    since, until = at(4, "00:00"), at(6, "00:00")
    changes = [(since - 600, "UP"), (at(4, "16:00"), "DOWN"), (at(5, "10:00"), "UP")]
    result = site_account(changes, since, until, mode="opening")
    assert result.service == 2 * 8.5 * H
    assert result.down == 2.5 * H
    assert result.ratio == pytest.approx((17 - 2.5) / 17)
    (outage,) = result.outages
    assert outage.charged == 2.5 * H and outage.end - outage.start == 18 * H
    # the same outage over 24x7 charges its whole 18 h
    assert site_account(changes, since, until).down == 18 * H


def test_outage_inside_a_maintenance_window() -> None:
    since, until = at(3, "00:00"), at(4, "00:00")
    changes = [(since - 1, "UP"), (at(3, "10:00"), "DOWN"), (at(3, "12:00"), "UP")]
    window = MaintenanceWindow(1, "site", "s", at(3, "09:00"), at(3, "11:00"), exclude_from_sla=True)
    excluded = window_intervals(window, since, until)
    result = site_account(changes, since, until, mode="opening", excluded=excluded)
    assert result.maintenance == 2 * H
    assert result.down == 1 * H  # 11:00-12:00 only
    assert result.up == (8.5 - 2 - 1) * H
    assert result.outages[0].charged == 1 * H


def test_recurring_friday_window_in_local_time() -> None:
    window = MaintenanceWindow(
        1, "site", "s", at(1, "00:00"), None, days=("fri",), local_start="08:00", local_end="12:00"
    )
    assert window_intervals(window, at(1, "00:00"), at(15, "00:00")) == [
        (at(2, "08:00"), at(2, "12:00")),
        (at(9, "08:00"), at(9, "12:00")),
    ]


def test_collector_gap_is_unknown_not_up() -> None:
    since, until = at(3, "00:00"), at(4, "00:00")
    runs = [
        CollectorRun(1, since - 60, at(3, "10:00"), at(3, "10:00")),  # stopped cleanly at 10:00
        CollectorRun(2, at(3, "12:00"), at(3, "13:00"), None),  # killed; last heartbeat 13:00
        CollectorRun(3, at(3, "14:00"), until + 60, None),  # still running (recent heartbeat)
    ]
    covered = coverage(runs, now=until + 90)
    assert covered == [(since - 60, at(3, "10:00")), (at(3, "12:00"), at(3, "13:00")), (at(3, "14:00"), until + 90)]
    changes = [(since - 600, "UP")]
    result = site_account(changes, since, until, covered=covered)
    assert result.unknown == 3 * H
    assert result.up == 21 * H
    assert result.ratio == 1.0  # nothing down was seen; the 3 unknown hours are shown, not counted as up
    # a down state carried over the gap: only the watched part is charged
    changes = [(since - 600, "UP"), (at(3, "09:00"), "DOWN"), (at(3, "15:00"), "UP")]
    result = site_account(changes, since, until, covered=covered)
    assert result.down == (1 + 1 + 1) * H
    assert len(result.outages) == 1 and result.outages[0].charged == 3 * H


def test_no_history_at_all_is_unknown() -> None:
    since, until = at(3, "00:00"), at(4, "00:00")
    result = site_account([], since, until)
    assert result.unknown == 24 * H and result.ratio is None


def test_flapping_counts_hard_states_only() -> None:
    # a check flaps: hard CRITICAL for 5 min, hard OK for 5 min, six times in an hour
    since, until = at(3, "10:00"), at(3, "11:00")
    hard = [(since - 1, "OK")]
    for i in range(6):
        hard.append((since + i * 600, "CRITICAL"))
        hard.append((since + i * 600 + 300, "OK"))
    segments = timeline(hard, since, until, CHECK_CATEGORY)
    result = account(segments, [(since, until)], [], [(since, until)], since, until)
    assert result.down == 30 * 60 and result.up == 30 * 60
    assert len(result.outages) == 6 and all(o.charged == 300 for o in result.outages)


def test_unreachable_is_not_charged_to_the_site() -> None:
    since, until = at(3, "00:00"), at(4, "00:00")
    changes = [(since - 1, "UP"), (at(3, "06:00"), "UNREACHABLE"), (at(3, "08:00"), "DEGRADED"), (at(3, "09:00"), "UP")]
    result = site_account(changes, since, until)
    assert result.unreachable == 2 * H and result.down == 0 and result.up == 22 * H
    assert result.ratio == 1.0


def test_device_is_down_while_any_check_is_down() -> None:
    since, until = 0.0, 100.0
    a = timeline([(-1, "OK"), (10, "CRITICAL"), (30, "OK")], since, until, CHECK_CATEGORY)
    b = timeline([(-1, "OK"), (20, "CRITICAL"), (40, "OK"), (90, "UNKNOWN")], since, until, CHECK_CATEGORY)
    device = combine([a, b], since, until)
    assert device == [(0, 10, "up"), (10, 40, "down"), (40, 100, "up")]
    lonely = combine([timeline([], since, until, CHECK_CATEGORY)], since, until)
    assert lonely == [(0, 100, "unknown")]


def test_span_index_matches_intersection() -> None:
    import random

    from bibnet_ops.accounting import SpanIndex

    rng = random.Random(3)
    for _ in range(300):
        spans = normalize((a, a + rng.uniform(0, 20)) for a in (rng.uniform(0, 200) for _ in range(rng.randint(0, 12))))
        start = rng.uniform(-10, 210)
        end = start + rng.uniform(0, 80)
        assert SpanIndex(spans).overlap(start, end) == pytest.approx(measure(intersect(spans, [(start, end)])))


def test_worst_of_equals_combining_each_checks_timeline() -> None:
    # the device reports' one-sweep combination must give exactly what combine(timeline(...)) gives,
    # including changes before the period, at its bounds, simultaneous ones and repeated states
    rng = random.Random(11)
    since, until = 1000.0, 2000.0
    states = ["OK", "WARNING", "CRITICAL", "UNKNOWN", "BOGUS"]
    for _ in range(400):
        checks = []
        for _ in range(rng.randint(1, 4)):
            times = sorted(rng.choice([rng.uniform(900, 2100), float(rng.randint(9, 21) * 100)])
                           for _ in range(rng.randint(0, 8)))
            checks.append([(t, rng.choice(states), f"r{t}") for t in times])
        slow = combine([timeline([(t, s) for t, s, _ in c], since, until, CHECK_CATEGORY) for c in checks],
                       since, until)
        if len(checks) == 1:
            slow = timeline([(t, s) for t, s, _ in checks[0]], since, until, CHECK_CATEGORY)
        assert worst_of(checks, since, until, CHECK_CATEGORY) == slow, checks
    assert worst_of([[], []], since, since, CHECK_CATEGORY) == combine([[], []], since, since) == []


def test_accounting_is_the_span_index_overlap_to_the_last_bit() -> None:
    # account_on inlines SpanIndex.overlap for speed: every figure must be the very same float
    from bibnet_ops.accounting import DOWN, UNKNOWN, UP, Basis, SpanIndex, account_on

    rng = random.Random(5)
    for _ in range(200):
        watched = normalize((a, a + rng.uniform(0, 50)) for a in (rng.uniform(0, 1000) / 7 for _ in range(30)))
        cuts = sorted({0.0, 1000.0, *(round(rng.uniform(0, 1000), 3) for _ in range(rng.randint(0, 40)))})
        segments = [(a, b, rng.choice([UP, DOWN, UNKNOWN])) for a, b in pairwise(cuts)]
        index = SpanIndex(watched)
        got = account_on(segments, Basis(1.0, 2.0, 3.0, index), 1000.0)
        up, down, unknown, charged = 0.0, 0.0, 3.0, []
        for start, end, category in segments:
            seconds = index.overlap(start, end)
            if category == UP:
                up += seconds
            elif category == DOWN:
                down += seconds
                if seconds > 0:
                    charged.append((start, end, seconds))
            else:
                unknown += seconds
        assert (got.up, got.down, got.unknown) == (up, down, unknown)
        assert [(o.start, o.end, o.charged) for o in got.outages] == charged
