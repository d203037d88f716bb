"""Helpers shared by the probes: sample construction, threshold wording, parameter coercion."""

from __future__ import annotations

import time
from typing import Any

from bibnet_ops.model import CheckSpec, CheckStatus, Sample, Thresholds
from bibnet_ops.probes import _reasons

__all__ = [
    "ParamError",
    "fmt_number",
    "judge_metric",
    "make_sample",
    "param_bool",
    "param_float",
    "param_int",
    "param_str",
]


class ParamError(ValueError):
    """A check parameter has the wrong type or value (a configuration fault, reported as UNKNOWN)."""


def make_sample(
    check: CheckSpec,
    status: CheckStatus,
    reason: str,
    *,
    value: float | None = None,
    values: dict[str, float] | None = None,
    latency: float | None = None,
    evidence: str = "",
) -> Sample:
    """Build a Sample stamped with the current UTC epoch time, keeping the reason short."""
    return Sample(
        check_id=check.id,
        status=status,
        reason=_shorten(reason),
        value=value,
        values=values or {},
        latency=latency,
        time=time.time(),
        evidence=evidence,
    )


def _shorten(reason: str, limit: int = 200) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def fmt_number(value: float) -> str:
    """Compact human number: 0.034, 12.5, 1200 (see `_reasons.number`)."""
    return _reasons.number(value)


def judge_metric(thresholds: Thresholds, value: float, label: str, unit: str = "") -> tuple[CheckStatus, str]:
    """Classify a value and say which bound it crossed, e.g. "reply in 2.5 s (warning above 2 s)".

    The wording is `_reasons.judge`'s, shared by every probe.
    """
    return _reasons.judge(thresholds, value, label, unit)


def param_str(params: dict[str, Any], name: str, default: str = "") -> str:
    """Read a string parameter."""
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ParamError(f"parameter {name} must be text, not {type(value).__name__}")
    return value


def param_int(params: dict[str, Any], name: str, default: int, minimum: int | None = None) -> int:
    """Read an integer parameter (booleans refused)."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ParamError(f"parameter {name} must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise ParamError(f"parameter {name} must be at least {minimum}, not {value}")
    return value


def param_float(params: dict[str, Any], name: str, default: float, minimum: float | None = None) -> float:
    """Read a numeric parameter."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ParamError(f"parameter {name} must be a number, not {value!r}") from None
    if minimum is not None and value < minimum:
        raise ParamError(f"parameter {name} must be at least {minimum}, not {value}")
    return float(value)


def param_bool(params: dict[str, Any], name: str, default: bool) -> bool:
    """Read a boolean parameter; accepts true/false, yes/no, 1/0 as text."""
    value = params.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "0", "off"):
        return False
    if isinstance(value, int):
        return bool(value)
    raise ParamError(f"parameter {name} must be true or false, not {value!r}")
