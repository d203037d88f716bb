"""`bibnet-ops check` reads counter-rate checks twice, so a technician sees pages/h from the command line.

The simulator serves the shipped Oran hub (and the national library it depends on) in this process;
`bibnet-ops check` runs as a real child process on the config the simulator wrote. The simulator's
clock is moved an hour on while the command waits between its two readings, so the scanner's page
counter and uptime advance as they would over an hour of scanning.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bibnet_ops.inventory import load_inventory
from bibnet_ops.probes._snmp_rate import FIRST_READING
from bibnet_ops.sim import Simulator

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Bench:
    sim: Simulator
    config: Path
    offset: list[float]


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    shipped = load_inventory(REPO / "config")
    offset = [0.0]
    sim = Simulator([shipped.sites["bna"], shipped.sites["bplp-31"]], seed=5, always_open=True,
                    clock=lambda: time.time() + offset[0])
    async with sim:
        yield Bench(sim, sim.write_config(tmp_path / "config"), offset)


async def check(bench: Bench, *args: str, advance_on_wait: float = 0.0) -> tuple[int, list[str], str, float]:
    """Run `bibnet-ops check ARGS`; when it announces its wait, move the simulator's clock on."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bibnet_ops", "--config", str(bench.config), "check", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    err: list[str] = []
    async with asyncio.timeout(60):
        while line := (await proc.stderr.readline()).decode():
            err.append(line)
            if "again in" in line:
                bench.offset[0] += advance_on_wait
        out = (await proc.stdout.read()).decode()
        code = await proc.wait()
    return code, out.splitlines(), "".join(err), time.monotonic() - started


async def test_check_reads_a_rate_check_twice_and_shows_pages_per_hour(bench: Bench) -> None:
    code, out, err, elapsed = await check(bench, "bplp-31/scanner-1", "--json", "--rate-wait", "1",
                                          advance_on_wait=3600)
    assert code == 0, (out, err)
    assert "bibnet-ops check: reading counter check again in 1 s for a rate (--rate-wait 0 to skip)" in err
    results = {r["id"]: r for r in map(json.loads, out)}
    assert set(results) == {"bplp-31/scanner-1/uptime", "bplp-31/scanner-1/pages"}
    pages = results["bplp-31/scanner-1/pages"]
    assert pages["status"] == "OK" and pages["unit"] == "pages/h"
    # an hour of an always-open scanner's work, timed by the device's own uptime
    assert 100 <= pages["value"] <= 400, pages
    assert pages["reason"].endswith(" pages/h"), pages
    assert results["bplp-31/scanner-1/uptime"]["status"] == "OK"
    assert elapsed >= 1.0


async def test_rate_wait_zero_shows_the_first_reading_only(bench: Bench) -> None:
    code, out, err, _ = await check(bench, "bplp-31/scanner-1/pages", "--rate-wait", "0")
    assert code == 0, (out, err)
    assert "again in" not in err
    assert out[0].split()[:2] == ["CHECK", "STATUS"]
    row = out[1]
    assert row.startswith("bplp-31/scanner-1/pages") and " OK " in row
    assert FIRST_READING[:30] in row


async def test_checks_without_a_rate_are_not_read_again(bench: Bench) -> None:
    code, out, err, elapsed = await check(bench, "bplp-31/scanner-1/uptime", "--rate-wait", "5")
    assert code == 0, (out, err)
    assert "again in" not in err
    assert "bplp-31/scanner-1/uptime" in out[1] and " up " in out[1]
    assert elapsed < 5
