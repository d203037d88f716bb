"""The vocabulary every part of bibnet-ops shares: sites, devices, resolved checks, samples, states.

Everything here is plain data (frozen dataclasses and enums) so that the inventory, probes, engine,
simulator, store, alerts and screens can exchange it without importing one another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import time as dtime
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "CheckSpec",
    "CheckStatus",
    "Device",
    "OpeningHours",
    "Region",
    "Sample",
    "SecretError",
    "SecretRef",
    "Site",
    "SiteStatus",
    "Thresholds",
]


class CheckStatus(StrEnum):
    """Result of one check, in the monitoring-plugins convention (exit codes 0..3)."""

    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]

    @property
    def severity(self) -> int:
        """Ordering for "worst of": OK < UNKNOWN < WARNING < CRITICAL."""
        return _SEVERITY[self]


_EXIT_CODES = {CheckStatus.OK: 0, CheckStatus.WARNING: 1, CheckStatus.CRITICAL: 2, CheckStatus.UNKNOWN: 3}
_SEVERITY = {CheckStatus.OK: 0, CheckStatus.UNKNOWN: 1, CheckStatus.WARNING: 2, CheckStatus.CRITICAL: 3}


class SiteStatus(StrEnum):
    """Derived status of a whole site."""

    UP = "UP"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"
    UNREACHABLE = "UNREACHABLE"
    MAINTENANCE = "MAINTENANCE"


class SecretError(Exception):
    """A secret reference could not be resolved (missing variable or unreadable file)."""


@dataclass(frozen=True)
class SecretRef:
    """A credential given by reference (`env:NAME` or `file:PATH`), never by value.

    The reference itself is safe to print; the value only exists once `resolve()` is called, and
    `repr()`/`str()` never show it.
    """

    ref: str
    base_dir: Path | None = None

    @property
    def scheme(self) -> str:
        return self.ref.split(":", 1)[0]

    @property
    def target(self) -> str:
        return self.ref.split(":", 1)[1] if ":" in self.ref else ""

    def resolve(self) -> str:
        """Return the secret's value, raising SecretError with a clear reason if it is missing."""
        if self.scheme == "env":
            value = os.environ.get(self.target)
            if value is None:
                raise SecretError(f"environment variable {self.target} is not set")
            return value
        if self.scheme == "file":
            path = Path(self.target).expanduser()
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
        raise SecretError(f"unsupported secret reference {self.ref!r} (use env:NAME or file:PATH)")

    def __str__(self) -> str:
        return self.ref

    def redacted(self) -> str:
        """What any dump of the configuration shows: the reference, never the value."""
        return f"<secret {self.ref}>"


@dataclass(frozen=True)
class Thresholds:
    """Warning/critical bounds on a check's metric; `above` means larger values are worse."""

    warning: float | None = None
    critical: float | None = None
    direction: str = "above"

    def classify(self, value: float) -> CheckStatus:
        """Map a measured value to OK/WARNING/CRITICAL."""
        if self.direction == "below":
            if self.critical is not None and value < self.critical:
                return CheckStatus.CRITICAL
            if self.warning is not None and value < self.warning:
                return CheckStatus.WARNING
            return CheckStatus.OK
        if self.critical is not None and value > self.critical:
            return CheckStatus.CRITICAL
        if self.warning is not None and value > self.warning:
            return CheckStatus.WARNING
        return CheckStatus.OK


@dataclass(frozen=True)
class CheckSpec:
    """One resolved check: a template check applied to a device, with the device's overrides merged in.

    `id` is `site/device/check`, the same in store, CLI, screens and reports.
    `params` holds the probe's parameters (e.g. `path`, `oids`, `expect_status`); `credentials` maps a
    parameter name (e.g. `community`, `auth_key`) to a secret reference.
    """

    site_id: str
    device_id: str
    name: str
    probe: str
    address: str
    template: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, SecretRef] = field(default_factory=dict)
    interval: float = 60.0
    timeout: float = 10.0
    retries: int = 3
    retry_interval: float = 15.0
    recover_after: int = 1
    thresholds: Thresholds = field(default_factory=Thresholds)
    metric: str = ""
    unit: str = ""
    description: str = ""

    @property
    def id(self) -> str:
        return f"{self.site_id}/{self.device_id}/{self.name}"

    @property
    def device_key(self) -> str:
        return f"{self.site_id}/{self.device_id}"


@dataclass(frozen=True)
class Sample:
    """What one probe run observed. Probes return it; they never raise for a device's fault.

    `value` is the check's metric (e.g. latency in seconds, pages/hour, lag in seconds); `values`
    carries any extra figures (e.g. `{"uptime_s": 1234, "pages_total": 88812}`). `time` is UTC epoch
    seconds; `latency` is how long the probe waited for the device, in seconds.
    """

    check_id: str
    status: CheckStatus
    reason: str = ""
    value: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    latency: float | None = None
    time: float = 0.0
    # The raw reply the status was judged on (an HTTP status line, headers and body head; SNMP varbinds
    # or error status; the OAI-PMH request and error code): bounded in size and with secrets redacted.
    evidence: str = ""


@dataclass(frozen=True)
class OpeningHours:
    """Weekly opening hours in the site's local time zone (Sat-Wed 08:30-17:00 Africa/Algiers by default)."""

    days: tuple[str, ...] = ("sat", "sun", "mon", "tue", "wed")
    open: dtime = dtime(8, 30)
    close: dtime = dtime(17, 0)
    timezone: str = "Africa/Algiers"
    holidays: tuple[str, ...] = ()


@dataclass(frozen=True)
class Region:
    """A group of wilayas used for reporting and alert routing."""

    id: str
    name_fr: str
    name_ar: str = ""


@dataclass(frozen=True)
class Device:
    """A piece of equipment at a site, probed according to its check template."""

    id: str
    template: str
    address: str
    params: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    credentials: dict[str, SecretRef] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Site:
    """A library (or network point of presence) with its devices and the site it depends on."""

    id: str
    name_fr: str
    name_ar: str = ""
    wilaya: int = 0
    region: str = ""
    lat: float = 0.0
    lon: float = 0.0
    kind: str = "library"
    tags: tuple[str, ...] = ()
    parent: str | None = None
    opening_hours: OpeningHours = field(default_factory=OpeningHours)
    devices: tuple[Device, ...] = ()
    source: str = ""
