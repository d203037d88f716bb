"""The `snmp` probe: GET values, counter rates, and table walks over SNMP v2c or v3.

Parameters (`check.params`):
    version: "2c" (default) or "3".
    mode: "get" (default), "rate", "walk" or "walk_rate".
    oid / oids: the OID(s) to read; in "get" the first one is the metric.
    expect: exact value wanted ("get"), or the state every walked item must have ("walk", default 1).
    per: seconds the rate is expressed over (3600 = per hour; default 1).
    max_rate: the highest believable rate, in the same unit (per `per` seconds); a faster rise is a
        counter jump (board replaced, counter set by hand), reported without a rate (MRTG's MaxBytes).
    counter_bits: 32 or 64 (default from the value's type) for wrap-around.
    names_oid, interfaces: the name column of a table and the names to check (empty = all rows);
        `interfaces` may map a name to a label, e.g. {"ge-0/0/1" = "uplink"}.
    label: what to call the walked column in reasons (default: known IF-MIB names, else the OID).
    user, auth_protocol (SHA|SHA256|MD5|none), priv_protocol (AES|AES256|DES|none): SNMPv3.
Credentials (`check.credentials`): `community` (v2c), `auth_key` and `priv_key` (v3), by reference.

`check.timeout` bounds the whole check, every request included (a walk makes several). GETs made to
one agent in the same event-loop turn, e.g. by the checks of a device falling due together, share one
request (see `_snmp_batch`); each check still gets only its own values and errors. Walks of
named rows (`interfaces` set) walk the table once, then GET just those rows by their cached index
(see `_snmp_table`; `INDEX_MAX_AGE`, `forget_index_cache()`).

Rates keep their baseline (counter, device uptime, collector clock) per check id in module state;
`forget_baselines()` clears it and `close()` releases the SNMP engine. A sysUpTime lower than the last one
means a reboot (the rate restarts), unless it is the 32-bit TimeTicks wrap after ~497 days of uptime, told
apart by the collector's own clock (`_snmp_rate.uptime_span`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bibnet_ops.model import CheckSpec, CheckStatus, Sample, SecretError, SecretRef
from bibnet_ops.probes._snmp_batch import snmp_get
from bibnet_ops.probes._snmp_format import (
    _COLUMNS,
    _IF_STATES,
    _STATUS_COLUMNS,
    _judge,
    _limit_list,
    _matches,
    _rate_sample,
    _sample,
    _show,
    format_uptime,
    row_evidence,
    varbind_evidence,
)
from bibnet_ops.probes._snmp_rate import FIRST_READING, REBOOTED, CounterReading, RateStep, step, uptime_span
from bibnet_ops.probes._snmp_session import (
    AUTH_PROTOCOLS,
    PRIV_PROTOCOLS,
    Credentials,
    SnmpError,
    SnmpValue,
    Target,
    close_session,
    open_session,
)
from bibnet_ops.probes._snmp_table import forget_index_cache, read_rows

__all__ = [
    "INDEX_MAX_AGE",
    "RATE_MODES",
    "SYS_UPTIME",
    "close",
    "forget_baselines",
    "forget_index_cache",
    "format_uptime",
    "probe",
    "wants_second_reading",
]

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"

INDEX_MAX_AGE = 300.0
"""Seconds a device's interface name -> index map is trusted before its table is walked again."""

RATE_MODES = ("rate", "walk_rate")
"""Modes whose value is a rate between two polls, so a first poll has none."""

# a secret file is read again at most this often (a changed community is used within this many seconds)
_SECRET_FILE_TTL = 30.0
_secret_files: dict[tuple[str, Any], tuple[str, float]] = {}


class _ConfigError(Exception):
    """The check's parameters cannot work; the sample is UNKNOWN with this reason."""


_baselines: dict[str, CounterReading] = {}
_table_baselines: dict[str, tuple[float | None, float, dict[str, int]]] = {}


def forget_baselines(check_id: str | None = None) -> None:
    """Drop the stored counter baseline of one check (or of all checks)."""
    if check_id is None:
        _baselines.clear()
        _table_baselines.clear()
    else:
        _baselines.pop(check_id, None)
        _table_baselines.pop(check_id, None)


