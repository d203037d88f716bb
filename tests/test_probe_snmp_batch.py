"""Coalesced SNMP GETs, counted at the agent: checks of one device polled together send one request.

Requests are counted where they arrive: Net-SNMP's own snmpInPkts counter (1.3.6.1.2.1.11.1.0), the
datagrams the simulator's agent receives, or a silent UDP socket standing in for a dead agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import selectors
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from _snmpd import PRINTER_MIB, SnmpAgent, run_snmpd
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from bibnet_ops.engine import Engine
from bibnet_ops.inventory import load_inventory
from bibnet_ops.model import CheckSpec, CheckStatus, Sample, SecretRef
from bibnet_ops.probes import _snmp_batch, _snmp_session, snmp
from bibnet_ops.probes._snmp_rate import FIRST_READING
from bibnet_ops.sim import Simulator
from bibnet_ops.sim._mib import MibView
from bibnet_ops.sim._snmp import SnmpConditions, V2cAgent, answer_v2c

COMMUNITY = "bib-ro-batch"
USER, AUTH_KEY, PRIV_KEY = "bibnet", "auth-Oran-2026", "priv-Oran-2026"
PAGES = f"{PRINTER_MIB}.10.2.1.4.1.1"
SYS_UPTIME = snmp.SYS_UPTIME
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SNMP_IN_PKTS = "1.3.6.1.2.1.11.1.0"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def agent() -> Iterator[SnmpAgent]:
    with run_snmpd(community=COMMUNITY, users={USER: ("SHA", AUTH_KEY, "AES", PRIV_KEY)}) as running:
        yield running


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIBNET_B_COMMUNITY", COMMUNITY)
    monkeypatch.setenv("BIBNET_B_AUTH", AUTH_KEY)
    monkeypatch.setenv("BIBNET_B_PRIV", PRIV_KEY)
    snmp.forget_baselines()


def spec(address: str, name: str, timeout: float = 2.0, device: str = "scanner-1", **params: Any) -> CheckSpec:
    return CheckSpec(
        site_id="bplp-31",
        device_id=device,
        name=name,
        probe="snmp",
        address=address,
        params=params,
        credentials={
            "community": SecretRef("env:BIBNET_B_COMMUNITY"),
            "auth_key": SecretRef("env:BIBNET_B_AUTH"),
            "priv_key": SecretRef("env:BIBNET_B_PRIV"),
        },
        timeout=timeout,
    )


def uptime_check(address: str, **kw: Any) -> CheckSpec:
    return spec(address, "uptime", oids=[SYS_UPTIME], **kw)


def pages_check(address: str, **kw: Any) -> CheckSpec:
    return spec(address, "pages", mode="rate", oid=PAGES, per=3600, **kw)


async def requests_during(agent: SnmpAgent, checks: list[CheckSpec], together: bool = True) -> tuple[int, list[Sample]]:
    """Run the checks (at once, or one after the other) and count the requests snmpd received meanwhile."""
    counter = spec(agent.address, "in-pkts", oid=SNMP_IN_PKTS)
    before = await snmp.probe(counter)
    if together:
        samples = list(await asyncio.gather(*(snmp.probe(c) for c in checks)))
    else:
        samples = [await snmp.probe(c) for c in checks]
    after = await snmp.probe(counter)
    assert before.value is not None and after.value is not None, (before, after)
    return int(after.value - before.value) - 1, samples  # snmpd counts the second reading itself


async def test_two_checks_of_one_device_polled_together_send_one_request(agent: SnmpAgent) -> None:
    agent.set(PAGES, "counter", 123_456)
    checks = [uptime_check(agent.address), pages_check(agent.address)]
    sent, (uptime, pages) = await requests_during(agent, checks)
    assert sent == 1
    assert uptime.status is CheckStatus.OK and uptime.reason.startswith("up ")
    assert uptime.value is not None and 0 <= uptime.value < 3600
    assert (pages.status, pages.reason, pages.values["total"]) == (CheckStatus.OK, FIRST_READING, 123_456.0)
    assert pages.values["uptime"] == pytest.approx(uptime.value, abs=0.05)
    # one after the other, each check is its own request
    agent.set(PAGES, "counter", 123_466)
    sent, (_, pages) = await requests_during(agent, checks, together=False)
    assert sent == 2
    assert pages.values["total"] == 123_466.0 and pages.status is CheckStatus.OK


async def test_many_checks_split_into_pdus_of_bounded_size(agent: SnmpAgent) -> None:
    oids = [f"1.3.6.1.2.1.1.{i}.0" for i in (1, 4, 5, 6)] + [SYS_UPTIME]
    checks = [spec(agent.address, f"c{i}", oids=[oids[i % 5], f"{PRINTER_MIB}.99.{i}"]) for i in range(30)]
    sent, samples = await requests_during(agent, checks)
    # 5 system OIDs + 30 distinct missing ones = 35 varbinds: two PDUs of at most 20
    assert _snmp_batch.MAX_VARBINDS == 20
    assert sent == 2
    assert all(s.status is CheckStatus.OK for i, s in enumerate(samples) if i % 5 != 4), samples
    assert samples[1].reason == "noc@example.dz" and samples[3].reason == "Oran test bench"


async def test_a_missing_oid_fails_only_the_check_that_asked_for_it(agent: SnmpAgent) -> None:
    agent.unset(PAGES)
    try:
        location_check = spec(agent.address, "loc", oid="1.3.6.1.2.1.1.6.0")
        checks = [uptime_check(agent.address), pages_check(agent.address), location_check]
        sent, (uptime, pages, location) = await requests_during(agent, checks)
    finally:
        agent.set(PAGES, "counter", 1)
    assert sent == 1
    assert uptime.status is CheckStatus.OK and uptime.reason.startswith("up ")
    assert (pages.status, pages.reason) == (CheckStatus.UNKNOWN, f"OID {PAGES} not present on device")
    assert (location.status, location.reason) == (CheckStatus.OK, "Oran test bench")


async def test_v3_checks_of_one_user_share_a_request(agent: SnmpAgent) -> None:
    v3 = {"version": "3", "user": USER, "auth_protocol": "SHA", "priv_protocol": "AES"}
    agent.set(PAGES, "counter", 5_000)
    name_check = spec(agent.address, "name", oid=SYS_NAME, **v3)
    checks = [uptime_check(agent.address, **v3), pages_check(agent.address, **v3), name_check]
    await snmp.probe(checks[0])  # the first v3 request also discovers the agent's engine id and clock
    snmp.forget_baselines()
    sent, (uptime, pages, name) = await requests_during(agent, checks)
    assert sent == 1
    assert uptime.status is CheckStatus.OK and uptime.reason.startswith("up ")
    assert (pages.status, pages.values["total"]) == (CheckStatus.OK, 5_000.0)
    assert name.status is CheckStatus.OK and name.reason
    # a v2c check of the same agent is another request: credentials are part of what is shared
    sent, samples = await requests_during(agent, [*checks[:2], uptime_check(agent.address)])
    assert sent == 2 and all(s.status is CheckStatus.OK for s in samples), samples


class _SilentAgent(asyncio.DatagramProtocol):
    """A UDP socket that counts the requests it gets and never answers (a dead agent, a wrong community)."""

    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1


async def test_a_timeout_reaches_every_check_each_with_its_own_reason() -> None:
    loop = asyncio.get_running_loop()
    silent = _SilentAgent()
    transport, _ = await loop.create_datagram_endpoint(lambda: silent, local_addr=("127.0.0.1", 0))
    address = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    try:
        # open this loop's SNMP engine and the agent's target first, and prime both checks: a target still being
        # created (address lookup in a thread) could let one GET leave in a later loop turn on a busy machine
        await snmp.probe(spec(address, "warm", timeout=0.1, oid=SYS_UPTIME))
        await snmp.probe(uptime_check(address, timeout=0.3))
        await snmp.probe(pages_check(address, timeout=0.6))
        await asyncio.sleep(0.2)  # the warm-up datagrams are counted before the count starts
        silent.received = 0

        async def timed(check: CheckSpec) -> tuple[Sample, float]:
            started = time.monotonic()
            sample = await snmp.probe(check)
            return sample, time.monotonic() - started

        (short, t_short), (long, t_long) = await asyncio.gather(
            timed(uptime_check(address, timeout=0.3)), timed(pages_check(address, timeout=0.6))
        )
    finally:
        transport.close()
    assert silent.received == 1
    assert short.status is CheckStatus.CRITICAL and long.status is CheckStatus.CRITICAL
    assert short.reason == f"no SNMP answer from {address} within 0.3 s (agent down or wrong community?)"
    assert long.reason == f"no SNMP answer from {address} within 0.6 s (agent down or wrong community?)"
    # each check gave up at its own timeout, not at the other's
    assert 0.28 < t_short < t_long - 0.2, (t_short, t_long)
    assert 0.58 < t_long < 1.0, t_long
    # three timeouts, one agent: one small v1arch transport target for it (no engine configuration)
    session = _snmp_session._session
    assert session is not None
    port = int(address.rsplit(":", 1)[1])
    assert [key for key in session.targets if key[1] == port] == [("127.0.0.1", port)]


class _SmallAgent(V2cAgent):
    """The simulator's v2c agent on a device whose buffer fits two varbinds: longer GETs get tooBig."""

    def __init__(self, view: MibView) -> None:
        super().__init__(view, COMMUNITY, SnmpConditions())
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        pmod = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
        request, _ = decoder.decode(data, asn1Spec=pmod.Message())
        if len(pmod.apiPDU.get_varbinds(pmod.apiMessage.get_pdu(request))) <= 2:
            super().datagram_received(data, addr)
            return
        response = pmod.apiMessage.get_response(request)
        pdu = pmod.apiMessage.get_pdu(response)
        pmod.apiPDU.set_error_status(pdu, 1)  # tooBig
        pmod.apiPDU.set_error_index(pdu, 0)
        assert self.transport is not None
        self.transport.sendto(encoder.encode(response), addr)


