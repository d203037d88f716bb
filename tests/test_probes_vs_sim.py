"""The shipped check templates, the probes and the simulator fit together.

The simulator serves the national library (SNMPv3 devices, HTTPS catalogue with SRU), the Oran hub
(HTTPS, SRU) and a wilaya library behind it, writes its inventory, and every resolved check is run once
with `run_probe`: healthy first, then under each fault kind, whose effect must show in the Sample's
status and reason. The simulator's clock is shifted forward to stand in for the hours between polls of
a counter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bibnet_ops.inventory import Inventory, load_inventory
from bibnet_ops.model import CheckSpec, CheckStatus, Sample
from bibnet_ops.probes import PROBE_KINDS, run_probe, snmp
from bibnet_ops.probes._httpclient import close_clients
from bibnet_ops.probes._snmp_rate import FIRST_READING, REBOOTED
from bibnet_ops.sim import Simulator

REPO = Path(__file__).resolve().parents[1]
SITES = ("bna", "bplp-31", "bplp-13")  # national library, western hub, a wilaya library behind it
RATE_MODES = ("rate", "walk_rate")
SNMP_TIMEOUT = 0.5  # faulted SNMP agents are waited for this long; HTTP checks keep their templates' timeouts


@dataclass
class Network:
    """A running simulator, the inventory it wrote, and a handle on its clock."""

    sim: Simulator
    inventory: Inventory
    config: Path
    offset: list[float]

    def check(self, ident: str) -> CheckSpec:
        return next(self.inventory.select(ident))

    def advance(self, seconds: float) -> None:
        """Move the simulated devices' clock forward (counters grow, uptimes increase)."""
        self.offset[0] += seconds


@pytest.fixture
async def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Network]:
    shipped = load_inventory(REPO / "config")
    offset = [0.0]
    sim = Simulator([shipped.sites[s] for s in SITES], seed=11, always_open=True, clock=lambda: time.time() + offset[0])
    snmp.forget_baselines()
    async with sim:
        config = sim.write_config(tmp_path / "config")
        # secrets are file: references relative to the config dir, not to wherever bibnet-ops runs
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        try:
            yield Network(sim, load_inventory(config), config, offset)
        finally:
            await close_clients()
            snmp.close()
            snmp.forget_baselines()


async def probe_all(checks: Iterable[CheckSpec]) -> dict[str, Sample]:
    checks = list(checks)
    samples = await asyncio.gather(*(run_probe(c) for c in checks))
    return {c.id: s for c, s in zip(checks, samples, strict=True)}


def shown(samples: dict[str, Sample]) -> str:
    return "\n".join(f"{k}: {s.status} {s.value} {s.reason}" for k, s in samples.items())


def is_rate(check: CheckSpec) -> bool:
    return check.probe == "snmp" and check.params.get("mode") in RATE_MODES


async def test_every_shipped_check_is_ok_on_a_healthy_network(net: Network) -> None:
    inv = net.inventory
    assert net.sim.unserved == ["bna/collector"]  # measured locally by the host probe
    # every check of every shipped template is exercised, with every probe kind but tcp (no template)
    resolved = {(c.template, c.name) for c in inv.checks}
    shipped = {(t.name, c.name) for t in inv.templates.values() for c in t.checks}
    assert resolved == shipped
    assert {c.probe for c in inv.checks} == set(PROBE_KINDS) - {"tcp"}
    v3 = [c for c in inv.checks if c.probe == "snmp" and c.params.get("version") == "3"]
    assert {c.device_id for c in v3} == {"core-router", "scanner-1", "scanner-2", "scanner-3"}
    assert all(str(r).startswith("file:secrets/") for c in inv.checks for r in c.credentials.values())

    samples = await probe_all(inv.checks)
    for check in inv.checks:
        sample = samples[check.id]
        if check.probe == "host":  # this machine's own load, not the simulator's business
            assert sample.status is not CheckStatus.UNKNOWN and sample.value is not None, sample
        elif is_rate(check):
            assert (sample.status, sample.reason, sample.value) == (CheckStatus.OK, FIRST_READING, None), sample
        else:
            assert sample.status is CheckStatus.OK, shown(samples)
            assert sample.value is not None, sample
    tls = samples["bna/catalogue/tls"]
    assert tls.reason == "TLS certificate expires in 365 days" and 364 < (tls.value or 0) <= 365
    assert samples["bplp-31/router/uplink"].reason == "all 1 up"
    assert samples["bna/scanner-1/uptime"].reason.startswith("up ")
    assert samples["bplp-13/oai/sync-lag"].reason.startswith("newest record changed ")

    net.advance(3600)  # an hour of opening time later
    rates = await probe_all(c for c in inv.checks if is_rate(c))
    for ident, sample in rates.items():
        assert sample.status is CheckStatus.OK and sample.value is not None, shown(rates)
        if ident.endswith("/pages"):
            assert 100 <= sample.value <= 400 and sample.reason.endswith(" pages/h"), sample
        else:
            assert 0 <= sample.value < 100 and sample.reason.endswith(" errors/h"), sample


