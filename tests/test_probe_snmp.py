"""The snmp probe against a real Net-SNMP agent on 127.0.0.1: get, rate, walk, v3, failures."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _snmpd import PRINTER_MIB, TEST_ENTERPRISE, SnmpAgent, free_udp_port, run_snmpd

from bibnet_ops.model import CheckSpec, CheckStatus, SecretRef, Thresholds
from bibnet_ops.probes import _snmp_session, _snmp_table, run_probe, snmp
from bibnet_ops.probes._snmp_rate import FIRST_READING, REBOOTED, RESET, UPTIME_WRAP, CounterReading, step, uptime_span

COMMUNITY = "bib-ro-7f3a"
AUTH_KEY = "auth-Oran-2026"
PRIV_KEY = "priv-Oran-2026"
USER = "bibnet"
PAGES = f"{PRINTER_MIB}.10.2.1.4.1.1"
IF_TABLE = f"{TEST_ENTERPRISE}.2.2.1"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"


@pytest.fixture(scope="module")
def agent() -> Iterator[SnmpAgent]:
    users = {
        USER: ("SHA", AUTH_KEY, "AES", PRIV_KEY),
        "bibnet-256": ("SHA-256", AUTH_KEY, "AES-256", PRIV_KEY),
        "bibnet-512": ("SHA-512", AUTH_KEY, "AES-192", PRIV_KEY),
    }
    with run_snmpd(community=COMMUNITY, users=users) as running:
        yield running


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIBNET_T_COMMUNITY", COMMUNITY)
    monkeypatch.setenv("BIBNET_T_AUTH", AUTH_KEY)
    monkeypatch.setenv("BIBNET_T_PRIV", PRIV_KEY)


def spec(address: str, name: str = "c", timeout: float = 2.0, **params: Any) -> CheckSpec:
    thresholds = params.pop("thresholds", Thresholds())
    unit = params.pop("unit", "")
    credentials = {
        "community": SecretRef("env:BIBNET_T_COMMUNITY"),
        "auth_key": SecretRef("env:BIBNET_T_AUTH"),
        "priv_key": SecretRef("env:BIBNET_T_PRIV"),
    }
    credentials.update(params.pop("credentials", {}))
    return CheckSpec(
        site_id="bplp-31",
        device_id="scanner-1",
        name=name,
        probe="snmp",
        address=address,
        params=params,
        credentials=credentials,
        timeout=timeout,
        thresholds=thresholds,
        unit=unit,
    )


# --- get -----------------------------------------------------------------------------------------


async def test_get_sysuptime_reports_uptime(agent: SnmpAgent) -> None:
    sample = await snmp.probe(spec(agent.address, oids=[snmp.SYS_UPTIME]))
    assert sample.status is CheckStatus.OK
    assert sample.reason.startswith("up ")
    assert sample.value is not None and 0 <= sample.value < 3600
    assert sample.values["uptime"] == sample.value
    assert sample.latency is not None and 0 < sample.latency < 1
    assert sample.check_id == "bplp-31/scanner-1/c"


async def test_get_several_oids_in_one_request(agent: SnmpAgent) -> None:
    sample = await snmp.probe(spec(agent.address, oids=["1.3.6.1.2.1.1.6.0", snmp.SYS_UPTIME]))
    assert sample.status is CheckStatus.OK
    assert sample.reason == "Oran test bench"
    assert sample.value is None
    assert "uptime" in sample.values


async def test_get_expect_matches_and_mismatches(agent: SnmpAgent) -> None:
    ok = await snmp.probe(spec(agent.address, oid="1.3.6.1.2.1.1.6.0", expect="Oran test bench"))
    assert ok.status is CheckStatus.OK
    bad = await snmp.probe(spec(agent.address, oid=".1.3.6.1.2.1.1.6.0", expect="Tlemcen"))
    assert bad.status is CheckStatus.CRITICAL
    assert bad.reason == "OID 1.3.6.1.2.1.1.6.0 is Oran test bench, expected 'Tlemcen'"


async def test_get_numeric_value_against_thresholds(agent: SnmpAgent) -> None:
    oid = f"{TEST_ENTERPRISE}.1.1.0"
    agent.set(oid, "gauge", 80)
    th = Thresholds(warning=70, critical=90)
    warn = await snmp.probe(spec(agent.address, oid=oid, thresholds=th))
    assert (warn.status, warn.value, warn.reason) == (CheckStatus.WARNING, 80.0, "80 (warning above 70)")
    agent.set(oid, "gauge", 95)
    crit = await snmp.probe(spec(agent.address, oid=oid, thresholds=th))
    assert crit.status is CheckStatus.CRITICAL
    agent.set(oid, "integer", 3)
    assert (await snmp.probe(spec(agent.address, oid=oid, expect=3))).status is CheckStatus.OK


async def test_missing_oid_is_named(agent: SnmpAgent) -> None:
    sample = await snmp.probe(spec(agent.address, oid="1.3.6.1.2.1.1.99.0"))
    assert sample.status is CheckStatus.UNKNOWN
    assert sample.reason == "OID 1.3.6.1.2.1.1.99.0 not present on device"


async def test_run_probe_dispatches_to_snmp(agent: SnmpAgent) -> None:
    sample = await run_probe(spec(agent.address, oid=snmp.SYS_UPTIME))
    assert sample.status is CheckStatus.OK


# --- failures a technician must understand -------------------------------------------------------


async def test_wrong_community_times_out_with_clear_reason(agent: SnmpAgent) -> None:
    check = spec(agent.address, timeout=0.5, oid=snmp.SYS_UPTIME, credentials={"community": SecretRef("env:X")})
    os.environ["X"] = "not-the-community"
    try:
        started = time.monotonic()
        sample = await snmp.probe(check)
        elapsed = time.monotonic() - started
    finally:
        del os.environ["X"]
    assert sample.status is CheckStatus.CRITICAL
    expected = f"no SNMP answer from {agent.address} within 0.5 s (agent down or wrong community?)"
    assert sample.reason == expected
    assert "not-the-community" not in sample.reason
    assert 0.4 < elapsed < 1.5


async def test_agent_down_times_out() -> None:
    address = f"127.0.0.1:{free_udp_port()}"
    started = time.monotonic()
    sample = await snmp.probe(spec(address, timeout=0.3, oid=snmp.SYS_UPTIME))
    assert time.monotonic() - started < 1.5
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason.startswith(f"no SNMP answer from {address} within 0.3 s")


async def test_missing_secret_names_reference_only(agent: SnmpAgent) -> None:
    check = spec(agent.address, oid=snmp.SYS_UPTIME, credentials={"community": SecretRef("env:BIBNET_NOPE")})
    sample = await snmp.probe(check)
    assert (sample.status, sample.reason) == (CheckStatus.UNKNOWN, "credential env:BIBNET_NOPE not set")


@pytest.mark.parametrize(
    ("params", "address", "fragment"),
    [
        ({"mode": "teleport", "oid": "1.3.6"}, None, "unknown SNMP mode 'teleport'"),
        ({"oid": "sysUpTime.0"}, None, "invalid OID 'sysUpTime.0'"),
        ({}, None, "mode get needs `oid` or `oids`"),
        ({"oid": "1.3.6.1", "version": "1"}, None, None),
        ({"oid": "1.3.6.1", "version": "3"}, None, "SNMPv3 needs a `user` parameter"),
        ({"oid": "1.3.6.1", "version": "3", "user": "u", "auth_protocol": "ROT13"}, None, "unknown auth_protocol"),
        ({"mode": "rate", "oid": "1.3.6.1", "per": "hourly"}, None, "invalid `per`"),
        ({"oid": "1.3.6.1"}, "127.0.0.1:99999", "invalid SNMP address"),
    ],
)
async def test_configuration_errors_are_unknown(
    agent: SnmpAgent, params: dict[str, Any], address: str | None, fragment: str | None
) -> None:
    sample = await snmp.probe(spec(address or agent.address, timeout=0.3, **params))
    if fragment is None:  # v1 is served as v2c; the OID exists
        assert sample.status is not CheckStatus.UNKNOWN or "not present" in sample.reason
        return
    assert sample.status is CheckStatus.UNKNOWN
    assert fragment in sample.reason


# --- SNMPv3 --------------------------------------------------------------------------------------


async def test_v3_authpriv_sha_aes_get(agent: SnmpAgent) -> None:
    check = spec(
        agent.address, version="3", user=USER, auth_protocol="SHA", priv_protocol="AES", oid="1.3.6.1.2.1.1.6.0"
    )
    sample = await snmp.probe(check)
    assert (sample.status, sample.reason) == (CheckStatus.OK, "Oran test bench")


@pytest.mark.parametrize(
    ("user", "auth", "priv"), [("bibnet-256", "SHA256", "AES256"), ("bibnet-512", "SHA512", "AES192")]
)
async def test_v3_authpriv_with_the_stronger_protocols(agent: SnmpAgent, user: str, auth: str, priv: str) -> None:
    check = spec(agent.address, version="3", user=user, auth_protocol=auth, priv_protocol=priv, oid="1.3.6.1.2.1.1.6.0")
    sample = await snmp.probe(check)
    assert (sample.status, sample.reason) == (CheckStatus.OK, "Oran test bench")
    # the same user with the protocols it was not created with is refused, not answered
    wrong = spec(agent.address, version="3", user=user, auth_protocol="SHA", priv_protocol="AES", oid=snmp.SYS_UPTIME)
    assert (await snmp.probe(wrong)).status is not CheckStatus.OK


async def test_v3_wrong_auth_key_reports_usm_error(agent: SnmpAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIBNET_T_AUTH", "wrong-auth-key-123")
    sample = await snmp.probe(spec(agent.address, name="v3auth", version="3", user=USER, oid=snmp.SYS_UPTIME))
    assert sample.status is CheckStatus.UNKNOWN
    assert "Wrong SNMP PDU digest" in sample.reason
    assert "wrong-auth-key-123" not in sample.reason


async def test_v3_wrong_priv_key_times_out(agent: SnmpAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIBNET_T_PRIV", "wrong-priv-key-123")
    check = spec(agent.address, name="v3priv", timeout=0.4, version="3", user=USER, oid=snmp.SYS_UPTIME)
    sample = await snmp.probe(check)
    assert sample.status is CheckStatus.CRITICAL
    assert "wrong v3 user/keys?" in sample.reason


async def test_v3_unknown_user(agent: SnmpAgent) -> None:
    sample = await snmp.probe(spec(agent.address, version="3", user="intruder", oid=snmp.SYS_UPTIME))
    assert sample.status is CheckStatus.UNKNOWN
    assert "Unknown USM user" in sample.reason


# --- counter rates -------------------------------------------------------------------------------


async def _two_polls(agent: SnmpAgent, check: CheckSpec, first: int, second: int, kind: str = "counter") -> tuple:
    agent.set(PAGES, kind, first)
    one = await snmp.probe(check)
    t0 = time.monotonic()
    await asyncio.sleep(0.4)
    agent.set(PAGES, kind, second)
    two = await snmp.probe(check)
    return one, two, time.monotonic() - t0


async def test_rate_first_reading_then_pages_per_hour(agent: SnmpAgent) -> None:
    th = Thresholds(warning=5, critical=0, direction="below")
    check = spec(agent.address, name="pages", mode="rate", oid=PAGES, per=3600, thresholds=th, unit="pages/h")
    snmp.forget_baselines(check.id)
    one, two, elapsed = await _two_polls(agent, check, 88_000, 88_120)
    assert (one.status, one.value, one.reason) == (CheckStatus.OK, None, FIRST_READING)
    assert one.values["total"] == 88_000
    assert two.status is CheckStatus.OK
    expected = 120 / elapsed * 3600
    assert two.value == pytest.approx(expected, rel=0.15)
    assert two.reason.endswith("pages/h")
    assert two.values["total"] == 88_120


async def test_rate_below_threshold_for_an_idle_scanner(agent: SnmpAgent) -> None:
    th = Thresholds(warning=5, critical=0.5, direction="below")
    check = spec(agent.address, name="idle", mode="rate", oid=PAGES, per=3600, thresholds=th, unit="pages/h")
    snmp.forget_baselines(check.id)
    _, two, _ = await _two_polls(agent, check, 500, 500)
    assert (two.status, two.value) == (CheckStatus.CRITICAL, 0.0)
    assert two.reason == "0 pages/h (critical below 0.5 pages/h)"


async def test_rate_survives_32bit_wrap(agent: SnmpAgent) -> None:
    check = spec(agent.address, name="wrap", mode="rate", oid=PAGES, per=1)
    snmp.forget_baselines(check.id)
    _, two, elapsed = await _two_polls(agent, check, 2**32 - 100, 50)
    assert two.status is CheckStatus.OK
    assert two.value == pytest.approx(150 / elapsed, rel=0.15)
    assert "counter wrapped" in two.reason


async def test_rate_counter64_uses_its_width(agent: SnmpAgent) -> None:
    check = spec(agent.address, name="c64", mode="rate", oid=PAGES, per=1)
    snmp.forget_baselines(check.id)
    _, two, elapsed = await _two_polls(agent, check, 2**40, 2**40 + 1000, kind="counter64")
    assert two.value == pytest.approx(1000 / elapsed, rel=0.15)


async def test_rate_restarts_after_device_reboot() -> None:
    with run_snmpd(community=COMMUNITY) as device:
        check = spec(device.address, name="reboot", mode="rate", oid=PAGES, per=3600)
        snmp.forget_baselines(check.id)
        device.set(PAGES, "counter", 5_000)
        # let the agent's uptime grow well past what a fresh start (even on a busy machine) shows, then take
        # the baseline: taken at once, its uptime could equal the restarted agent's
        await asyncio.sleep(1.0)
        first = await snmp.probe(check)
        assert first.reason == FIRST_READING and first.values["uptime"] >= 0.9
        device.restart()  # uptime starts again from zero, the counter from a small value
        device.set(PAGES, "counter", 10)
        after = await snmp.probe(check)
        assert (after.status, after.value, after.reason) == (CheckStatus.OK, None, REBOOTED)
        await asyncio.sleep(0.3)
        device.set(PAGES, "counter", 40)
        again = await snmp.probe(check)
        assert again.value is not None and again.value > 0


async def test_rate_on_a_string_is_unknown(agent: SnmpAgent) -> None:
    sample = await snmp.probe(spec(agent.address, name="str", mode="rate", oid="1.3.6.1.2.1.1.6.0"))
    assert (sample.status, sample.reason) == (
        CheckStatus.UNKNOWN,
        "OID 1.3.6.1.2.1.1.6.0 holds OctetString, not a counter",
    )


# --- walks ---------------------------------------------------------------------------------------


def _fake_switch(agent: SnmpAgent, status: dict[str, int], errors: dict[str, int] | None = None) -> None:
    for index, (name, state) in enumerate(status.items(), start=1):
        agent.set(f"{IF_TABLE}.2.{index}", "string", name)
        agent.set(f"{IF_TABLE}.8.{index}", "integer", state)
        if errors is not None:
            agent.set(f"{IF_TABLE}.14.{index}", "counter", errors[name])


async def test_walk_real_ifoperstatus_on_loopback(agent: SnmpAgent) -> None:
    check = spec(agent.address, mode="walk", oid=IF_OPER_STATUS, names_oid=IF_NAME, interfaces=["lo"])
    sample = await snmp.probe(check)
    assert (sample.status, sample.reason, sample.value) == (CheckStatus.OK, "all 1 up", 0.0)
    assert sample.values == {"lo": 1.0}


async def test_walk_every_interface_agent_sees(agent: SnmpAgent) -> None:
    sample = await snmp.probe(spec(agent.address, mode="walk", oid=IF_OPER_STATUS, names_oid=IF_NAME))
    assert "lo" in sample.values
    down = [name for name, state in sample.values.items() if state != 1]
    assert sample.value == len(down)
    assert sample.status is (CheckStatus.CRITICAL if down else CheckStatus.OK)


async def test_walk_names_the_interface_that_is_down(agent: SnmpAgent) -> None:
    _fake_switch(agent, {"ge-0/0/1": 2, "ge-0/0/2": 1, "ge-0/0/3": 7})
    check = spec(
        agent.address,
        mode="walk",
        oid=f"{IF_TABLE}.8",
        names_oid=f"{IF_TABLE}.2",
        label="ifOperStatus",
        interfaces={"ge-0/0/1": "uplink", "ge-0/0/2": "", "ge-0/0/9": "wifi"},
    )
    sample = await snmp.probe(check)
    assert sample.status is CheckStatus.CRITICAL
    assert sample.value == 1
    assert "uplink ge-0/0/1 is down (ifOperStatus 2)" in sample.reason
    assert "wifi ge-0/0/9 not found in the table" in sample.reason
    assert "ge-0/0/3" not in sample.reason  # not selected


async def test_walk_all_rows_and_empty_table(agent: SnmpAgent) -> None:
    _fake_switch(agent, {"ge-0/0/1": 2, "ge-0/0/2": 1, "ge-0/0/3": 7})
    check = spec(agent.address, mode="walk", oid=f"{IF_TABLE}.8", names_oid=f"{IF_TABLE}.2", label="ifOperStatus")
    sample = await snmp.probe(check)
    assert sample.value == 2
    assert "ge-0/0/3 is lowerLayerDown (ifOperStatus 7)" in sample.reason
    empty = await snmp.probe(spec(agent.address, mode="walk", oid=f"{TEST_ENTERPRISE}.77"))
    assert (empty.status, empty.reason) == (
        CheckStatus.UNKNOWN,
        f"OID {TEST_ENTERPRISE}.77 not present on device (empty walk)",
    )


async def test_walk_rate_sums_error_counters(agent: SnmpAgent) -> None:
    names = {"ge-0/0/1": 1, "ge-0/0/2": 1, "ge-0/0/3": 1}
    _fake_switch(agent, names, {"ge-0/0/1": 10, "ge-0/0/2": 2**32 - 5, "ge-0/0/3": 1_000})
    check = spec(
        agent.address,
        name="errors",
        mode="walk_rate",
        oid=f"{IF_TABLE}.14",
        names_oid=f"{IF_TABLE}.2",
        interfaces=["ge-0/0/1", "ge-0/0/2"],
        per=60,
        thresholds=Thresholds(warning=1000),
    )
    snmp.forget_baselines(check.id)
    first = await snmp.probe(check)
    assert (first.status, first.reason) == (CheckStatus.OK, FIRST_READING)
    t0 = time.monotonic()
    await asyncio.sleep(0.4)
    _fake_switch(agent, names, {"ge-0/0/1": 30, "ge-0/0/2": 15, "ge-0/0/3": 9_000})
    second = await snmp.probe(check)
    elapsed = time.monotonic() - t0
    assert second.value == pytest.approx(40 / elapsed * 60, rel=0.15)
    assert second.values["ge-0/0/1"] == pytest.approx(20 / elapsed * 60, rel=0.15)
    assert second.status is CheckStatus.WARNING
    assert "ge-0/0/2 counter wrapped" in second.reason


# --- engine lifecycle ----------------------------------------------------------------------------


def test_engine_is_reused_per_loop_and_closed_with_it(agent: SnmpAgent) -> None:
    async def twice() -> tuple[object, object]:
        await snmp.probe(spec(agent.address, oid=snmp.SYS_UPTIME))
        first = _snmp_session._session
        await snmp.probe(spec(agent.address, oid=snmp.SYS_UPTIME))
        return first, _snmp_session._session

    a, b = asyncio.run(twice())
    assert a is b and a is not None
    c, _ = asyncio.run(twice())
    assert c is not a
    gc.collect()  # an unclosed socket would raise ResourceWarning as an error here


async def test_concurrent_probes_share_one_engine(agent: SnmpAgent) -> None:
    checks = [spec(agent.address, name=f"c{i}", oid=snmp.SYS_UPTIME) for i in range(40)]
    samples = await asyncio.gather(*(snmp.probe(c) for c in checks))
    assert all(s.status is CheckStatus.OK for s in samples)


# --- pure helpers --------------------------------------------------------------------------------


def test_format_uptime() -> None:
    assert snmp.format_uptime(3 * 86400 + 4 * 3600 + 59) == "up 3 days"
    assert snmp.format_uptime(2 * 3600 + 5 * 60) == "up 2 h 5 min"
    assert snmp.format_uptime(20 * 60 + 10) == "up 20 min"
    assert snmp.format_uptime(40.7) == "up 41 s"


def test_rate_step_rules() -> None:
    base = CounterReading(100, 1000.0, 50.0)
    assert step(None, base, 32).note == FIRST_READING
    grown = step(base, CounterReading(700, 1060.0, 110.5), 32)
    assert grown.rate == pytest.approx(10.0)  # device uptime span (60 s) preferred over our clock
    wrapped = step(CounterReading(2**32 - 10, 1000.0, 0.0), CounterReading(10, 1020.0, 20.0), 32)
    assert (wrapped.increase, wrapped.wrapped) == (20, True)
    assert step(base, CounterReading(5, 3.0, 60.0), 32).note == REBOOTED
    assert step(base, CounterReading(5, 1100.0, 150.0), 64).note == RESET
    no_uptime = CounterReading(100, None, 0.0)
    assert step(no_uptime, CounterReading(50, None, 1.0), 32).note == RESET
    assert step(no_uptime, CounterReading(300, None, 2.0), 32).rate == pytest.approx(100.0)


def test_sysuptime_wrapping_after_497_days_is_no_reboot() -> None:
    # TimeTicks 4294967295 is 497 days 2 h 27 min 52.95 s; 60 s after 42,949,650 s the agent says 37.04 s
    assert UPTIME_WRAP == 2**32 / 100
    before = CounterReading(1_000, 42_949_650.0, 500.0)
    after = CounterReading(1_600, 37.04, 560.0)
    wrapped = step(before, after, 32)
    assert (wrapped.note, wrapped.increase) == ("", 600)
    assert wrapped.rate == pytest.approx(600 / 60.0, rel=1e-3)  # timed by the device's own clock across the wrap
    # a device that really rebooted comes back with an uptime that does not add up to our clock
    assert step(before, CounterReading(5, 20.0, 560.0), 32).note == REBOOTED
    assert step(CounterReading(1_000, 3_600.0, 0.0), CounterReading(1_100, 30.0, 60.0), 32).note == REBOOTED
    assert uptime_span(42_949_600.0, 100.0, 173.0) == pytest.approx(172.96)
    assert uptime_span(42_949_600.0, 100.0, 600.0) is None  # 173 s of device time in 600 s: it rebooted


# --- walks by cached interface index -------------------------------------------------------------


class _WalkCounter:
    """Counts the table columns the table reader walks (a cached read walks none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = _snmp_table.snmp_walk_columns

        async def counting(target: Any, creds: Any, bases: list[str], *args: Any, **kwargs: Any) -> Any:
            self.count += len(bases)
            return await real(target, creds, bases, *args, **kwargs)

        monkeypatch.setattr(_snmp_table, "snmp_walk_columns", counting)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def _switch_check(agent: SnmpAgent, mode: str = "walk", **params: Any) -> CheckSpec:
    column = "8" if mode == "walk" else "14"
    return spec(
        agent.address,
        name=f"sw-{mode}",
        mode=mode,
        oid=f"{IF_TABLE}.{column}",
        names_oid=f"{IF_TABLE}.2",
        label="ifOperStatus" if mode == "walk" else "ifInErrors",
        **params,
    )


def _clear_switch(agent: SnmpAgent, rows: int = 6) -> None:
    for index in range(1, rows + 1):
        for column in (2, 8, 14):
            agent.unset(f"{IF_TABLE}.{column}.{index}")


async def test_cached_walk_answers_like_a_full_walk(agent: SnmpAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_switch(agent)
    _fake_switch(agent, {"ge-0/0/1": 2, "ge-0/0/2": 1, "ge-0/0/3": 7})
    walks = _WalkCounter(monkeypatch)
    snmp.forget_index_cache()
    check = _switch_check(agent, interfaces={"ge-0/0/1": "uplink", "ge-0/0/3": ""})
    walked = await snmp.probe(check)
    assert walks.take() == 2  # the value column and the name column
    cached = await snmp.probe(check)
    assert walks.take() == 0
    assert (cached.status, cached.reason, cached.value, cached.values) == (
        walked.status,
        walked.reason,
        walked.value,
        walked.values,
    )
    assert cached.reason == "uplink ge-0/0/1 is down (ifOperStatus 2); ge-0/0/3 is lowerLayerDown (ifOperStatus 7)"
    agent.set(f"{IF_TABLE}.8.1", "integer", 1)
    agent.set(f"{IF_TABLE}.8.3", "integer", 1)
    recovered = await snmp.probe(check)
    assert walks.take() == 0
    assert (recovered.status, recovered.reason) == (CheckStatus.OK, "all 2 up")


async def test_cached_walk_notices_renumbered_and_removed_interfaces(
    agent: SnmpAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_switch(agent)
    _fake_switch(agent, {"ge-0/0/1": 1, "ge-0/0/2": 1, "uplink": 1})
    walks = _WalkCounter(monkeypatch)
    snmp.forget_index_cache()
    check = _switch_check(agent, interfaces=["uplink"])
    assert (await snmp.probe(check)).reason == "all 1 up"
    assert (await snmp.probe(check)).reason == "all 1 up"
    assert walks.take() == 2
    # a line card swap renumbers the ports: "uplink" moves from index 3 to index 1, and is down
    _clear_switch(agent)
    _fake_switch(agent, {"uplink": 2, "ge-0/0/1": 1, "ge-0/0/2": 1})
    moved = await snmp.probe(check)
    assert walks.take() == 2
    assert (moved.status, moved.reason) == (CheckStatus.CRITICAL, "uplink is down (ifOperStatus 2)")
    assert (await snmp.probe(check)).reason == "uplink is down (ifOperStatus 2)"
    assert walks.take() == 0
    # the interface disappears altogether
    _clear_switch(agent)
    _fake_switch(agent, {"ge-0/0/1": 1, "ge-0/0/2": 1})
    gone = await snmp.probe(check)
    assert walks.take() == 2
    assert (gone.status, gone.reason) == (CheckStatus.CRITICAL, "uplink not found in the table")


async def test_cached_walk_is_refreshed_after_max_age_and_reboot(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_snmpd(community=COMMUNITY) as device:
        _fake_switch(device, {"ge-0/0/1": 1, "uplink": 1})
        walks = _WalkCounter(monkeypatch)
        check = _switch_check(device, interfaces=["uplink"])
        await snmp.probe(check)
        await snmp.probe(check)
        assert walks.take() == 2
        monkeypatch.setattr(snmp, "INDEX_MAX_AGE", 0.0)
        await snmp.probe(check)
        assert walks.take() == 2
        monkeypatch.setattr(snmp, "INDEX_MAX_AGE", 300.0)
        await asyncio.sleep(1.0)  # sysUpTime well past what the restarted agent shows when next polled, even under load
        await snmp.probe(check)
        assert walks.take() == 0
        device.restart()  # sysUpTime goes back: interfaces may have been renumbered
        after = await snmp.probe(check)
        assert walks.take() == 2
        assert after.reason == "all 1 up"


async def test_cached_walk_rate_reads_the_known_counters(agent: SnmpAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_switch(agent)
    names = {"ge-0/0/1": 1, "ge-0/0/2": 1, "ge-0/0/3": 1}
    _fake_switch(agent, names, {"ge-0/0/1": 100, "ge-0/0/2": 5, "ge-0/0/3": 7})
    walks = _WalkCounter(monkeypatch)
    snmp.forget_index_cache()
    check = _switch_check(agent, mode="walk_rate", interfaces=["ge-0/0/1", "ge-0/0/3"], per=60)
    snmp.forget_baselines(check.id)
    first = await snmp.probe(check)
    assert (first.reason, first.values) == (FIRST_READING, {"total": 107.0})
    t0 = time.monotonic()
    await asyncio.sleep(0.4)
    _fake_switch(agent, names, {"ge-0/0/1": 130, "ge-0/0/2": 900, "ge-0/0/3": 17})
    second = await snmp.probe(check)
    elapsed = time.monotonic() - t0
    assert walks.take() == 2  # only the first poll walked
    assert second.values["total"] == 147.0
    assert second.value == pytest.approx(40 / elapsed * 60, rel=0.15)
    assert set(second.values) == {"total", "ge-0/0/1", "ge-0/0/3"}


# --- one deadline for the whole check ------------------------------------------------------------


class _SlowRelay(asyncio.DatagramProtocol):
    """A UDP relay on 127.0.0.1 in front of an agent that holds every reply back for `delay` seconds."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.transport: asyncio.DatagramTransport | None = None
        self.outbound: asyncio.DatagramTransport | None = None
        self.client: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client = addr
        assert self.outbound is not None
        self.outbound.sendto(data, self.upstream)

    def reply(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        client = self.client
        if self.transport is not None and client is not None:
            loop.call_later(self.delay, self._send, data, client)

    def _send(self, data: bytes, client: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, client)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: _SlowRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.reply(data)


async def _open_relay(agent: SnmpAgent, delay: float) -> tuple[_SlowRelay, str]:
    loop = asyncio.get_running_loop()
    relay = _SlowRelay(("127.0.0.1", agent.port), delay)
    front, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
    back, _ = await loop.create_datagram_endpoint(lambda: _Upstream(relay), local_addr=("127.0.0.1", 0))
    relay.outbound = back
    return relay, f"127.0.0.1:{front.get_extra_info('sockname')[1]}"


def _close_relay(relay: _SlowRelay) -> None:
    for transport in (relay.transport, relay.outbound):
        if transport is not None:
            transport.close()


async def test_walk_of_many_requests_stays_within_the_check_timeout(agent: SnmpAgent) -> None:
    for index in range(1, 81):
        agent.set(f"{TEST_ENTERPRISE}.5.1.{index}", "integer", 1)
    relay, address = await _open_relay(agent, delay=0.3)
    try:
        await snmp.probe(spec(agent.address, oid=snmp.SYS_UPTIME))  # opens this loop's SNMP engine
        # 80 rows at 10 per first GETBULK (the column's size is unknown) take 8 round trips of at least 0.3 s;
        # the check allows 1 s in all
        check = spec(address, timeout=1.0, mode="walk", oid=f"{TEST_ENTERPRISE}.5.1")
        started = time.monotonic()
        sample = await snmp.probe(check)
        elapsed = time.monotonic() - started
    finally:
        _close_relay(relay)
        for index in range(1, 81):
            agent.unset(f"{TEST_ENTERPRISE}.5.1.{index}")
    assert 0.95 < elapsed < 1.2
    assert sample.status is CheckStatus.CRITICAL
    found = re.fullmatch(
        rf"walk of {TEST_ENTERPRISE}.5.1 on {address} not finished within 1.0 s "
        r"\((\d+) rows read; agent slow or table large\?\)",
        sample.reason,
    )
    assert found, sample.reason
    assert int(found.group(1)) in (10, 20, 30), sample.reason


async def test_reply_after_the_timeout_is_told_apart_from_a_silent_agent(agent: SnmpAgent) -> None:
    relay, address = await _open_relay(agent, delay=0.5)
    try:
        await snmp.probe(spec(agent.address, oid=snmp.SYS_UPTIME))  # opens this loop's SNMP engine
        check = spec(address, timeout=0.3, oid=snmp.SYS_UPTIME)
        first = await snmp.probe(check)
        assert first.reason == f"no SNMP answer from {address} within 0.3 s (agent down or wrong community?)"
        await asyncio.sleep(0.5)  # the late reply arrives meanwhile
        second = await snmp.probe(check)
        assert second.status is CheckStatus.CRITICAL
        assert second.reason.startswith(
            f"no SNMP answer from {address} within 0.3 s (it answered after the 0.3 s timeout: 0.5 s"
        )
        relay.delay = 0.0
        await asyncio.sleep(0.4)
        assert (await snmp.probe(check)).status is CheckStatus.OK
        relay.delay = 0.5
        third = await snmp.probe(check)  # a fresh timeout after a good answer: no old evidence is reused
        assert third.reason.endswith("(agent down or wrong community?)")
        await asyncio.sleep(0.3)
    finally:
        _close_relay(relay)


async def test_walk_of_every_row_names_rows_from_the_kept_map(
    agent: SnmpAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk of every row walks the name column once, then only the value column until the rows change."""
    _clear_switch(agent)
    _fake_switch(agent, {"ge-0/0/1": 2, "uplink": 1})
    walks = _WalkCounter(monkeypatch)
    _snmp_table.forget_index_cache()
    check = _switch_check(agent)  # no `interfaces`: every row
    try:
        first = await snmp.probe(check)
        assert walks.take() == 2  # the value column and the name column
        again = await snmp.probe(check)
        assert walks.take() == 1  # the value column only, named from the kept map
        assert (again.status, again.reason, again.values) == (first.status, first.reason, first.values)
        assert again.reason == "ge-0/0/1 is down (ifOperStatus 2)"
        assert f"{IF_TABLE}.8.2 (uplink) = Integer: 1" in again.evidence
        _fake_switch(agent, {"ge-0/0/1": 1, "uplink": 1, "wifi": 2})  # a row appeared: its name is not known
        grown = await snmp.probe(check)
        assert walks.take() == 3  # the value column, then both columns again
        assert (grown.status, grown.reason) == (CheckStatus.CRITICAL, "wifi is down (ifOperStatus 2)")
    finally:
        _clear_switch(agent)
        _snmp_table.forget_index_cache()
