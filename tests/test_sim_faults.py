"""Every fault kind, observed over real sockets the way a probe would see it."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from test_sim_support import community, snmp_get

from bibnet_ops.model import Device, SecretRef, Site
from bibnet_ops.sim import FaultKind, Simulator, parse_scenario
from bibnet_ops.sim._admin import start_admin

PAGES = "1.3.6.1.2.1.43.10.2.1.4.1.1"
UPTIME = "1.3.6.1.2.1.1.3.0"


def _site(sid: str, parent: str | None = None, tls: bool = False) -> Site:
    refs = {"community": SecretRef("env:X")}
    scheme = "https" if tls else "http"
    return Site(sid, sid.title(), wilaya=31, region="ouest", lat=35.7, lon=-0.6, parent=parent, devices=(
        Device("catalogue", "ils-server", f"{scheme}://{sid}.example"),
        Device("oai", "oai-sync", f"{scheme}://{sid}.example"),
        Device("router", "switch", f"gw.{sid}:161", credentials=refs),
        Device("scanner-1", "book-scanner", f"s1.{sid}:161", credentials=refs),
    ))


@pytest.fixture
async def sim():
    sites = [_site("hub", tls=True), _site("leaf", "hub"), _site("deep", "leaf"), _site("other")]
    async with Simulator(sites, seed=3, always_open=True) as simulator:
        yield simulator


async def _health(sim: Simulator, site: str, timeout: float = 1.0) -> str:
    """'ok', or the name of the error a probe would see."""
    url = sim.address(site, "catalogue") + "/health"
    try:
        async with httpx.AsyncClient(verify=False, timeout=timeout) as client:
            reply = await client.get(url)
        return str(reply.json()["status"])
    except (httpx.HTTPError, ValueError) as exc:
        return type(exc).__name__


async def _pages(sim: Simulator, site: str, timeout: float = 0.5) -> int | str:
    got = await snmp_get(sim.address(site, "scanner-1"), [PAGES, UPTIME], community(sim.community), timeout)
    return got if isinstance(got, str) else int(got[PAGES])


async def test_healthy_by_default(sim: Simulator) -> None:
    assert [await _health(sim, s) for s in ("hub", "leaf", "other")] == ["ok", "ok", "ok"]
    assert sim.active_faults() == []


async def test_outage_refuses_only_its_site(sim: Simulator) -> None:
    fid = sim.set_fault("leaf", FaultKind.OUTAGE)
    await asyncio.sleep(0.05)
    assert await _health(sim, "leaf") == "ConnectError"
    assert isinstance(await _pages(sim, "leaf"), str)  # SNMP silent: a timeout
    assert await _health(sim, "other") == "ok" and isinstance(await _pages(sim, "other"), int)
    assert sim.clear_fault(fid) == 1
    await asyncio.sleep(0.1)
    assert await _health(sim, "leaf") == "ok"


@pytest.mark.parametrize(("mode", "error"), [("drop", "RemoteProtocolError"), ("blackhole", "ReadTimeout")])
async def test_outage_modes(sim: Simulator, mode: str, error: str) -> None:
    sim.set_fault("leaf", "outage", mode=mode)
    result = await _health(sim, "leaf", timeout=0.3)
    assert result in (error, "ReadError", "ConnectError") if mode == "drop" else result == error


async def test_device_level_outage(sim: Simulator) -> None:
    sim.set_fault("leaf", "outage", device="scanner-1")
    assert isinstance(await _pages(sim, "leaf"), str)
    assert await _health(sim, "leaf") == "ok"


async def test_slow(sim: Simulator) -> None:
    sim.set_fault("leaf", "slow", delay=0.4)
    t0 = time.perf_counter()
    assert await _health(sim, "leaf") == "ok"
    assert time.perf_counter() - t0 >= 0.4
    t0 = time.perf_counter()
    assert isinstance(await _pages(sim, "leaf", timeout=1.0), int)
    assert time.perf_counter() - t0 >= 0.4


async def test_flapping(sim: Simulator) -> None:
    sim.set_fault("leaf", "flapping", period=0.4)
    seen = []
    for _ in range(8):
        seen.append(await _health(sim, "leaf", timeout=0.2))
        await asyncio.sleep(0.15)
    assert "ok" in seen and "ConnectError" in seen


async def test_sync_stalled(sim: Simulator) -> None:
    cat = sim.endpoint("leaf", "oai").koha.catalogue  # type: ignore[attr-defined]
    sim.set_fault("leaf", "sync_stalled", lag=4 * 86400)
    now = sim.clock()
    assert now - cat.newest(now) >= 4 * 86400
    frozen = cat.newest(now)
    assert cat.newest(now + 6 * 3600) == frozen  # lag grows: no new datestamps
    url = sim.address("leaf", "oai") + "/cgi-bin/koha/oai.pl"
    since = datetime.fromtimestamp(now - 86400, UTC).strftime("%Y-%m-%d")
    async with httpx.AsyncClient() as client:
        reply = await client.get(url, params={"verb": "ListIdentifiers", "metadataPrefix": "oai_dc",
                                              "from": since})
    assert "noRecordsMatch" in reply.text
    sim.clear_fault(site="leaf")
    assert cat.newest(now + 6 * 3600) > frozen


async def test_scanner_idle_and_counter_wrap(sim: Simulator) -> None:
    sc = sim.endpoint("leaf", "scanner-1").scanner  # type: ignore[attr-defined]
    sim.set_fault("leaf", "scanner_idle")
    now = sim.clock()
    assert sc.pages(now + 3600) == sc.pages(now)
    sim.clear_fault(site="leaf", kind="scanner_idle")
    assert sc.pages(now + 3600) > sc.pages(now)
    sim.set_fault("leaf", "counter_wrap", margin=100)
    value = await _pages(sim, "leaf")
    assert isinstance(value, int) and value >= 2**32 - 101
    assert sc.pages(sim.clock() + 3600) < 400  # wrapped within the hour


async def test_reboot(sim: Simulator) -> None:
    before = await snmp_get(sim.address("leaf", "router"), [UPTIME], community(sim.community))
    assert isinstance(before, dict) and int(before[UPTIME]) > 360000
    sim.set_fault("leaf", "reboot", downtime=0.3)
    await asyncio.sleep(0.05)
    assert await _health(sim, "leaf") == "ConnectError"
    await asyncio.sleep(0.5)
    after = await snmp_get(sim.address("leaf", "router"), [UPTIME], community(sim.community))
    assert isinstance(after, dict) and int(after[UPTIME]) < 100
    assert await _health(sim, "leaf") == "ok"


async def test_garbage(sim: Simulator) -> None:
    sim.set_fault("leaf", "garbage")
    assert await _health(sim, "leaf") == "JSONDecodeError"
    assert isinstance(await _pages(sim, "leaf"), str)
    async with httpx.AsyncClient() as client:
        oai = await client.get(sim.address("leaf", "oai") + "/cgi-bin/koha/oai.pl", params={"verb": "Identify"})
    assert oai.status_code == 200 and not oai.text.rstrip().endswith("</OAI-PMH>")


def _not_after(port: int) -> float:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw, \
            ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


async def test_cert_expiry(sim: Simulator) -> None:
    port = sim.endpoint("hub", "catalogue").port
    assert (await asyncio.to_thread(_not_after, port) - time.time()) / 86400 > 300
    sim.set_fault("hub", "cert_expiry", days=5)
    await asyncio.sleep(0.1)
    days = (await asyncio.to_thread(_not_after, port) - time.time()) / 86400
    assert 4.9 < days < 5.1
    assert await _health(sim, "hub") == "ok"


async def test_hub_down_takes_descendants(sim: Simulator) -> None:
    sim.set_fault("hub", "hub_down")
    await asyncio.sleep(0.05)
    assert [await _health(sim, s) for s in ("hub", "leaf", "deep", "other")] == [
        "ConnectError", "ConnectError", "ConnectError", "ok"]
    sim.clear_fault(site="hub")
    await asyncio.sleep(0.1)
    assert await _health(sim, "deep") == "ok"


async def test_scenario_timing_and_random(sim: Simulator) -> None:
    scenario = parse_scenario({
        "fault": [{"kind": "outage", "site": "other", "start": "0.2s", "duration": "0.4s"},
                  {"kind": "slow", "site": "nowhere"}],
    })
    sites = list(sim.sites.values())
    async with Simulator(sites, scenario=scenario, seed=9) as scripted:
        assert await _health(scripted, "other") == "ok"
        await asyncio.sleep(0.3)
        assert await _health(scripted, "other") == "ConnectError"
        await asyncio.sleep(0.5)
        assert await _health(scripted, "other") == "ok"
        assert any("nowhere" in w for w in scripted.warnings)


async def test_random_faults(sim: Simulator) -> None:
    scenario = parse_scenario({"random": {"rate": 36000, "seed": 1, "min_duration": "1s",
                                          "max_duration": "2s", "kinds": ["outage", "slow"]}})
    assert scenario.random is not None
    first = scenario.random.draw(["a", "b"], 5, 60)
    assert first == scenario.random.draw(["a", "b"], 5, 60) and len(first) > 300
    assert first != scenario.random.draw(["a", "b"], 6, 60)
    async with Simulator(list(sim.sites.values()), scenario=scenario, seed=2) as noisy:
        await asyncio.sleep(0.6)
        assert {af.fault.kind for af in noisy.active_faults()} <= {FaultKind.OUTAGE, FaultKind.SLOW}
        assert noisy.active_faults()


async def test_admin_endpoint(sim: Simulator, tmp_path: Path) -> None:
    admin = await start_admin(sim)
    try:
        async with httpx.AsyncClient(base_url=str(sim.admin_url)) as client:
            made = await client.post("/faults", json={"site": "leaf", "kind": "outage", "duration": "1m"})
            assert made.status_code == 201
            listed = (await client.get("/faults")).json()
            assert listed[0]["kind"] == "outage" and listed[0]["active"]
            assert await _health(sim, "leaf") == "ConnectError"
            assert (await client.delete(f"/faults/{made.json()['id']}")).json() == {"cleared": 1}
            assert (await client.post("/faults", json={"site": "zz", "kind": "outage"})).status_code == 400
            assert (await client.get("/status")).json()["sites"] == 4
        sim.write_config(tmp_path)
        assert json.loads((tmp_path / "simulator.json").read_text())["admin"] == sim.admin_url
    finally:
        await admin.close()
