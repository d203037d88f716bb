"""Counter-to-rate arithmetic for the snmp probe: baselines, wrap-around and device reboots.

Pure functions over plain readings, so the rules (first reading, wrap, reboot, reset) are tested
without an agent. A reading carries the device's sysUpTime when the agent gave it, and the collector's
monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FIRST_READING",
    "REBOOTED",
    "RESET",
    "UPTIME_WRAP",
    "CounterReading",
    "RateStep",
    "implausible",
    "step",
    "uptime_span",
]

FIRST_READING = "first reading of the counter; rate from the next poll"
REBOOTED = "device rebooted (uptime went back), rate restarts"
RESET = "counter went back without a reboot (reset?), rate restarts"

# below this many seconds of device uptime the centisecond ticks are too coarse to time a rate
_MIN_UPTIME_SPAN = 10.0
# sysUpTime is TimeTicks, 32 bits of centiseconds: it wraps to 0 after ~497 days without a reboot
UPTIME_WRAP = 2**32 / 100


def uptime_span(previous: float, current: float, elapsed: float) -> float | None:
    """Device seconds between two sysUpTime readings `elapsed` collector seconds apart; None after a reboot.

    A lower reading is a wrap, not a reboot, when adding the wrap makes the device's span agree with ours
    (within 10 %, at least 5 s): a router up for 497 days keeps its rates and caches.
    """
    if current >= previous:
        return current - previous
    span = current + UPTIME_WRAP - previous
    return span if abs(span - elapsed) <= max(5.0, 0.1 * elapsed) else None


def implausible(increase: int, seconds: float) -> str:
    """The note for a jump faster than `max_rate` (a replaced board, a counter set by hand)."""
    return f"counter jumped by {increase} in {seconds:.0f} s, faster than max_rate; rate restarts"


@dataclass(frozen=True)
class CounterReading:
    """One observation of a counter: its value, the device uptime (s) if known, the collector clock (s)."""

    counter: int
    uptime: float | None
    clock: float


@dataclass(frozen=True)
class RateStep:
    """The outcome of comparing a reading with the previous one.

    `rate` is counts per second (None when no rate can be given yet); `note` explains a None rate or a
    wrap; `wrapped` says the counter wrapped since the last reading.
    """

    rate: float | None
    note: str = ""
    wrapped: bool = False
    increase: int = 0
    seconds: float = 0.0


def step(
    previous: CounterReading | None, current: CounterReading, bits: int, max_rate: float | None = None
) -> RateStep:
    """Compute the rate between two readings of a `bits`-wide counter.

    Args:
        previous: the baseline, or None on the first poll.
        current: this poll's reading.
        bits: counter width (32 or 64) used to undo a wrap-around.
        max_rate: counts per second above which the increase is a jump, not activity (MRTG's MaxBytes).

    Returns:
        The rate per second or a note saying why there is none; the caller stores `current` as the
        next baseline in every case.
    """
    if previous is None:
        return RateStep(None, FIRST_READING)
    device_span: float | None = None
    if previous.uptime is not None and current.uptime is not None:
        device_span = uptime_span(previous.uptime, current.uptime, current.clock - previous.clock)
        if device_span is None:
            return RateStep(None, REBOOTED)
    wrapped = False
    increase = current.counter - previous.counter
    if increase < 0:
        modulus = 1 << bits
        # a 64-bit counter never wraps in practice; without uptime a small drop is a reset, not a wrap
        plausible_wrap = bits <= 32 and (
            current.uptime is not None or previous.counter - current.counter > modulus // 2
        )
        if not plausible_wrap or previous.counter >= modulus:
            return RateStep(None, RESET)
        increase += modulus
        wrapped = True
    seconds = current.clock - previous.clock
    if device_span is not None and device_span >= _MIN_UPTIME_SPAN:
        # the device's own clock ignores how long our requests waited in queues
        seconds = device_span
    if seconds <= 0:
        return RateStep(None, "polled twice at the same instant; rate from the next poll")
    if max_rate is not None and increase / seconds > max_rate:
        return RateStep(None, implausible(increase, seconds))
    return RateStep(increase / seconds, "counter wrapped" if wrapped else "", wrapped, increase, seconds)
