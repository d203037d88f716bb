"""The simulator serves every kind of endpoint over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import defusedxml.ElementTree as ET
import httpx
import pytest
from test_sim_support import community, snmp_bulk, snmp_get, v3_user

from bibnet_ops.inventory import load_inventory
from bibnet_ops.model import Device, SecretRef, Site
from bibnet_ops.sim import Simulator

OAI_NS = {"o": "http://www.openarchives.org/OAI/2.0/"}
PAGES = "1.3.6.1.2.1.43.10.2.1.4.1.1"
UPTIME = "1.3.6.1.2.1.1.3.0"


def _sites() -> list[Site]:
    refs = {"community": SecretRef("env:X")}
    v3 = {"auth_key": SecretRef("env:A"), "priv_key": SecretRef("env:P")}
    hub = Site("hub", "Hub", wilaya=31, region="ouest", lat=35.7, lon=-0.63, kind="hub", devices=(
        Device("catalogue", "ils-server", "https://hub.example"),
        Device("oai", "oai-sync", "https://hub.example/cgi-bin/koha/oai.pl"),
        Device("router", "switch", "gw.hub:161", credentials=refs),
        Device("scanner-1", "book-scanner", "s1.hub:161", credentials=refs),
        Device("scanner-2", "book-scanner", "s2.hub:161",
               params={"version": "3", "user": "ops", "auth_protocol": "SHA", "priv_protocol": "AES"},
               credentials=v3),
        Device("scanner-3", "book-scanner", "s3.hub:161", params={"version": "3", "user": "anon"}),
    ))
    leaf = Site("leaf", "Annexe", wilaya=31, region="ouest", lat=35.6, lon=-0.6, parent="hub", kind="annex",
                devices=(
        Device("catalogue", "ils-server", "http://leaf.example"),
        Device("oai", "oai-sync", "http://leaf.example"),
        Device("scanner-1", "book-scanner", "s1.leaf:161", credentials=refs),
    ))
    return [hub, leaf]


@pytest.fixture
async def sim():
    async with Simulator(_sites(), seed=7, always_open=True) as simulator:
        yield simulator


async def test_catalogue_paths(sim: Simulator, tmp_path: Path) -> None:
    sim.write_config(tmp_path)
    base = sim.address("leaf", "catalogue")
    assert base.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=base) as client:
        opac = await client.get("/cgi-bin/koha/opac-main.pl")
        assert opac.status_code == 200 and "Koha" in opac.text and "Annexe" in opac.text
        libs = (await client.get("/api/v1/public/libraries")).json()
        assert isinstance(libs, list) and libs[0]["name"] == "Annexe"
        sru = await client.get("/biblios", params={"version": "1.1", "operation": "explain"})
        assert "explainResponse" in sru.text
        health = (await client.get("/health")).json()
        assert health["status"] == "ok" and health["uptime_s"] > 0
        assert (await client.get("/nope")).status_code == 404
        head = await client.head("/health")
        assert head.status_code == 200 and head.content == b""


async def test_tls_catalogue_uses_written_ca(sim: Simulator, tmp_path: Path) -> None:
    sim.write_config(tmp_path)
    url = sim.address("hub", "catalogue")
    assert url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=str(tmp_path / "secrets" / "ca.pem"))
    async with httpx.AsyncClient(verify=ctx) as client:
        assert (await client.get(url + "/health")).json()["site"] == "hub"


async def test_oai_identify_and_paging(sim: Simulator) -> None:
    url = sim.address("leaf", "oai") + "/cgi-bin/koha/oai.pl"
    async with httpx.AsyncClient() as client:
        ident = ET.fromstring((await client.get(url, params={"verb": "Identify"})).content)
        assert ident.find("o:Identify/o:protocolVersion", OAI_NS).text == "2.0"
        seen: list[str] = []
        params = {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"}
        while True:
            root = ET.fromstring((await client.get(url, params=params)).content)
            seen += [e.text for e in root.iterfind(".//o:header/o:datestamp", OAI_NS)]
            token = root.find(".//o:resumptionToken", OAI_NS)
            if token is None or not token.text:
                break
            params = {"verb": "ListIdentifiers", "resumptionToken": token.text}
        assert len(seen) >= 200 and seen == sorted(seen)
        recs = ET.fromstring((await client.post(url, data={
            "verb": "ListRecords", "metadataPrefix": "oai_dc", "from": seen[-1][:10]})).content)
        assert recs.find(".//o:record/o:metadata", OAI_NS) is not None
        bad = ET.fromstring((await client.get(url, params={"verb": "Nope"})).content)
        assert bad.find("o:error", OAI_NS).get("code") == "badVerb"


async def test_oai_datestamps_advance(sim: Simulator) -> None:
    cat = sim.endpoint("leaf", "oai").koha.catalogue  # type: ignore[attr-defined]
    before, newest = cat.count(sim.clock()), cat.newest(sim.clock())
    later = sim.clock() + 3 * 3600
    assert cat.count(later) > before and cat.newest(later) > newest


async def test_scanner_v2c(sim: Simulator) -> None:
    addr = sim.address("hub", "scanner-1")
    first = await snmp_get(addr, [PAGES, UPTIME, "1.3.6.1.2.1.1.1.0"], community(sim.community))
    assert isinstance(first, dict), first
    assert "scanner" in str(first["1.3.6.1.2.1.1.1.0"]) and int(first[UPTIME]) > 0
    sc = sim.endpoint("hub", "scanner-1").scanner  # type: ignore[attr-defined]
    assert sc.pages(sim.clock() + 3600) - int(first[PAGES]) in range(110, 310)
    assert await snmp_get(addr, [PAGES], community("wrong"), timeout=0.3) != first


async def test_switch_if_mib(sim: Simulator) -> None:
    rows = await snmp_bulk(sim.address("hub", "router"), "1.3.6.1.2.1.2.2.1.2", community(sim.community), 5)
    assert isinstance(rows, list)
    assert [str(v) for _, v in rows] == ["uplink", "lan1", "lan2", "lan3", "lan4"]
    got = await snmp_get(sim.address("hub", "router"), ["1.3.6.1.2.1.2.2.1.8.1", "1.3.6.1.2.1.2.2.1.14.1"],
                         community(sim.community))
    assert isinstance(got, dict) and int(got["1.3.6.1.2.1.2.2.1.8.1"]) == 1


async def test_scanner_v3_users(sim: Simulator) -> None:
    ok = await snmp_get(sim.address("hub", "scanner-2"), [PAGES],
                        v3_user("ops", sim.v3_auth_key, sim.v3_priv_key))
    assert isinstance(ok, dict) and int(ok[PAGES]) > 0
    bad = await snmp_get(sim.address("hub", "scanner-2"), [PAGES], v3_user("ops", "wrongwrong", "wrongwrong"))
    assert isinstance(bad, str)
    anon = await snmp_get(sim.address("hub", "scanner-3"), [UPTIME], v3_user("anon"))
    assert isinstance(anon, dict)


async def test_written_config_loads(sim: Simulator, tmp_path: Path) -> None:
    sim.write_config(tmp_path)
    inv = load_inventory(tmp_path)
    assert set(inv.sites) == {"hub", "leaf"} and inv.sites["leaf"].parent == "hub"
    dev = {d.id: d for d in inv.sites["hub"].devices}
    assert dev["scanner-1"].address == sim.address("hub", "scanner-1")
    assert dev["scanner-1"].credentials["community"].resolve() == sim.community
    assert dev["scanner-2"].credentials["priv_key"].resolve() == sim.v3_priv_key
    assert dev["oai"].address.endswith("/cgi-bin/koha/oai.pl")
    text = "".join(p.read_text() for p in (tmp_path / "sites").glob("*.toml"))
    assert sim.community not in text and sim.v3_auth_key not in text
    assert json.loads((tmp_path / "simulator.json").read_text())["sites"] == 2