FAULTED = ("bna", "bplp-13")  # one site of SNMPv3 devices, one of v2c devices; both catalogues


async def _faulted(net: Network, kind: str, http_timeout: float | None = None, **params: Any) -> dict[str, Sample]:
    for site in FAULTED:
        net.sim.set_fault(site, kind, **params)
    await asyncio.sleep(0.2)  # let the HTTP servers close or reopen their sockets
    checks = [
        dataclasses.replace(c, timeout=SNMP_TIMEOUT if c.probe == "snmp" else http_timeout or c.timeout)
        for c in net.inventory.checks
        if c.site_id in FAULTED and c.probe != "host"
    ]
    return await probe_all(checks)


def _by_probe(samples: dict[str, Sample], net: Network, probe: str) -> dict[str, Sample]:
    kinds = {c.id: c.probe for c in net.inventory.checks}
    return {k: s for k, s in samples.items() if kinds[k] == probe}


async def test_outage_refuses_http_and_silences_snmp(net: Network) -> None:
    samples = await _faulted(net, "outage")
    assert all(s.status is CheckStatus.CRITICAL for s in samples.values()), shown(samples)
    for sample in [*_by_probe(samples, net, "http").values(), *_by_probe(samples, net, "oaipmh").values()]:
        assert sample.reason.startswith("connection refused on 127.0.0.1:"), sample
    for ident, sample in _by_probe(samples, net, "snmp").items():
        hint = "wrong v3 user/keys?" if ident.startswith("bna/") else "wrong community?"
        assert sample.reason.startswith("no SNMP answer from 127.0.0.1:"), sample
        assert sample.reason.endswith(f"within {SNMP_TIMEOUT} s (agent down or {hint})"), sample

    net.sim.clear_fault()
    await asyncio.sleep(0.2)
    back = await probe_all(c for c in net.inventory.checks if c.site_id in FAULTED and c.probe == "http")
    assert all(s.status is CheckStatus.OK for s in back.values()), shown(back)


async def test_slow_devices_time_out(net: Network) -> None:
    samples = await _faulted(net, "slow", http_timeout=1.0, delay=3.0)
    assert all(s.status is CheckStatus.CRITICAL for s in samples.values()), shown(samples)
    for sample in [*_by_probe(samples, net, "http").values(), *_by_probe(samples, net, "oaipmh").values()]:
        assert sample.reason.startswith("no answer within 1.0 s from 127.0.0.1:"), sample
    for sample in _by_probe(samples, net, "snmp").values():
        assert sample.reason.startswith("no SNMP answer from 127.0.0.1:"), sample


async def test_garbage_replies_are_named_as_such(net: Network) -> None:
    samples = await _faulted(net, "garbage")
    for site in FAULTED:
        opac = samples[f"{site}/catalogue/opac"].reason
        assert opac == "GET /cgi-bin/koha/opac-main.pl: body lacks a catalogue search form"
        assert samples[f"{site}/catalogue/api"].reason.startswith("reply is not valid JSON")
        assert samples[f"{site}/oai/identify"].reason.startswith("malformed XML in OAI-PMH reply")
        assert samples[f"{site}/oai/sync-lag"].reason.startswith("malformed XML in OAI-PMH reply")
    assert samples["bna/catalogue/sru"].reason == "GET /biblios: body lacks 'explainResponse'"
    # the certificate is still good: a garbling server does not make the TLS check fail
    assert samples["bna/catalogue/tls"].status is CheckStatus.OK
    for ident, sample in _by_probe(samples, net, "snmp").items():
        assert sample.status is CheckStatus.CRITICAL, sample
        assert sample.reason.startswith("no valid SNMP answer from 127.0.0.1:"), (ident, sample)
        assert re.search(r"\(\d+ unreadable repl(y|ies)\)$", sample.reason), (ident, sample)
    others = {k: s for k, s in samples.items() if k != "bna/catalogue/tls"}
    assert all(s.status is CheckStatus.CRITICAL for s in others.values()), shown(others)


@pytest.mark.parametrize(("days", "status"), [(4, CheckStatus.WARNING), (20, CheckStatus.CRITICAL)])
async def test_stalled_sync_lag_crosses_thresholds(net: Network, days: int, status: CheckStatus) -> None:
    for site in FAULTED:
        net.sim.set_fault(site, "sync_stalled", lag=days * 86400)
    samples = await probe_all(net.check(f"{site}/oai/sync-lag") for site in FAULTED)
    level = "warning above 3 days" if status is CheckStatus.WARNING else "critical above 14 days"
    for sample in samples.values():
        assert sample.status is status, sample
        # the newest visible record is the last one catalogued before the stall (old records are sparse)
        assert days * 86400 <= (sample.value or 0) < (days + 7) * 86400, sample
        assert sample.reason.startswith("newest record changed ") and " days ago at " in sample.reason, sample
        assert sample.reason.endswith(f"({level})"), sample