def wants_second_reading(check: CheckSpec, sample: Sample) -> bool:
    """True when the sample is a rate check's healthy poll that has no rate yet (first reading, reboot...)."""
    return (
        check.probe == "snmp"
        and str(check.params.get("mode", "get")) in RATE_MODES
        and sample.status is CheckStatus.OK
        and sample.value is None
    )


def close() -> None:
    """Release the SNMP engine and its socket; the next probe opens a new one."""
    close_session()


def _oid(text: Any) -> str:
    """Normalise an OID parameter (drop a leading dot) and reject anything not numeric."""
    oid = str(text).strip().lstrip(".")
    parts = oid.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise _ConfigError(f"invalid OID {text!r} (numeric OIDs only, e.g. 1.3.6.1.2.1.1.3.0)")
    return oid


def _target(check: CheckSpec) -> Target:
    """Parse "host[:port]" (optionally "udp:" or "snmp://" prefixed) into a Target."""
    address = check.address.strip()
    for prefix in ("snmp://", "udp://", "udp:"):
        if address.startswith(prefix):
            address = address[len(prefix) :]
    address = address.rstrip("/")
    host, port = address, 161
    if address.count(":") == 1:
        host, _, port_text = address.partition(":")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _ConfigError(f"invalid SNMP address {check.address!r} (host[:port])")
        port = int(port_text)
    if not host:
        raise _ConfigError(f"invalid SNMP address {check.address!r} (host[:port])")
    timeout = float(check.timeout) if check.timeout and check.timeout > 0 else 10.0
    return Target(host, port, timeout)


def _secret(check: CheckSpec, name: str, required: bool) -> str:
    """Resolve a credential by name; a missing one becomes a _ConfigError naming only its reference."""
    ref = check.credentials.get(name)
    if ref is None:
        if required:
            raise _ConfigError(f"credential {name} missing for SNMP")
        return ""
    try:
        return _resolve(ref)
    except SecretError:
        verb = "not set" if ref.scheme == "env" else "cannot be read"
        raise _ConfigError(f"credential {ref.ref} {verb}") from None


def _resolve(ref: SecretRef) -> str:
    """The secret's value; a file's content is kept `_SECRET_FILE_TTL` s (a read costs ~70 µs, a check ~1 ms)."""
    if ref.scheme != "file":
        return ref.resolve()
    key = (ref.ref, ref.base_dir)
    now = time.monotonic()
    kept = _secret_files.get(key)
    if kept is not None and kept[1] > now:
        return kept[0]
    value = ref.resolve()
    if len(_secret_files) > 10_000:
        _secret_files.clear()
    _secret_files[key] = (value, now + _SECRET_FILE_TTL)
    return value


def _credentials(check: CheckSpec) -> Credentials:
    """Build the resolved credentials from params and secret references."""
    params = check.params
    version = str(params.get("version", "2c")).lower().lstrip("v")
    if version in ("2", "2c", "1"):
        return Credentials(version="2c", community=_secret(check, "community", required=True))
    if version != "3":
        raise _ConfigError(f"unsupported SNMP version {params.get('version')!r} (use 2c or 3)")
    auth_protocol = str(params.get("auth_protocol", "SHA")).upper().replace("-", "")
    priv_protocol = str(params.get("priv_protocol", "AES")).upper().replace("-", "")
    auth_protocol = "none" if auth_protocol == "NONE" else auth_protocol
    priv_protocol = "none" if priv_protocol == "NONE" else priv_protocol
    if auth_protocol not in AUTH_PROTOCOLS:
        raise _ConfigError(f"unknown auth_protocol {auth_protocol!r} (use {', '.join(AUTH_PROTOCOLS)})")
    if priv_protocol not in PRIV_PROTOCOLS:
        raise _ConfigError(f"unknown priv_protocol {priv_protocol!r} (use {', '.join(PRIV_PROTOCOLS)})")
    user = str(params.get("user", "")).strip()
    if not user:
        raise _ConfigError("SNMPv3 needs a `user` parameter")
    auth_key = _secret(check, "auth_key", required=auth_protocol != "none")
    priv_key = _secret(check, "priv_key", required=priv_protocol != "none")
    if priv_protocol != "none" and auth_protocol == "none":
        raise _ConfigError("SNMPv3 privacy needs an auth_protocol too")
    return Credentials("3", "", user, auth_protocol, auth_key, priv_protocol, priv_key)


