"""SOFT/HARD states, recovery hysteresis and flap detection: the state machine, then the running engine."""

from __future__ import annotations

import asyncio

from test_engine_support import Recorder, network

from bibnet_ops.engine import FLAP_HIGH, CheckState, Engine, flap_percent
from bibnet_ops.events import FlappingChange, StateChange
from bibnet_ops.model import CheckSpec, CheckStatus, Sample

OK, WARN, CRIT = CheckStatus.OK, CheckStatus.WARNING, CheckStatus.CRITICAL


def _spec(retries: int = 3, recover_after: int = 2) -> CheckSpec:
    return CheckSpec(site_id="s", device_id="d", name="c", probe="http", address="http://127.0.0.1:9",
                     retries=retries, recover_after=recover_after)


def _feed(state: CheckState, *statuses: CheckStatus) -> list[StateChange]:
    out: list[StateChange] = []
    for i, status in enumerate(statuses):
        events = state.feed(Sample("s/d/c", status, reason=f"r{i}", time=float(i)))
        out += [e for e in events if isinstance(e, StateChange)]
    return out


def test_first_ok_result_is_an_initial_hard_report() -> None:
    state = CheckState(_spec())
    [change] = _feed(state, OK)
    assert (change.old, change.new, change.hard) == (OK, OK, True)
    assert _feed(state, OK, OK) == []


def test_failure_turns_hard_only_after_retries() -> None:
    state = CheckState(_spec(retries=3))
    _feed(state, OK)
    first, = _feed(state, CRIT)
    assert (first.old, first.new, first.hard, first.attempt, first.max_attempts) == (OK, CRIT, False, 1, 3)
    assert _feed(state, CRIT) == []  # attempt 2: same soft status, no event
    assert state.attempt == 2 and state.wants_retry
    hard, = _feed(state, CRIT)
    assert (hard.old, hard.new, hard.hard, hard.attempt) == (OK, CRIT, True, 3)
    assert state.hard and not state.wants_retry


def test_soft_recovery_is_not_a_hard_change() -> None:
    state = CheckState(_spec(retries=3))
    _feed(state, OK)
    changes = _feed(state, WARN, CRIT, OK)
    assert [(c.old, c.new, c.hard) for c in changes] == [(OK, WARN, False), (WARN, CRIT, False), (CRIT, OK, False)]
    assert state.hard_status == OK


def test_recovery_needs_recover_after_successes() -> None:
    state = CheckState(_spec(retries=1, recover_after=3))
    _feed(state, OK, CRIT)
    assert state.hard_status == CRIT
    soft, = _feed(state, OK)
    assert (soft.new, soft.hard, soft.max_attempts) == (OK, False, 3)
    back, = _feed(state, CRIT)  # a relapse cancels the recovery without a new hard change
    assert (back.old, back.new, back.hard) == (OK, CRIT, False)
    assert state.hard_status == CRIT
    changes = _feed(state, OK, OK, OK)
    assert [(c.old, c.new, c.hard) for c in changes] == [(CRIT, OK, False), (CRIT, OK, True)]


def test_hard_problem_changing_kind_is_a_hard_change() -> None:
    state = CheckState(_spec(retries=1))
    _feed(state, OK, CRIT)
    change, = _feed(state, WARN)
    assert (change.old, change.new, change.hard) == (CRIT, WARN, True)


def test_flap_percent_weighs_newer_changes_more() -> None:
    assert flap_percent([OK] * 21) == 0.0
    assert flap_percent([OK, CRIT] * 10 + [OK]) == 100.0
    old_changes = [OK, CRIT, OK, CRIT, OK] + [OK] * 16
    new_changes = [OK] * 16 + [OK, CRIT, OK, CRIT, OK]
    assert flap_percent(new_changes) > flap_percent(old_changes)


def test_flapping_starts_high_stops_low_and_marks_changes() -> None:
    state = CheckState(_spec(retries=1, recover_after=1))
    flaps: list[FlappingChange] = []
    changes: list[StateChange] = []
    for i in range(30):
        for event in state.feed(Sample("s/d/c", OK if i % 2 == 0 else CRIT, time=float(i))):
            if isinstance(event, FlappingChange):
                flaps.append(event)
            else:
                changes.append(event)
    assert [f.flapping for f in flaps] == [True]
    assert flaps[0].percent >= FLAP_HIGH
    assert changes[-1].flapping
    for i in range(30, 60):
        for event in state.feed(Sample("s/d/c", OK, time=float(i))):
            if isinstance(event, FlappingChange):
                flaps.append(event)
    assert [f.flapping for f in flaps] == [True, False]
    assert not state.flapping


async def test_engine_soft_then_hard_then_recovery_against_a_real_server() -> None:
    async with network({"lib": (None, ["web"])}, interval=0.1, retries=3, retry_interval=0.05,
                       recover_after=2) as net:
        engine = Engine(net.inventory, seed=1, first_spread=0.05)
        rec = Recorder()
        engine.subscribe(rec)
        task = asyncio.create_task(engine.run())
        try:
            await rec.wait_for(lambda r: any(isinstance(e, StateChange) for e in r.events))
            net.set("fail", "lib")
            await rec.wait_for(lambda r: any(e.hard and e.new == CRIT for e in r.of(StateChange)))
            changes = [c for c in rec.of(StateChange) if c.new != OK or c.old != OK]
            assert [(c.new, c.hard, c.attempt) for c in changes] == [(CRIT, False, 1), (CRIT, True, 3)]
            soft, hard = changes
            # SOFT attempts are re-polled at retry_interval (0.05 s), not at the 0.1 s interval
            assert hard.time - soft.time < 0.1 + 0.1
            net.set("ok", "lib")
            await rec.wait_for(lambda r: r.of(StateChange)[-1].new == OK and r.of(StateChange)[-1].hard)
            tail = rec.of(StateChange)[-2:]
            assert [(c.old, c.new, c.hard) for c in tail] == [(CRIT, OK, False), (CRIT, OK, True)]
            snap = engine.check_state("lib/web/http")
            assert snap.status == OK and snap.hard and snap.last is not None
        finally:
            engine.stop()
            await task
