"""Hostile simulated devices, each observed over real sockets by the probes a collector runs.

For every behaviour: what goes over the wire (raw sockets where the probe would hide it), the state
and reason a technician sees, and that the check ends within its own timeout.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api
from pysnmp.proto.api import v2c

from bibnet_ops.model import CheckSpec, CheckStatus, Device, SecretRef, Site
from bibnet_ops.probes import oaipmh
from bibnet_ops.probes._httpclient import close_clients
from bibnet_ops.probes.http import probe as http_probe
from bibnet_ops.sim import FaultKind, Simulator, load_scenario, parse_scenario
from bibnet_ops.sim._faults import ScenarioError
from bibnet_ops.sim._http import HttpServer

ROOT = Path(__file__).resolve().parents[1]
OPAC = "/cgi-bin/koha/opac-main.pl"
UPTIME = "1.3.6.1.2.1.1.3.0"


def _site(sid: str) -> Site:
    refs = {"community": SecretRef("env:X")}
    return Site(sid, sid.title(), wilaya=31, region="ouest", lat=35.7, lon=-0.6, devices=(
        Device("catalogue", "ils-server", f"http://{sid}.example"),
        Device("oai", "oai-sync", f"http://{sid}.example"),
        Device("scanner-1", "book-scanner", f"s1.{sid}:161", credentials=refs),
    ))


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator([_site("bad"), _site("good")], seed=5, always_open=True) as simulator:
        yield simulator
    await close_clients()
    oaipmh.forget_repositories()


def _opac(sim: Simulator, site: str = "bad", timeout: float = 2.0, **params: Any) -> CheckSpec:
    return CheckSpec(site, "catalogue", "opac", "http", sim.address(site, "catalogue"),
                     params={"path": OPAC, "body_contains": "Koha", **params}, timeout=timeout)


def _port(sim: Simulator, site: str = "bad") -> str:
    return sim.address(site, "catalogue").removeprefix("http://")


async def _timed(spec: CheckSpec) -> tuple[Any, float]:
    started = time.monotonic()
    sample = await http_probe(spec)
    return sample, time.monotonic() - started


async def _raw_get(port: int, target: str = OPAC, wait: float = 1.0) -> bytes:
    """Everything the server sends for one request until it closes or falls silent for `wait` s."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), wait):
            data += chunk
    except TimeoutError:
        pass
    finally:
        writer.close()
    return data


# --- HTTP ---------------------------------------------------------------------------------------

async def test_trickle_ends_at_the_check_timeout_with_what_arrived(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.TRICKLE, device="catalogue", rate=4)
    sample, elapsed = await _timed(_opac(sim, timeout=1.5))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason.startswith(f"reply from {_port(sim)} incomplete after 1.5 s: only ")
    assert "the device sends too slowly" in sample.reason
    assert 1.4 < elapsed < 2.2, elapsed
    good, _ = await _timed(_opac(sim, "good"))
    assert good.status is CheckStatus.OK, good.reason


async def test_endless_body_is_read_up_to_max_body_only(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.ENDLESS_BODY, device="catalogue")
    sample, elapsed = await _timed(_opac(sim, max_body=65536))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == f"GET {OPAC}: body lacks 'Koha' (only the first 65536 bytes were read)"
    assert elapsed < 2.0


async def test_lying_content_length_names_what_was_announced(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.LYING_LENGTH, device="catalogue", extra=1000)
    raw = await _raw_get(sim.endpoint("bad", "catalogue").port)
    head, _, body = raw.partition(b"\r\n\r\n")
    announced = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.startswith(b"Content-Length")))
    assert announced == len(body) + 1000
    sample, _ = await _timed(_opac(sim))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == (f"{_port(sim)} closed the connection mid-reply: {len(body)} of the {announced} "
                             "body bytes it announced")


async def test_not_http_quotes_what_the_device_said(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.NOT_HTTP, device="catalogue")
    sample, _ = await _timed(_opac(sim))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == f"{_port(sim)} does not speak HTTP: it answered 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3'"


