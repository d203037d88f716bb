"""The host probe on the local machine, checked against psutil's own readings."""

from __future__ import annotations

import time

import psutil

from bibnet_ops.model import CheckSpec, CheckStatus, Thresholds
from bibnet_ops.probes import run_probe
from bibnet_ops.probes.host import cpu_percent, probe


def check(metric: str, thresholds: Thresholds | None = None, **params: object) -> CheckSpec:
    return CheckSpec(
        site_id="collector",
        device_id="self",
        name=metric,
        probe="host",
        address="localhost",
        params={"metric": metric, "interval": 0.1, **params},
        timeout=2.0,
        thresholds=thresholds or Thresholds(),
    )


async def test_cpu_is_a_percentage_and_does_not_block() -> None:
    started = time.monotonic()
    sample = await probe(check("cpu"))
    assert time.monotonic() - started < 0.5
    assert sample.status is CheckStatus.OK
    assert sample.value is not None and 0.0 <= sample.value <= 100.0
    assert sample.reason.startswith("CPU ")
    assert 0.0 <= await cpu_percent(0.05) <= 100.0


async def test_memory_matches_psutil() -> None:
    sample = await probe(check("memory"))
    assert sample.value is not None
    assert abs(sample.value - psutil.virtual_memory().percent) < 10
    assert sample.values["available_bytes"] > 0


async def test_disk_thresholds() -> None:
    used = psutil.disk_usage("/").percent
    sample = await run_probe(check("disk", Thresholds(warning=-1, critical=101)))
    assert sample.status is CheckStatus.WARNING
    assert sample.value is not None and abs(sample.value - used) < 5
    assert "(warning above" in sample.reason
    critical = await probe(check("disk", Thresholds(warning=-2, critical=-1)))
    assert critical.status is CheckStatus.CRITICAL


async def test_load_per_core() -> None:
    sample = await probe(check("load"))
    cores = psutil.cpu_count() or 1
    assert sample.value is not None
    assert abs(sample.value - sample.values["load1"] / cores) < 1e-9


async def test_bad_metric_or_path_is_unknown() -> None:
    assert (await probe(check("temperature"))).status is CheckStatus.UNKNOWN
    missing = await probe(check("disk", path="/no/such/dir/for/bibnet"))
    assert missing.status is CheckStatus.UNKNOWN and "/no/such/dir/for/bibnet" in missing.reason
