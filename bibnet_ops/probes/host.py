"""The `host` probe: health of the machine bibnet-ops itself runs on, through psutil.

Param `metric`: `cpu` (percent busy over `interval` seconds, default 0.5, measured without blocking
the event loop), `memory` (percent used), `disk` (percent used of `path`, default "/"), `load` (1-minute
load average per core). Thresholds come from the check.
"""

from __future__ import annotations

import asyncio
import os

import psutil

from bibnet_ops.model import CheckSpec, CheckStatus, Sample
from bibnet_ops.probes._common import ParamError, judge_metric, make_sample, param_float, param_str

__all__ = ["METRICS", "cpu_percent", "probe"]

METRICS = ("cpu", "memory", "disk", "load")


async def cpu_percent(interval: float) -> float:
    """Percent of CPU time busy across all cores over `interval` seconds.

    Computed from two `cpu_times()` readings rather than `psutil.cpu_percent(None)`, whose hidden
    global baseline would be reset by any other caller in the process.
    """
    before = psutil.cpu_times()
    await asyncio.sleep(interval)
    after = psutil.cpu_times()
    idle_fields = ("idle", "iowait")
    total = sum(after) - sum(before)
    idle = sum(getattr(after, f, 0.0) - getattr(before, f, 0.0) for f in idle_fields)
    if total <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (total - idle) / total))


async def probe(check: CheckSpec) -> Sample:
    """Measure one local metric and classify it with the check's thresholds.

    Args:
        check: The resolved check; `params["metric"]` picks cpu, memory, disk or load.

    Returns:
        The metric as a Sample; UNKNOWN for an unknown metric or an unreadable disk path.
    """
    try:
        metric = param_str(check.params, "metric", "cpu").lower()
        if metric not in METRICS:
            raise ParamError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
        interval = param_float(check.params, "interval", 0.5, minimum=0.01)
        path = param_str(check.params, "path", "/")
    except ParamError as exc:
        return make_sample(check, CheckStatus.UNKNOWN, f"bad check configuration: {exc}")
    values: dict[str, float] = {}
    if metric == "cpu":
        # never measure longer than the check allows
        value = await cpu_percent(min(interval, max(check.timeout / 2, 0.01)))
        label, unit = "CPU", "%"
        values["cores"] = float(psutil.cpu_count() or 1)
    elif metric == "memory":
        mem = psutil.virtual_memory()
        value, label, unit = mem.percent, "memory used", "%"
        values["available_bytes"] = float(mem.available)
    elif metric == "disk":
        try:
            usage = psutil.disk_usage(path)
        except OSError as exc:
            return make_sample(check, CheckStatus.UNKNOWN, f"cannot read disk usage of {path}: {exc.strerror}")
        value, label, unit = usage.percent, f"disk {path} used", "%"
        values["free_bytes"] = float(usage.free)
    else:
        cores = psutil.cpu_count() or os.cpu_count() or 1
        load1, load5, load15 = psutil.getloadavg()
        value, label, unit = load1 / cores, "load per core", ""
        values.update(load1=load1, load5=load5, load15=load15, cores=float(cores))
    status, reason = judge_metric(check.thresholds, float(value), label, unit)
    return make_sample(check, status, reason, value=float(value), values=values)