async def test_huge_headers_are_refused(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.HUGE_HEADERS, device="catalogue", count=20_000)
    sample, elapsed = await _timed(_opac(sim))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == f"reply header from {_port(sim)} too large (over 100 KiB), refused"
    assert elapsed < 2.0


async def test_hang_after_accept_is_a_blackhole_outage(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.OUTAGE, device="catalogue", mode="blackhole")
    sample, elapsed = await _timed(_opac(sim, timeout=1.0))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == f"no answer within 1.0 s from {_port(sim)}"
    assert elapsed < 1.5


async def test_keepalive_close_after_every_reply_without_saying_so(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.KEEPALIVE_CLOSE, device="catalogue")
    raw = await _raw_get(sim.endpoint("bad", "catalogue").port, wait=2.0)
    assert b"Connection: keep-alive" in raw and b"Connection: close" not in raw  # then it closed: read ended
    spec = _opac(sim)
    samples = [await http_probe(spec) for _ in range(20)]
    assert all(s.status is CheckStatus.OK for s in samples), {s.reason for s in samples}


async def test_keepalive_close_when_idle_like_apache(sim: Simulator) -> None:
    """An Apache-like idle timer (0.3 s here, 5 s in Apache): the connection closes once idle that long."""
    sim.set_fault("bad", FaultKind.KEEPALIVE_CLOSE, device="catalogue", idle=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.endpoint("bad", "catalogue").port)
    try:
        writer.write(f"GET {OPAC} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Connection: keep-alive" in head
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.startswith(b"Content-Length")))
        await reader.readexactly(length)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(1), 3.0) == b""  # closed without a word
        assert 0.25 < time.monotonic() - started < 1.5
    finally:
        writer.close()
    spec = _opac(sim)
    statuses = []
    for age in (0.1, 0.28, 0.3, 0.32, 0.5):
        statuses.append((await http_probe(spec)).status)
        await asyncio.sleep(age)
    statuses.append((await http_probe(spec)).status)
    assert statuses == [CheckStatus.OK] * 6


async def test_keepalive_race_every_reused_request_is_resent(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.KEEPALIVE_CLOSE, device="catalogue", idle=0.0, race=True)
    server = sim.endpoint("bad", "catalogue").server
    assert isinstance(server, HttpServer)
    spec = _opac(sim)
    samples = [await http_probe(spec) for _ in range(6)]
    assert all(s.status is CheckStatus.OK for s in samples), {s.reason for s in samples}
    assert server.requests == 6
    # polls 2, 4 and 6 met the race on the pooled connection and were resent; the connection of a
    # resend is closed after it, so polls 3 and 5 opened a new one
    assert server.dropped == 3


async def test_keepalive_race_on_oai_pages(sim: Simulator) -> None:
    """The issue's case: the sync-lag check's later pages go out on the connection the server closes."""
    sim.set_fault("bad", FaultKind.KEEPALIVE_CLOSE, device="oai", idle=0.0, race=True)
    spec = CheckSpec("bad", "oai", "sync-lag", "oaipmh", sim.address("bad", "oai"),
                     params={"mode": "lag", "window_days": 3650}, timeout=10.0)
    server = sim.endpoint("bad", "oai").server
    assert isinstance(server, HttpServer)
    sample = await oaipmh.probe(spec)
    assert sample.status is CheckStatus.OK, sample.reason
    # Identify opened the connection; the ListIdentifiers after it met the race and were resent
    assert server.dropped >= 1
    assert server.requests == 1 + sample.values["requests"]  # each answered once: Identify, then the lists


async def test_endless_resumption_tokens_stop_at_max_pages(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.ENDLESS_TOKENS, device="oai")
    spec = CheckSpec("bad", "oai", "sync-lag", "oaipmh", sim.address("bad", "oai"),
                     params={"mode": "lag", "max_requests": 5}, timeout=10.0)
    started = time.monotonic()
    sample = await oaipmh.probe(spec)
    assert time.monotonic() - started < 10.0
    assert sample.status is CheckStatus.OK, sample.reason
    assert "stopped after 5 requests (max_requests)" in sample.reason, sample.reason
    assert sample.values["requests"] == 5.0


