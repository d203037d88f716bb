"""Reason and sample builders for the `snmp` probe: how values, thresholds and rates are worded.

Nothing here talks to a device: the probe's modes (in `snmp`) read values and hand them to these
helpers, which turn them into the short reasons a technician reads and into `Sample`s.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from bibnet_ops.model import CheckSpec, CheckStatus, Sample
from bibnet_ops.probes._evidence import bounded
from bibnet_ops.probes._reasons import crossed, duration
from bibnet_ops.probes._snmp_rate import RateStep
from bibnet_ops.probes._snmp_session import SnmpValue

__all__ = ["format_uptime", "row_evidence", "varbind_evidence"]

# well-known table columns, so reasons say "ifOperStatus 2" rather than a bare OID
_COLUMNS: dict[str, str] = {
    "1.3.6.1.2.1.2.2.1.2": "ifDescr",
    "1.3.6.1.2.1.2.2.1.7": "ifAdminStatus",
    "1.3.6.1.2.1.2.2.1.8": "ifOperStatus",
    "1.3.6.1.2.1.2.2.1.10": "ifInOctets",
    "1.3.6.1.2.1.2.2.1.13": "ifInDiscards",
    "1.3.6.1.2.1.2.2.1.14": "ifInErrors",
    "1.3.6.1.2.1.2.2.1.16": "ifOutOctets",
    "1.3.6.1.2.1.2.2.1.20": "ifOutErrors",
    "1.3.6.1.2.1.31.1.1.1.1": "ifName",
    "1.3.6.1.2.1.31.1.1.1.18": "ifAlias",
}
_IF_STATES = {
    1: "up",
    2: "down",
    3: "testing",
    4: "unknown",
    5: "dormant",
    6: "notPresent",
    7: "lowerLayerDown",
}
_STATUS_COLUMNS = {"1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"}
_MAX_REASON = 240
# evidence keeps this many varbinds (a walk of a 48-port switch shows its first rows) within this many characters
_EVIDENCE_ROWS = 24
_EVIDENCE_LIMIT = 2000


def format_uptime(seconds: float) -> str:
    """Render an uptime the way every probe words durations: "up 3 days", "up 2 h 5 min", "up 40 s"."""
    return f"up {duration(max(seconds, 0.0))}"


def _judge(check: CheckSpec, value: float) -> tuple[CheckStatus, str]:
    """Classify a metric with the check's thresholds and name the bound it crossed, in the check's unit."""
    status = check.thresholds.classify(value)
    note = crossed(check.thresholds, status, check.unit)
    return status, f" {note}" if note else ""


def _num(value: float) -> str:
    """Format a number without a useless ".0"."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _unit_label(check: CheckSpec, per: float) -> str:
    if check.unit:
        return check.unit
    names = {1.0: "/s", 60.0: "/min", 3600.0: "/h", 86400.0: "/day"}
    return names.get(per, f" per {_num(per)} s")


def _show(value: SnmpValue) -> str:
    text = str(value.value) if value.value is not None else value.type
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= 80 else text[:77] + "..."


def _matches(value: SnmpValue, number: float | None, expected: Any) -> bool:
    """Compare a reply with `expect`: numerically when both are numbers, else as text."""
    if isinstance(expected, bool):
        expected = int(expected)
    if isinstance(expected, int | float) and number is not None:
        return float(expected) == number
    return str(value.value) == str(expected)


def varbind_evidence(pairs: Sequence[tuple[str, SnmpValue]]) -> str:
    """The varbinds a check was judged on, one `OID = Type: value` line each, bounded (no credentials in them)."""
    lines = [f"{name} = {value.type}: {_show(value)}" for name, value in pairs[:_EVIDENCE_ROWS]]
    if len(pairs) > _EVIDENCE_ROWS:
        lines.append(f"… and {len(pairs) - _EVIDENCE_ROWS} more")
    return bounded("\n".join(lines), _EVIDENCE_LIMIT)


def row_evidence(base: str, rows: Iterable[tuple[str, str, SnmpValue]]) -> str:
    """A walked column's rows as varbinds, each named by its index and, when known, its row name."""
    return varbind_evidence(
        [(f"{base}.{index}" + (f" ({name})" if name != index else ""), value) for index, name, value in rows]
    )


def _sample(
    check: CheckSpec,
    status: CheckStatus,
    reason: str,
    value: float | None,
    values: dict[str, float],
    latency: float | None,
    evidence: str = "",
) -> Sample:
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 3] + "..."
    return Sample(check.id, status, reason, value, values, latency, time.time(), evidence)


def _rate_sample(
    check: CheckSpec, result: RateStep, per: float, values: dict[str, float], latency: float, evidence: str = ""
) -> Sample:
    """Turn one rate step into a sample: OK without value while the baseline (re)starts."""
    if result.rate is None:
        return _sample(check, CheckStatus.OK, result.note, None, values, latency, evidence)
    rate = result.rate * per
    status, suffix = _judge(check, rate)
    note = f" ({result.note})" if result.note else ""
    shown = _num(round(rate)) if abs(rate) >= 100 else _num(round(rate, 2))
    reason = f"{shown} {_unit_label(check, per)}".replace(" /", "/") + suffix + note
    return _sample(check, status, reason, rate, values, latency, evidence)


def _limit_list(items: list[str]) -> str:
    """Join problems, keeping the first few so the reason fits one screen line."""
    if len(items) <= 3:
        return "; ".join(items)
    return "; ".join(items[:3]) + f"; and {len(items) - 3} more"