async def test_an_error_status_on_a_shared_request_is_resolved_per_check() -> None:
    view = MibView({
        (1, 3, 6, 1, 2, 1, 1, 3, 0): lambda now: ("ticks", 4200),
        (1, 3, 6, 1, 2, 1, 1, 5, 0): lambda now: ("str", "scanner-1"),
        (1, 3, 6, 1, 2, 1, 1, 6, 0): lambda now: ("str", "Oran"),
    })
    loop = asyncio.get_running_loop()
    small = _SmallAgent(view)
    transport, _ = await loop.create_datagram_endpoint(lambda: small, local_addr=("127.0.0.1", 0))
    address = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    try:
        checks = [uptime_check(address, timeout=1.0), spec(address, "name", timeout=1.0, oid=SYS_NAME),
                  spec(address, "too-many", timeout=1.0, oids=[SYS_UPTIME, SYS_NAME, "1.3.6.1.2.1.1.6.0"])]
        uptime, name, too_many = await asyncio.gather(*(snmp.probe(c) for c in checks))
    finally:
        transport.close()
    # the shared GET (3 OIDs) got tooBig; each check was then asked alone and got its own answer
    assert small.received == 4
    assert (uptime.status, uptime.reason) == (CheckStatus.OK, "up 42 s")
    assert (name.status, name.reason) == (CheckStatus.OK, "scanner-1")
    assert too_many.status is CheckStatus.UNKNOWN
    assert too_many.reason == (
        f"agent {address} answered tooBig (its reply to 3 OIDs would exceed the agent's message size limit)"
    )