async def test_hostile_fault_clears(sim: Simulator) -> None:
    fid = sim.set_fault("bad", FaultKind.NOT_HTTP, device="catalogue")
    assert (await http_probe(_opac(sim))).status is CheckStatus.CRITICAL
    sim.clear_fault(fid)
    await close_clients()
    assert (await http_probe(_opac(sim))).status is CheckStatus.OK


# --- SNMP ---------------------------------------------------------------------------------------

def _get_request(community: str, request_id: int) -> bytes:
    pmod = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = pmod.GetRequestPDU()
    pmod.apiPDU.set_defaults(pdu)
    pmod.apiPDU.set_request_id(pdu, request_id)
    pmod.apiPDU.set_varbinds(pdu, [(v2c.ObjectIdentifier(UPTIME), v2c.Null(""))])
    message = pmod.Message()
    pmod.apiMessage.set_defaults(message)
    pmod.apiMessage.set_community(message, community)
    pmod.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def _ask(sim: Simulator, site: str, request_id: int) -> bytes:
    port = int(sim.address(site, "scanner-1").rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(_get_request(sim.community, request_id), ("127.0.0.1", port))
        return sock.recv(65535)


def _request_id(reply: bytes) -> int:
    pmod = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    message, _ = decoder.decode(reply, asn1Spec=pmod.Message())
    return int(pmod.apiPDU.get_request_id(pmod.apiMessage.get_pdu(message)))


async def test_wrong_request_id(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.WRONG_REQUEST_ID, device="scanner-1")
    bad = await asyncio.to_thread(_ask, sim, "bad", 4242)
    good = await asyncio.to_thread(_ask, sim, "good", 4242)
    assert _request_id(good) == 4242
    assert _request_id(bad) != 4242


async def test_oversized_value(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.OVERSIZED_VALUE, device="scanner-1", size=60_000)
    bad = await asyncio.to_thread(_ask, sim, "bad", 7)
    assert len(bad) > 60_000
    assert _request_id(bad) == 7
    assert len(await asyncio.to_thread(_ask, sim, "good", 7)) < 200


async def test_snmp_kind_on_an_http_device_is_skipped_with_a_warning(sim: Simulator) -> None:
    sim.set_fault("bad", FaultKind.WRONG_REQUEST_ID, device="catalogue")
    assert "wrong_request_id on bad/catalogue: the target has no v1/v2c SNMP agent, skipped" in sim.warnings


# --- scenario files -----------------------------------------------------------------------------

def test_shipped_hostile_scenario_has_one_of_each() -> None:
    scenario = load_scenario(ROOT / "config" / "scenarios" / "hostile.toml")
    kinds = {f.kind for f in scenario.faults}
    assert {FaultKind.TRICKLE, FaultKind.ENDLESS_BODY, FaultKind.LYING_LENGTH, FaultKind.NOT_HTTP,
            FaultKind.HUGE_HEADERS, FaultKind.KEEPALIVE_CLOSE, FaultKind.ENDLESS_TOKENS,
            FaultKind.WRONG_REQUEST_ID, FaultKind.OVERSIZED_VALUE, FaultKind.OUTAGE, FaultKind.GARBAGE,
            FaultKind.COUNTER_WRAP, FaultKind.REBOOT} <= kinds
    sites = [f.site for f in scenario.faults]
    for site in sites:
        assert (ROOT / "config" / "sites" / f"{site}.toml").exists(), site


@pytest.mark.parametrize(("entry", "message"), [
    ({"kind": "trickle", "site": "x", "rate": 0}, "rate must be a number from 0.01"),
    ({"kind": "huge_headers", "site": "x", "count": "many"}, "count must be a number"),
    ({"kind": "oversized_value", "site": "x", "size": 70_000}, "size must be a number from 1 to 65000"),
    ({"kind": "keepalive_close", "site": "x", "race": "yes"}, "race must be true or false"),
    ({"kind": "keepalive_close", "site": "x", "idle": "soon"}, "not a duration"),
    ({"kind": "not_http", "site": "x", "rate": 3}, "unknown key 'rate' for a not_http fault"),
])
def test_bad_hostile_parameters_are_named(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario({"fault": [entry]}, "hostile.toml")