def _per(check: CheckSpec) -> float:
    try:
        per = float(check.params.get("per", 1))
    except (TypeError, ValueError):
        raise _ConfigError(f"invalid `per` {check.params.get('per')!r} (seconds, e.g. 3600)") from None
    if per <= 0:
        raise _ConfigError("`per` must be a positive number of seconds")
    return per


def _max_rate(check: CheckSpec, per: float) -> float | None:
    """The `max_rate` parameter as counts per second, or None when unset."""
    raw = check.params.get("max_rate")
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise _ConfigError(f"invalid `max_rate` {raw!r} (a number, in the check's unit)") from None
    if value <= 0 or isinstance(raw, bool):
        raise _ConfigError("`max_rate` must be a positive number")
    return value / per


def _bits(check: CheckSpec, value: SnmpValue) -> int:
    bits = check.params.get("counter_bits")
    if bits is None:
        return 64 if value.type == "Counter64" else 32
    if int(bits) not in (32, 64):
        raise _ConfigError(f"counter_bits must be 32 or 64, not {bits!r}")
    return int(bits)


def _require_present(oid: str, value: SnmpValue | None, evidence: str = "") -> SnmpValue:
    if value is None or value.missing:
        raise SnmpError(f"OID {oid} not present on device", evidence=evidence)
    return value


def _uptime_seconds(values: dict[str, SnmpValue]) -> float | None:
    uptime = values.get(SYS_UPTIME)
    if uptime is None or not uptime.is_numeric:
        return None
    return int(uptime.value or 0) / 100.0


async def _mode_get(check: CheckSpec, target: Target, creds: Credentials, deadline: float) -> Sample:
    raw = check.params.get("oids") or ([check.params["oid"]] if "oid" in check.params else [])
    if isinstance(raw, str):
        raw = [raw]
    if not raw:
        raise _ConfigError("mode get needs `oid` or `oids`")
    oids = [_oid(o) for o in raw]
    values, latency = await snmp_get(target, creds, list(dict.fromkeys(oids)), deadline)
    metric_oid = oids[0]
    evidence = varbind_evidence([(oid, values[oid]) for oid in dict.fromkeys(oids) if oid in values])
    metric = _require_present(metric_oid, values.get(metric_oid), evidence)
    extra: dict[str, float] = {}
    for oid in oids:
        v = values.get(oid)
        if v is not None and v.is_numeric:
            extra["uptime" if oid == SYS_UPTIME else oid] = (
                int(v.value or 0) / 100.0 if oid == SYS_UPTIME else float(v.value or 0)
            )
    number: float | None = None
    if metric.is_numeric:
        number = int(metric.value or 0) / 100.0 if metric_oid == SYS_UPTIME else float(metric.value or 0)
    elif isinstance(metric.value, str):
        try:
            number = float(metric.value.strip())
        except ValueError:
            number = None
    shown = format_uptime(number) if metric_oid == SYS_UPTIME and number is not None else _show(metric)
    status, suffix = CheckStatus.OK, ""
    if "expect" in check.params:
        expected = check.params["expect"]
        if not _matches(metric, number, expected):
            reason = f"OID {metric_oid} is {_show(metric)}, expected {expected!r}"
            return _sample(check, CheckStatus.CRITICAL, reason, number, extra, latency, evidence)
    elif number is not None:
        status, suffix = _judge(check, number)
    return _sample(check, status, f"{shown}{suffix}", number, extra, latency, evidence)


