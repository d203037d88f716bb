"""`bibnet-ops sim` as a subprocess, scenario files, and a scale smoke test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bibnet_ops.inventory import load_inventory
from bibnet_ops.sim import (
    ScenarioError,
    Simulator,
    SimulatorThread,
    base_network,
    load_scenario,
    parse_duration,
)

ROOT = Path(__file__).resolve().parents[1]


def test_sim_subprocess_ready_and_sigterm(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bibnet_ops", "sim", "--sites", "3", "--write-config", str(tmp_path / "cfg")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("ready:") or not line:
                break
        assert lines[-1].startswith("ready: 3 sites"), lines
        inv = load_inventory(tmp_path / "cfg")
        assert len(inv.sites) == 3
        site = next(s for s in inv.sites.values() if s.id != "bna")
        url = next(d.address for d in site.devices if d.template == "ils-server")
        assert httpx.get(url + "/health").json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 1.5
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=5)


def test_shipped_scenarios_load() -> None:
    for path in (ROOT / "config" / "scenarios").glob("*.toml"):
        assert load_scenario(path).faults


def test_scenario_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fault]]\nkind = "meteor"\nsite = "bna"\n')
    with pytest.raises(ScenarioError, match="fault #1: unknown kind 'meteor'"):
        load_scenario(bad)
    bad.write_text('[[fault]]\nkind = "slow"\nsite = "bna"\ndelay = "soon"\n')
    with pytest.raises(ScenarioError, match="not a duration"):
        load_scenario(bad)
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25 and parse_duration(5) == 5


def test_resize_keeps_parents() -> None:
    small = Simulator(base_network(), sites=5).sites
    assert all(s.parent is None or s.parent in small for s in small.values())


async def test_scale_smoke(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    async with Simulator(None, sites=300, seed=1) as sim:
        elapsed = time.perf_counter() - t0
        sim.write_config(tmp_path)
        assert len(sim.sites) == 300 and elapsed < 10
        annex = next(s for s in sim.sites.values() if s.kind in ("annex", "municipal"))
        async with httpx.AsyncClient() as client:
            reply = await client.get(sim.address(annex.id, "catalogue") + "/health")
        assert reply.json()["site"] == annex.id
    assert len(load_inventory(tmp_path).sites) == 300


def test_simulator_thread() -> None:
    runner = SimulatorThread(Simulator(None, sites=2))
    with runner as sim:
        site = list(sim.sites)[1]
        url = sim.address(site, "catalogue")
        assert httpx.get(url + "/health", verify=False).json()["status"] == "ok"
        fid = runner.call(sim.set_fault, site, "outage")
        with pytest.raises(httpx.ConnectError):
            for _ in range(20):
                httpx.get(url + "/health", verify=False)
                time.sleep(0.05)
        assert runner.call(sim.clear_fault, fid) == 1
