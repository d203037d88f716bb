"""The snmp probe against agents that answer wrongly on purpose: each failure says what happened.

Every agent is a real UDP socket on 127.0.0.1 (`_snmp_hostile`); the checks of all of them run at once
beside a well-behaved agent, which must answer as fast as when alone.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from _snmp_hostile import OVERSIZED_VALUE, HostileAgent, open_agents

from bibnet_ops.model import CheckSpec, CheckStatus, Sample, SecretRef
from bibnet_ops.probes import snmp
from bibnet_ops.probes._snmp_wire import MAX_REPLY_BYTES

COMMUNITY = "hostile-test-ro"
UPTIME = "1.3.6.1.2.1.1.3.0"
NAME = "1.3.6.1.2.1.1.5.0"
TIMEOUT = 0.6


@pytest.fixture(autouse=True)
def community(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIBNET_HOSTILE_COMMUNITY", COMMUNITY)


def check(agent: HostileAgent, name: str = "name", **params: Any) -> CheckSpec:
    return CheckSpec(
        site_id="hostile",
        device_id=agent.behaviour,
        name=name,
        probe="snmp",
        address=agent.address,
        params=params or {"oid": NAME},
        credentials={"community": SecretRef("env:BIBNET_HOSTILE_COMMUNITY")},
        timeout=TIMEOUT,
    )


async def timed(spec: CheckSpec) -> tuple[Sample, float]:
    started = time.monotonic()
    sample = await snmp.probe(spec)
    return sample, time.monotonic() - started


async def test_every_hostile_agent_gets_its_own_reason_and_none_delays_a_good_one() -> None:
    behaviours = ["silent", "wrong-id", "wrong-community", "garbage", "oversized", "too-big", "gen-err",
                  "no-such-name", "v1", "echo"]
    opened = await open_agents(["good", *behaviours])
    try:
        agents = {agent.behaviour: agent for _, agent in opened}
        good = agents["good"]
        await snmp.probe(check(good))  # opens this loop's SNMP session
        results = await asyncio.gather(timed(check(good)), *(timed(check(agents[b])) for b in behaviours))
    finally:
        for transport, _ in opened:
            transport.close()
    (good_sample, good_time), *bad = results
    got = {b: s for b, (s, _) in zip(behaviours, bad, strict=True)}
    took = {b: t for b, (_, t) in zip(behaviours, bad, strict=True)}
    address = {b: agents[b].address for b in behaviours}

    assert (good_sample.status, good_sample.reason) == (CheckStatus.OK, "scanner-1")
    assert good_time < 0.3, good_time  # not held up by ten bad agents answering at the same time
    assert good_sample.evidence == f"{NAME} = OctetString: scanner-1"
    # the failures that are timeouts end at the check's own timeout, the others at once
    for behaviour, elapsed in took.items():
        assert elapsed < TIMEOUT + 0.3, (behaviour, elapsed)

    def timed_out(behaviour: str, what: str) -> str:
        return f"no valid SNMP answer from {address[behaviour]} within {TIMEOUT:.1f} s ({what})"

    assert got["silent"].reason == (
        f"no SNMP answer from {address['silent']} within {TIMEOUT:.1f} s (agent down or wrong community?)"
    )
    assert got["silent"].evidence == f"asked {NAME}; received no datagram at all"
    assert re.fullmatch(
        re.escape(timed_out("wrong-id", "1 reply to no request of ours: wrong request id ")[:-1]) + r"\d+\)",
        got["wrong-id"].reason,
    ), got["wrong-id"].reason
    assert got["wrong-community"].reason == timed_out("wrong-community", "1 reply with another community than ours")
    assert got["garbage"].reason == timed_out("garbage", "1 unreadable reply")
    size = got["oversized"].evidence.rsplit("reply ", 1)[-1].split(" ")[0]
    assert int(size.replace(",", "")) > OVERSIZED_VALUE
    assert got["oversized"].reason == timed_out(
        "oversized", f"a reply {size} bytes long, over our {MAX_REPLY_BYTES:,}-byte limit"
    )
    assert got["v1"].reason == timed_out("v1", "1 reply in SNMPv1")
    assert got["echo"].reason == timed_out("echo", "1 datagram that was not a response (GetRequestPDU)")
    for behaviour in ("silent", "wrong-id", "wrong-community", "garbage", "oversized", "v1", "echo"):
        assert got[behaviour].status is CheckStatus.CRITICAL, got[behaviour]
    # error statuses come back at once, by name, with the OID they name and what they mean
    assert got["too-big"].reason == (
        f"agent {address['too-big']} answered tooBig (its reply to 1 OID would exceed the agent's message size limit)"
    )
    assert got["gen-err"].reason == (
        f"agent {address['gen-err']} answered genErr for OID {NAME} (general error: the agent failed to read the value)"
    )
    assert got["no-such-name"].reason == (
        f"agent {address['no-such-name']} answered noSuchName for OID {NAME} "
        "(SNMPv1-style answer: the agent has no such OID)"
    )
    assert got["gen-err"].evidence == f"response error-status genErr (5), error-index 1; asked {NAME}"
    for behaviour in ("too-big", "gen-err", "no-such-name"):
        assert took[behaviour] < 0.3, (behaviour, took[behaviour])
    # a community is a secret: never in a reason or an evidence
    for sample in (good_sample, *got.values()):
        assert COMMUNITY not in sample.reason + sample.evidence
        assert "not-yours" not in sample.reason + sample.evidence


async def test_a_wrong_id_agent_stays_explained_while_a_late_reply_is_told_apart() -> None:
    opened = await open_agents(["wrong-id", "good"])
    try:
        (_, wrong), (_, good) = opened
        first = await snmp.probe(check(wrong))
        second = await snmp.probe(check(wrong))  # each timeout counts only what arrived during it
        fine = await snmp.probe(check(good))
    finally:
        for transport, _ in opened:
            transport.close()
    for sample in (first, second):
        assert "(1 reply to no request of ours: wrong request id " in sample.reason, sample.reason
    assert fine.status is CheckStatus.OK


async def test_evidence_shows_the_varbinds_read_also_when_they_are_wrong() -> None:
    opened = await open_agents(["good"])
    try:
        (_, good), = opened
        uptime = await snmp.probe(check(good, "uptime", oid=UPTIME))
        not_counter = await snmp.probe(check(good, "pages", mode="rate", oid=NAME))
    finally:
        for transport, _ in opened:
            transport.close()
    assert (uptime.status, uptime.reason) == (CheckStatus.OK, "up 42 s")
    assert uptime.evidence == f"{UPTIME} = TimeTicks: 4200"
    assert not_counter.status is CheckStatus.UNKNOWN
    assert not_counter.reason == f"OID {NAME} holds OctetString, not a counter"
    assert not_counter.evidence == f"{NAME} = OctetString: scanner-1\n{UPTIME} = TimeTicks: 4200"