async def _mode_rate(check: CheckSpec, target: Target, creds: Credentials, deadline: float) -> Sample:
    if "oid" not in check.params:
        raise _ConfigError("mode rate needs `oid` (a counter)")
    oid = _oid(check.params["oid"])
    per = _per(check)
    max_rate = _max_rate(check, per)
    values, latency = await snmp_get(target, creds, [oid, SYS_UPTIME] if oid != SYS_UPTIME else [oid], deadline)
    evidence = varbind_evidence(list(values.items()))
    counter = _require_present(oid, values.get(oid), evidence)
    if not counter.is_numeric:
        raise SnmpError(f"OID {oid} holds {counter.type}, not a counter", evidence=evidence)
    bits = _bits(check, counter)
    reading = CounterReading(int(counter.value or 0), _uptime_seconds(values), time.monotonic())
    result = step(_baselines.get(check.id), reading, bits, max_rate)
    _baselines[check.id] = reading
    extra: dict[str, float] = {"total": float(reading.counter)}
    if reading.uptime is not None:
        extra["uptime"] = reading.uptime
    return _rate_sample(check, result, per, extra, latency, evidence)


def _selection(check: CheckSpec) -> dict[str, str]:
    """The `interfaces` parameter as {name: label prefix}; empty means every row."""
    raw = check.params.get("interfaces") or []
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, dict):
        return {str(name): f"{label} " if label else "" for name, label in raw.items()}
    return {str(name): "" for name in raw}


async def _walk_table(
    check: CheckSpec, target: Target, creds: Credentials, base: str, deadline: float, with_uptime: bool = False
) -> tuple[list[tuple[str, str, SnmpValue]], dict[str, str], float | None, float]:
    """Read a column's selected rows; return (index, name, value) rows, missing names, uptime, time."""
    names_oid = _oid(check.params["names_oid"]) if check.params.get("names_oid") else None
    wanted = _selection(check)
    read = await read_rows(
        target, creds, base, names_oid, wanted, deadline=deadline, max_age=INDEX_MAX_AGE, with_uptime=with_uptime
    )
    if read.empty:
        raise SnmpError(f"OID {base} not present on device (empty walk)")
    if not wanted:
        return read.rows, {}, read.uptime, read.elapsed
    present = {name for _, name, _ in read.rows}
    column = _COLUMNS.get(names_oid or "", "the table")
    missing = {name: f"{label}{name} not found in {column}" for name, label in wanted.items() if name not in present}
    return read.rows, missing, read.uptime, read.elapsed


async def _mode_walk(check: CheckSpec, target: Target, creds: Credentials, deadline: float) -> Sample:
    if "oid" not in check.params:
        raise _ConfigError("mode walk needs `oid` (the table column)")
    base = _oid(check.params["oid"])
    expected = check.params.get("expect", 1)
    column = str(check.params.get("label") or _COLUMNS.get(base, base))
    table, missing, _, elapsed = await _walk_table(check, target, creds, base, deadline)
    status_words = base in _STATUS_COLUMNS or column in ("ifOperStatus", "ifAdminStatus")
    labels = _selection(check)
    bad: list[str] = []
    values: dict[str, float] = {}
    for _, name, value in table:
        number = float(value.value) if value.is_numeric else None  # type: ignore[arg-type]
        if number is not None:
            values[name] = number
        if _matches(value, number, expected):
            continue
        state = _IF_STATES.get(int(number)) if status_words and number is not None else None
        what = f"is {state}" if state else f"is {_show(value)}, expected {expected}"
        bad.append(f"{labels.get(name, '')}{name} {what} ({column} {_show(value)})")
    count = float(len(bad))
    th = check.thresholds
    if missing:
        status = CheckStatus.CRITICAL
    elif th.warning is not None or th.critical is not None:
        status = th.classify(count)
    else:
        status = CheckStatus.CRITICAL if bad else CheckStatus.OK
    problems = list(missing.values()) + bad
    if problems:
        reason = _limit_list(problems)
    else:
        state = _IF_STATES.get(int(expected)) if status_words and isinstance(expected, int) else None
        reason = f"all {len(table)} {state or f'as expected ({column} {expected})'}"
    return _sample(check, status, reason, count, values, elapsed, row_evidence(base, table))


