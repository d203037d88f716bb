"""Faults the simulator can inject, and the TOML scenario files that script them.

A scenario file has an optional `[scenario]` table (name, description), any number of `[[fault]]`
tables (kind, site, optional device, start, duration and per-kind parameters) and an optional
`[random]` table for seeded random faults. See docs/simulator.md for the format.
"""

from __future__ import annotations

import itertools
import random
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "Fault",
    "FaultKind",
    "RandomFaults",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
]


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file and the offending entry."""


class FaultKind(StrEnum):
    """What can go wrong with a simulated site or device."""

    OUTAGE = "outage"
    SLOW = "slow"
    FLAPPING = "flapping"
    SYNC_STALLED = "sync_stalled"
    SCANNER_IDLE = "scanner_idle"
    COUNTER_WRAP = "counter_wrap"
    REBOOT = "reboot"
    GARBAGE = "garbage"
    CERT_EXPIRY = "cert_expiry"
    HUB_DOWN = "hub_down"
    # hostile HTTP servers (see _hostile and docs/hostile.md)
    TRICKLE = "trickle"
    ENDLESS_BODY = "endless_body"
    LYING_LENGTH = "lying_length"
    NOT_HTTP = "not_http"
    HUGE_HEADERS = "huge_headers"
    KEEPALIVE_CLOSE = "keepalive_close"
    ENDLESS_TOKENS = "endless_tokens"
    # hostile SNMP agents (v1/v2c)
    WRONG_REQUEST_ID = "wrong_request_id"
    OVERSIZED_VALUE = "oversized_value"


# Per-kind parameters a fault accepts, with their defaults (durations in seconds).
FAULT_PARAMS: dict[FaultKind, dict[str, Any]] = {
    FaultKind.OUTAGE: {"mode": "refuse"},
    FaultKind.SLOW: {"delay": 3.0},
    FaultKind.FLAPPING: {"period": 60.0, "mode": "refuse"},
    FaultKind.SYNC_STALLED: {"lag": 0.0},
    FaultKind.SCANNER_IDLE: {},
    FaultKind.COUNTER_WRAP: {"margin": 300},
    FaultKind.REBOOT: {"downtime": 20.0},
    FaultKind.GARBAGE: {},
    FaultKind.CERT_EXPIRY: {"days": 7.0},
    FaultKind.HUB_DOWN: {"mode": "refuse"},
    FaultKind.TRICKLE: {"rate": 1.0},
    FaultKind.ENDLESS_BODY: {},
    FaultKind.LYING_LENGTH: {"extra": 4096},
    FaultKind.NOT_HTTP: {},
    FaultKind.HUGE_HEADERS: {"count": 20_000},
    FaultKind.KEEPALIVE_CLOSE: {"idle": 0.0, "race": False},
    FaultKind.ENDLESS_TOKENS: {},
    FaultKind.WRONG_REQUEST_ID: {},
    FaultKind.OVERSIZED_VALUE: {"size": 60_000},
}
OUTAGE_MODES = ("refuse", "drop", "blackhole")
_DURATION_PARAMS = {"delay", "period", "downtime", "lag", "idle"}
# numeric parameters of the hostile kinds: (smallest, largest) accepted
_BOUNDS: dict[str, tuple[float, float]] = {
    "rate": (0.01, 1e6), "extra": (1, 1 << 30), "count": (1, 200_000), "size": (1, 65_000)}

_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
                          r"(?:(\d+(?:\.\d+)?)\s*m(?!s))?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*"
                          r"(?:(\d+(?:\.\d+)?)\s*ms)?\s*$")


def parse_duration(value: str | float | int) -> float:
    """Turn `90`, `"90s"`, `"5m"`, `"1h30m"`, `"250ms"` or `"2d"` into seconds.

    Raises:
        ValueError: the text is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    match = _DURATION_RE.match(value)
    if not match or not value.strip() or not any(match.groups()):
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h30m)")
    d, h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s + ms / 1000


@dataclass(frozen=True)
class Fault:
    """One fault on a site (or one of its devices) from `start` seconds after sim start.

    `duration` None means until cleared or until the simulator stops.
    """

    kind: FaultKind
    site: str
    device: str | None = None
    start: float = 0.0
    duration: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Any:
        """The fault's parameter, or the kind's default."""
        return self.params.get(name, FAULT_PARAMS[self.kind].get(name))

    def describe(self) -> str:
        target = f"{self.site}/{self.device}" if self.device else self.site
        return f"{self.kind.value} on {target}"


