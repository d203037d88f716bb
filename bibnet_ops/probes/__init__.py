"""Probes: one async function per kind, from a resolved check to a Sample.

A probe never raises for a device's fault: timeouts, refused connections and garbage replies become
a Sample with a reason a technician understands. `run_probe` dispatches on `CheckSpec.probe` and adds a
last-resort guard so that even a bug in a probe yields an UNKNOWN sample instead of an exception.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable

from bibnet_ops.model import CheckSpec, CheckStatus, Sample

__all__ = ["PROBE_KINDS", "ProbeFunc", "get_probe", "run_probe"]

ProbeFunc = Callable[[CheckSpec], Awaitable[Sample]]

# probe kind -> module under bibnet_ops.probes exposing `async def probe(check: CheckSpec) -> Sample`
PROBE_KINDS: dict[str, str] = {
    "http": "http",
    "tcp": "tcp",
    "snmp": "snmp",
    "oaipmh": "oaipmh",
    "host": "host",
}

_cache: dict[str, ProbeFunc] = {}


def get_probe(kind: str) -> ProbeFunc:
    """Return the probe function for a kind, importing its module on first use."""
    func = _cache.get(kind)
    if func is None:
        if kind not in PROBE_KINDS:
            raise KeyError(f"unknown probe kind {kind!r}")
        module = importlib.import_module(f"bibnet_ops.probes.{PROBE_KINDS[kind]}")
        func = module.probe
        _cache[kind] = func
    return func


async def run_probe(check: CheckSpec) -> Sample:
    """Run a check's probe; any exception escaping it becomes an UNKNOWN sample naming the error."""
    try:
        return await get_probe(check.probe)(check)
    except Exception as exc:  # a probe bug must not take the engine down
        return Sample(
            check_id=check.id,
            status=CheckStatus.UNKNOWN,
            reason=f"internal probe error: {type(exc).__name__}: {exc}"[:200],
            time=time.time(),
        )