async def test_counter_wrap_and_reboot_keep_pages_per_hour_sane(net: Network) -> None:
    pages = [net.check(f"{site}/scanner-1/pages") for site in FAULTED]

    async def poll() -> list[Sample]:
        return list((await probe_all(pages)).values())

    assert all(s.reason == FIRST_READING for s in await poll())
    net.advance(600)
    assert all(s.value is not None and 100 <= s.value <= 400 for s in await poll())

    # the simulator moves the counter to just below 2^32: that jump is no scanning rate
    for site in FAULTED:
        net.sim.set_fault(site, "counter_wrap", device="scanner-1", margin=50)
    net.advance(60)
    for sample in await poll():
        assert sample.status is CheckStatus.OK and sample.value is None, sample
        assert sample.reason.startswith("counter jumped by ") and sample.reason.endswith("rate restarts"), sample
    net.advance(3600)  # more than 50 pages later: the Counter32 wraps between the two polls
    for sample in await poll():
        assert sample.value is not None and 100 <= sample.value <= 400, sample
        assert sample.reason.endswith("pages/h (counter wrapped)"), sample
        assert sample.values["total"] < 1000, sample

    for site in FAULTED:
        net.sim.set_fault(site, "reboot", device="scanner-1", downtime=0)
    net.advance(60)
    uptimes = await probe_all(net.check(f"{site}/scanner-1/uptime") for site in FAULTED)
    assert all(s.reason == "up 60 s" for s in uptimes.values()), shown(uptimes)
    assert all(s.reason == REBOOTED and s.value is None for s in await poll())
    net.advance(3600)
    assert all(s.value is not None and 100 <= s.value <= 400 for s in await poll())


@pytest.mark.parametrize(
    ("days", "status", "reason"),
    [
        (10, CheckStatus.WARNING, "TLS certificate expires in 10 days"),
        (3, CheckStatus.CRITICAL, "TLS certificate expires in 3 days"),
        (-2, CheckStatus.CRITICAL, "TLS certificate rejected by 127.0.0.1:"),
    ],
)
async def test_certificate_expiry(net: Network, days: int, status: CheckStatus, reason: str) -> None:
    for site in ("bna", "bplp-31"):
        net.sim.set_fault(site, "cert_expiry", days=days)
    await asyncio.sleep(0.1)
    samples = await probe_all(net.check(f"{site}/catalogue/tls") for site in ("bna", "bplp-31"))
    for sample in samples.values():
        assert sample.status is status and sample.reason.startswith(reason), sample
    assert net.sim.warnings == []


def _start_cli_sim(config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("BIBNET_OPS_CONFIG", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bibnet_ops",
            "--config",
            str(REPO / "config"),
            "sim",
            "--sites",
            "5",
            "--seed",
            "5",
            "--write-config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


async def test_cli_written_config_fits_the_probes(tmp_path: Path) -> None:
    config = tmp_path / "simcfg"
    proc = _start_cli_sim(config)
    try:
        assert proc.stdout is not None
        line = ""
        for _ in range(5):
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
            if line.startswith("ready:"):
                break
        assert line.startswith("ready: 5 sites,") and line.rstrip().endswith(str(config)), line
        inv = load_inventory(config)
        assert "bna" in inv.sites and any(s.kind == "hub" for s in inv.sites.values())
        samples = await probe_all(c for c in inv.checks if c.probe != "host")
        for check in inv.checks:
            if check.probe != "host":
                assert samples[check.id].status is CheckStatus.OK, shown(samples)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        await close_clients()
        snmp.close()
        snmp.forget_baselines()
    assert proc.returncode == 0, err


async def test_oai_base_url_pasted_whole_as_the_address(tmp_path: Path) -> None:
    shipped = load_inventory(REPO / "config")
    site = shipped.sites["bplp-13"]
    devices = tuple(
        dataclasses.replace(d, address=d.address.rstrip("/") + "/cgi-bin/koha/oai.pl") if d.id == "oai" else d
        for d in site.devices
    )
    async with Simulator([dataclasses.replace(site, parent=None, devices=devices)], seed=3) as sim:
        inv = load_inventory(sim.write_config(tmp_path / "config"))
        try:
            checks = list(inv.select("bplp-13/oai"))
            assert all(c.address.endswith("/cgi-bin/koha/oai.pl") for c in checks)
            samples = await probe_all(checks)
        finally:
            await close_clients()
    assert all(s.status is CheckStatus.OK for s in samples.values()), shown(samples)