# --- the engine and the simulator: checks of a device fall due together and share requests ---------


@pytest.fixture
async def sim_net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Simulator, Path]]:
    shipped = load_inventory(REPO / "config")
    sim = Simulator([shipped.sites["bna"], shipped.sites["bplp-31"]], seed=3, always_open=True)
    async with sim:
        config = sim.write_config(tmp_path / "config")
        monkeypatch.chdir(tmp_path)  # secrets are file: references relative to the config dir
        try:
            yield sim, config
        finally:
            snmp.close()


async def test_engine_polls_a_scanner_with_one_request_per_round(sim_net: tuple[Simulator, Path]) -> None:
    sim, config = sim_net
    inventory = load_inventory(config)
    scanners = ("scanner-1", "scanner-2")
    checks = [dataclasses.replace(c, interval=0.4, retry_interval=0.4, timeout=1.0)
              for c in inventory.checks if c.site_id == "bplp-31" and c.device_id in scanners]
    assert sorted(c.name for c in checks) == ["pages", "pages", "uptime", "uptime"]
    received = dict.fromkeys(scanners, 0)
    for device in scanners:
        agent = cast(V2cAgent, sim.endpoint("bplp-31", device).transport.get_protocol())
        forward = agent.datagram_received

        def counting(data: bytes, addr: tuple[str, int], device: str = device, forward: Any = forward) -> None:
            received[device] += 1
            forward(data, addr)

        agent.datagram_received = counting  # type: ignore[method-assign]
    await _snmp_session.open_session()  # the engine's start-up is not the agents' time
    samples: list[Sample] = []
    engine = Engine(inventory, checks, first_spread=0.4, seed=7)
    engine.subscribe(lambda e: samples.append(e) if isinstance(e, Sample) else None)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(2.0)
    engine.stop()
    await task
    for device in scanners:
        mine = [s for s in samples if s.check_id.startswith(f"bplp-31/{device}/")]
        uptime = [s for s in mine if s.check_id.endswith("/uptime")]
        pages = [s for s in mine if s.check_id.endswith("/pages")]
        assert len(uptime) >= 3 and abs(len(uptime) - len(pages)) <= 1, mine
        assert all(s.status is CheckStatus.OK for s in mine), mine
        assert uptime[0].reason.startswith("up ") and pages[0].reason == FIRST_READING
        assert pages[-1].reason.endswith(" pages/h"), pages[-1]
        # one request per polling round of the device, not one per check
        assert received[device] == max(len(uptime), len(pages)), (device, received, len(uptime), len(pages))


