"""One check's state machine: SOFT/HARD states with retries, recovery hysteresis and flap detection.

Semantics of the `StateChange` events a `CheckState` produces:

- A check starts *assumed OK* (as Nagios/Icinga do). Its first result always yields one event: an OK
  first result gives the *initial report* `old == new == OK, hard=True`; a failing first result starts
  the SOFT attempts like any other failure.
- `hard=True` means the HARD state changed from `old` to `new` (what alerting notifies on).
  `hard=False` means only the current (SOFT) status changed while the hard state stayed put: a failure
  still spending its `retries`, a soft recovery before retries ran out, or a recovery still proving
  itself for `recover_after` results.
- Events are emitted when the current status or the hard state changes, not on every attempt; the
  attempt counter is in the snapshot.
- Flapping follows Nagios/Icinga: over the last 21 results (20 possible changes) each change weighs from
  0.75 (oldest) to 1.25 (newest); the check starts flapping at >= 50 % and stops below 25 %.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from bibnet_ops.engine._reconfigure import CheckSeed
from bibnet_ops.events import FlappingChange, StateChange
from bibnet_ops.model import CheckSpec, CheckStatus, Sample

__all__ = ["FLAP_HIGH", "FLAP_LOW", "FLAP_WINDOW", "CheckState", "flap_percent"]

FLAP_WINDOW = 21
FLAP_HIGH = 50.0
FLAP_LOW = 25.0
_LOW_WEIGHT = 0.75
_HIGH_WEIGHT = 1.25

_OK = CheckStatus.OK


def flap_percent(history: Sequence[CheckStatus], window: int = FLAP_WINDOW) -> float:
    """Weighted percentage of state changes in `history` (oldest first), newer changes weighing more.

    A history shorter than the window counts as if its missing oldest entries never changed, so a new
    check needs several changes before it can be called flapping.
    """
    n = len(history)
    if n < 2:
        return 0.0
    offset = window - n  # position of history[0] inside a full window
    span = window - 2
    total = 0.0
    for i in range(1, n):
        if history[i] != history[i - 1]:
            x = i + offset - 1  # 0 for the oldest possible change, span for the newest
            total += _LOW_WEIGHT + (_HIGH_WEIGHT - _LOW_WEIGHT) * x / span
    return total * 100.0 / (window - 1)


class CheckState:
    """The evolving state of one check, fed one Sample at a time.

    Attributes:
        status: the current status (SOFT or HARD).
        hard_status: the last HARD status.
        attempt: consecutive results agreeing with the current soft episode (1 when settled).
        since: UTC epoch seconds of the last event (change of status or hard state).
        last: the last Sample, or None before the first result.
    """

    __slots__ = (
        "attempt",
        "flap_pct",
        "flapping",
        "hard_status",
        "history",
        "last",
        "since",
        "spec",
        "status",
    )

    def __init__(self, spec: CheckSpec) -> None:
        self.spec = spec
        self.status: CheckStatus = _OK
        self.hard_status: CheckStatus = _OK
        self.attempt = 1
        self.since: float | None = None
        self.last: Sample | None = None
        self.flapping = False
        self.flap_pct = 0.0
        self.history: deque[CheckStatus] = deque(maxlen=FLAP_WINDOW)

    def restore(self, seed: CheckSeed, now: float) -> None:
        """Take the seed's state as if its last result had been seen here (no event is produced)."""
        self.status = seed.status
        self.hard_status = seed.effective_hard_status
        self.attempt = 1 if seed.status == self.hard_status else max(1, int(seed.attempt))
        self.since = seed.since
        # the seed stands for the last result, so the next one is not treated as a first (no initial report)
        self.last = Sample(self.spec.id, seed.status, seed.reason, time=seed.since if seed.since is not None else now)

    @property
    def hard(self) -> bool:
        """True when the current status is the HARD state (no retry or recovery episode under way)."""
        return self.status == self.hard_status

    @property
    def has_result(self) -> bool:
        return self.last is not None

    @property
    def max_attempts(self) -> int:
        """Results needed to settle the current episode: `retries` to fail, `recover_after` to recover."""
        if self.hard_status != _OK and self.status == _OK:
            return max(1, self.spec.recover_after)
        return max(1, self.spec.retries)

    @property
    def wants_retry(self) -> bool:
        """True while a SOFT episode is under way, so the check is re-polled at `retry_interval`."""
        return self.status != self.hard_status

    def feed(self, sample: Sample) -> list[StateChange | FlappingChange]:
        """Apply one result; return the events it causes (a FlappingChange first, then a StateChange)."""
        first = self.last is None
        self.last = sample
        s = sample.status
        events: list[StateChange | FlappingChange] = []
        flap = self._update_flapping(s, sample.time)
        if flap is not None:
            events.append(flap)
        old_status, old_hard = self.status, self.hard_status
        hard_change = False
        if old_hard == _OK:
            if s == _OK:
                self.attempt = 1
            else:
                self.attempt = 1 if old_status == _OK else self.attempt + 1
                if self.attempt >= max(1, self.spec.retries):
                    self.hard_status = s
                    hard_change = True
        elif s == _OK:
            self.attempt = self.attempt + 1 if old_status == _OK else 1
            if self.attempt >= max(1, self.spec.recover_after):
                self.hard_status = _OK
                self.attempt = 1
                hard_change = True
        else:
            self.attempt = 1
            if s != old_hard:
                self.hard_status = s
                hard_change = True
        self.status = s
        if hard_change:
            events.append(self._change(sample, old_hard, s, hard=True))
        elif first or s != old_status:
            events.append(self._change(sample, old_status, s, hard=first and s == _OK))
        return events

    def _change(self, sample: Sample, old: CheckStatus, new: CheckStatus, *, hard: bool) -> StateChange:
        self.since = sample.time
        return StateChange(
            check_id=self.spec.id,
            site_id=self.spec.site_id,
            time=sample.time,
            old=old,
            new=new,
            hard=hard,
            reason=sample.reason,
            attempt=self.attempt,
            max_attempts=self.max_attempts,
            flapping=self.flapping,
        )

    def _update_flapping(self, status: CheckStatus, now: float) -> FlappingChange | None:
        self.history.append(status)
        self.flap_pct = flap_percent(self.history)
        if not self.flapping and self.flap_pct >= FLAP_HIGH:
            self.flapping = True
        elif self.flapping and self.flap_pct < FLAP_LOW:
            self.flapping = False
        else:
            return None
        return FlappingChange(
            check_id=self.spec.id,
            site_id=self.spec.site_id,
            time=now,
            flapping=self.flapping,
            percent=round(self.flap_pct, 1),
        )