@dataclass(frozen=True)
class RandomFaults:
    """Faults drawn at random: `rate` per hour network-wide, each lasting between the two durations."""

    rate: float
    kinds: tuple[FaultKind, ...] = (
        FaultKind.OUTAGE, FaultKind.SLOW, FaultKind.FLAPPING, FaultKind.SYNC_STALLED,
        FaultKind.SCANNER_IDLE, FaultKind.GARBAGE, FaultKind.REBOOT,
    )
    min_duration: float = 60.0
    max_duration: float = 600.0
    seed: int | None = None
    sites: tuple[str, ...] = ()

    def stream(self, site_ids: list[str], seed: int | None) -> Iterator[Fault]:
        """Random faults in start order, endlessly, reproducible for a given seed."""
        if self.rate <= 0 or not site_ids:
            return
        rng = random.Random(seed if seed is not None else self.seed)
        pool = [s for s in site_ids if not self.sites or s in self.sites] or site_ids
        t = 0.0
        while True:
            t += rng.expovariate(self.rate / 3600.0)
            kind = rng.choice(self.kinds)
            duration = rng.uniform(self.min_duration, self.max_duration)
            yield Fault(kind=kind, site=rng.choice(pool), start=round(t, 3), duration=duration)

    def draw(self, site_ids: list[str], seed: int | None, horizon: float) -> list[Fault]:
        """The random faults starting within the first `horizon` seconds."""
        return list(itertools.takewhile(lambda f: f.start <= horizon, self.stream(site_ids, seed)))


@dataclass(frozen=True)
class Scenario:
    """A named list of scripted faults plus optional random ones."""

    name: str = "healthy"
    description: str = ""
    faults: tuple[Fault, ...] = ()
    random: RandomFaults | None = None


def _fault_from(entry: dict[str, Any], where: str) -> Fault:
    try:
        kind = FaultKind(entry["kind"])
    except KeyError:
        raise ScenarioError(f"{where}: missing key 'kind'") from None
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise ScenarioError(f"{where}: unknown kind {entry['kind']!r} (one of {kinds})") from None
    site = entry.get("site")
    if not isinstance(site, str) or not site:
        raise ScenarioError(f"{where}: missing key 'site'")
    known = {"kind", "site", "device", "start", "duration", *FAULT_PARAMS[kind]}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} for a {kind.value} fault")
    params: dict[str, Any] = {}
    try:
        start = parse_duration(entry.get("start", 0))
        duration = parse_duration(entry["duration"]) if "duration" in entry else None
        for name in FAULT_PARAMS[kind]:
            if name in entry:
                value = entry[name]
                params[name] = parse_duration(value) if name in _DURATION_PARAMS else value
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if "mode" in params and params["mode"] not in OUTAGE_MODES:
        raise ScenarioError(f"{where}: mode must be one of {', '.join(OUTAGE_MODES)}")
    for name, (low, high) in _BOUNDS.items():
        value = params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not low <= value <= high):
            raise ScenarioError(f"{where}: {name} must be a number from {low:g} to {high:g}")
    if "race" in params and not isinstance(params["race"], bool):
        raise ScenarioError(f"{where}: race must be true or false")
    if kind is FaultKind.FLAPPING and float(params.get("period", 60.0)) <= 0:
        raise ScenarioError(f"{where}: period must be positive")
    device = entry.get("device")
    if device is not None and not isinstance(device, str):
        raise ScenarioError(f"{where}: device must be a string")
    return Fault(kind=kind, site=site, device=device, start=start, duration=duration, params=params)


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Build a Scenario from parsed TOML, raising ScenarioError naming `source` and the entry."""
    head = data.get("scenario", {})
    faults = tuple(
        _fault_from(entry, f"{source}: fault #{i + 1}") for i, entry in enumerate(data.get("fault", []))
    )
    rnd = None
    if "random" in data:
        raw = data["random"]
        where = f"{source}: [random]"
        try:
            kinds = tuple(FaultKind(k) for k in raw.get("kinds", [])) or RandomFaults.kinds
            rnd = RandomFaults(
                rate=float(raw.get("rate", 0)),
                kinds=kinds,
                min_duration=parse_duration(raw.get("min_duration", 60)),
                max_duration=parse_duration(raw.get("max_duration", 600)),
                seed=raw.get("seed"),
                sites=tuple(raw.get("sites", ())),
            )
        except (ValueError, TypeError) as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        if rnd.min_duration > rnd.max_duration:
            raise ScenarioError(f"{where}: min_duration is larger than max_duration")
    unknown = sorted(set(data) - {"scenario", "fault", "random"})
    if unknown:
        raise ScenarioError(f"{source}: unknown table {unknown[0]!r}")
    return Scenario(name=str(head.get("name", Path(source).stem)),
                    description=str(head.get("description", "")), faults=faults, random=rnd)


def load_scenario(path: Path) -> Scenario:
    """Read a scenario TOML file.

    Raises:
        ScenarioError: the file is unreadable, not TOML, or describes an impossible fault.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return parse_scenario(data, str(path))