async def _mode_walk_rate(check: CheckSpec, target: Target, creds: Credentials, deadline: float) -> Sample:
    if "oid" not in check.params:
        raise _ConfigError("mode walk_rate needs `oid` (a counter column)")
    base = _oid(check.params["oid"])
    per = _per(check)
    max_rate = _max_rate(check, per)
    table, missing, uptime, elapsed = await _walk_table(check, target, creds, base, deadline, with_uptime=True)
    clock = time.monotonic()
    evidence = row_evidence(base, table)
    counters = {name: v for _, name, v in table if v.is_numeric}
    previous = _table_baselines.get(check.id)
    _table_baselines[check.id] = (uptime, clock, {n: int(v.value or 0) for n, v in counters.items()})
    total = float(sum(int(v.value or 0) for v in counters.values()))
    values: dict[str, float] = {"total": total}
    if missing:
        reason = _limit_list(list(missing.values()))
        return _sample(check, CheckStatus.CRITICAL, reason, None, values, elapsed, evidence)
    if previous is None:
        return _sample(check, CheckStatus.OK, FIRST_READING, None, values, elapsed, evidence)
    prev_uptime, prev_clock, prev_counters = previous
    if uptime is not None and prev_uptime is not None and uptime_span(prev_uptime, uptime, clock - prev_clock) is None:
        return _sample(check, CheckStatus.OK, REBOOTED, None, values, elapsed, evidence)
    rate_sum, notes, rated = 0.0, [], 0
    for name, value in counters.items():
        if name not in prev_counters:
            continue
        before = CounterReading(prev_counters[name], prev_uptime, prev_clock)
        now = CounterReading(int(value.value or 0), uptime, clock)
        result = step(before, now, _bits(check, value), max_rate)
        if result.rate is None:
            notes.append(f"{name}: {result.note}")
            continue
        rated += 1
        rate_sum += result.rate
        values[name] = result.rate * per
        if result.wrapped:
            notes.append(f"{name} counter wrapped")
    if not rated:
        reason = _limit_list(notes) if notes else FIRST_READING
        return _sample(check, CheckStatus.OK, reason, None, values, elapsed, evidence)
    summary = RateStep(rate_sum, _limit_list(notes))
    return _rate_sample(check, summary, per, values, elapsed, evidence)


_MODES: dict[str, Callable[[CheckSpec, Target, Credentials, float], Awaitable[Sample]]] = {
    "get": _mode_get,
    "rate": _mode_rate,
    "walk": _mode_walk,
    "walk_rate": _mode_walk_rate,
}


async def probe(check: CheckSpec) -> Sample:
    """Run one SNMP check and describe what the device answered.

    Args:
        check: the resolved check; see the module docstring for its parameters.

    Returns:
        A Sample; device faults (no answer, missing OID, bad reply, wrong credentials) become its
        status and reason, never an exception.
    """
    try:
        mode = str(check.params.get("mode", "get"))
        run = _MODES.get(mode)
        if run is None:
            raise _ConfigError(f"unknown SNMP mode {mode!r} (use {', '.join(_MODES)})")
        target = _target(check)
        creds = _credentials(check)
    except _ConfigError as exc:
        return _sample(check, CheckStatus.UNKNOWN, str(exc), None, {}, None)
    try:
        await open_session()
        # every request of the check shares one deadline, so a walk or a v3 discovery cannot overrun;
        # each request ends itself at the deadline with a precise reason, the engine's guard catches the rest
        deadline = asyncio.get_running_loop().time() + target.timeout
        return await run(check, target, creds, deadline)
    except _ConfigError as exc:
        return _sample(check, CheckStatus.UNKNOWN, str(exc), None, {}, None)
    except SnmpError as exc:
        return _sample(check, exc.status, exc.reason, None, {}, None, exc.evidence)
    except Exception as exc:  # a garbled reply can trip pysnmp anywhere; it is the device's fault
        reason = f"unusable SNMP reply from {target.label}: {type(exc).__name__}: {exc}"
        return _sample(check, CheckStatus.UNKNOWN, reason, None, {}, None)