async def test_a_changed_secret_file_is_read_again_after_its_ttl(
    agent: SnmpAgent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snmp, "_SECRET_FILE_TTL", 1.0)
    await snmp.probe(uptime_check(agent.address))  # opens this loop's SNMP engine
    secret = tmp_path / "community"
    secret.write_text(COMMUNITY + "\n", encoding="utf-8")
    check = dataclasses.replace(uptime_check(agent.address), credentials={"community": SecretRef(f"file:{secret}")})
    assert (await snmp.probe(check)).status is CheckStatus.OK
    secret.write_text("rotated-elsewhere\n", encoding="utf-8")
    assert (await snmp.probe(check)).status is CheckStatus.OK  # read at most every second
    await asyncio.sleep(1.05)
    stale = await snmp.probe(dataclasses.replace(check, timeout=0.5))
    assert stale.status is CheckStatus.CRITICAL and stale.reason.endswith("(agent down or wrong community?)")


class _ThreadedAgents:
    """The simulator's v2c answering code on many UDP ports, served by a thread: it answers while the loop is busy."""

    def __init__(self, count: int) -> None:
        view = MibView({(1, 3, 6, 1, 2, 1, 1, 3, 0): lambda now: ("ticks", 4200)})
        self.answer = lambda data: answer_v2c(view, COMMUNITY.encode(), data)
        self.selector = selectors.DefaultSelector()
        self.sockets = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.sockets.append(sock)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{s.getsockname()[1]}" for s in self.sockets]

    def _serve(self) -> None:
        while not self.stopping.is_set():
            for key, _ in self.selector.select(0.05):
                sock = cast(socket.socket, key.fileobj)
                with contextlib.suppress(OSError):
                    data, peer = sock.recvfrom(65535)
                    reply = self.answer(data)
                    if reply is not None:
                        sock.sendto(reply, peer)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(2)
        for sock in self.sockets:
            sock.close()
        self.selector.close()


async def test_replies_are_read_in_bursts_when_the_loop_is_busy() -> None:
    """50 agents answer while every loop iteration costs 10 ms of other work: the replies are read in bursts.

    asyncio reads one datagram per loop iteration, so read that way 50 replies take 50 iterations (here
    half a second of other work) before the last check learns its answer.
    """
    agents = _ThreadedAgents(50)
    busy = True
    iterations = 0

    async def other_work() -> None:
        nonlocal iterations
        while busy:
            iterations += 1
            time.sleep(0.01)
            await asyncio.sleep(0)

    try:
        checks = [uptime_check(a, timeout=3.0, device=f"scanner-{i}") for i, a in enumerate(agents.addresses)]
        await asyncio.gather(*(snmp.probe(c) for c in checks))  # the engine and every target opened
        work = asyncio.create_task(other_work())
        try:
            before = iterations
            samples = await asyncio.gather(*(snmp.probe(c) for c in checks))
            spent = iterations - before
        finally:
            busy = False
            await work
    finally:
        agents.close()
    assert all((s.status, s.reason) == (CheckStatus.OK, "up 42 s") for s in samples), samples
    assert spent < 35, spent
