"""Fuzz the snmp probe with malformed agents: whatever comes back over UDP, a Sample comes out in time.

Hypothesis builds batches of misbehaving agents (random bytes, truncated or bit-flipped BER, responses
with wrong request ids, versions, PDU types, error statuses, value types and OIDs); each agent is a
raw UDP socket on 127.0.0.1 that answers the probe's requests with its scripted replies. Batches run
concurrently on one event loop so the whole module stays well under a minute.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from _snmpd import ber_int, ber_len, ber_oid, ber_tlv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bibnet_ops.model import CheckSpec, CheckStatus, Sample, SecretRef
from bibnet_ops.probes import snmp

TIMEOUT = 0.2
BATCH = 50
EXAMPLES = 24  # 24 batches x 50 agents = 1,200 malformed exchanges
COUNTER = "1.3.6.1.2.1.43.10.2.1.4.1.1"
TABLE = "1.3.6.1.2.1.2.2.1.8"

MODES: dict[str, dict[str, Any]] = {
    "get": {"oid": "1.3.6.1.2.1.1.5.0"},
    "get_many": {"oids": ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.6.0"]},
    "uptime": {"oid": "1.3.6.1.2.1.1.3.0", "expect": 5},
    "rate": {"mode": "rate", "oid": COUNTER, "per": 3600},
    "walk": {"mode": "walk", "oid": TABLE, "names_oid": "1.3.6.1.2.1.2.2.1.2"},
    "walk_rate": {"mode": "walk_rate", "oid": "1.3.6.1.2.1.2.2.1.14", "interfaces": ["1", "2"]},
}


# --- a tiny BER reader, enough to echo a request's id and OIDs -------------------------------------


def _read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first & 0x80:
        size = first & 0x7F
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    else:
        length = first
    return tag, data[pos : pos + length], pos + length


def _children(content: bytes) -> list[tuple[int, bytes]]:
    items, pos = [], 0
    while pos < len(content):
        tag, value, pos = _read_tlv(content, pos)
        items.append((tag, value))
    return items


def _decode_oid(raw: bytes) -> str:
    parts = [raw[0] // 40, raw[0] % 40]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


@dataclass
class Request:
    """What the probe asked: message version, community, PDU tag, request id, OIDs."""

    version: int = 1
    community: bytes = b""
    pdu_tag: int = 0xA0
    request_id: int = 0
    oids: list[str] = field(default_factory=list)


def parse_request(data: bytes) -> Request | None:
    """Parse a v2c request; v3 (encrypted) or odd messages give None."""
    try:
        _, message, _ = _read_tlv(data, 0)
        parts = _children(message)
        version = int.from_bytes(parts[0][1], "big")
        if version != 1:
            return None
        pdu_tag, pdu = parts[2]
        fields = _children(pdu)
        oids = [_decode_oid(_children(vb)[0][1]) for _, vb in _children(fields[3][1])]
        return Request(version, parts[1][1], pdu_tag, int.from_bytes(fields[0][1], "big", signed=True), oids)
    except (IndexError, ValueError):
        return None


# --- what a misbehaving agent sends back ----------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted reply: either raw bytes, or a response built from the request and then damaged."""

    raw: bytes | None = None
    version: int = 1
    community_ok: bool = True
    pdu_tag: int = 0xA2
    id_delta: int = 0
    error_status: int = 0
    error_index: int = 0
    bindings: tuple[tuple[str, int, bytes], ...] = ()  # (oid choice, value tag, value bytes)
    truncate: int | None = None
    flips: tuple[tuple[int, int], ...] = ()
    copies: int = 1

    def render(self, request: Request | None) -> bytes:
        if self.raw is not None or request is None:
            return self.raw or b"\x30\x00"
        bindings = []
        for index, (choice, tag, value) in enumerate(self.bindings):
            asked = request.oids[index % len(request.oids)] if request.oids else "1.3.6.1"
            oid = {"same": asked, "next": asked + ".1", "other": "1.3.6.1.4.1.9.9.9", "root": "1.3"}.get(choice)
            name = ber_oid(oid) if oid is not None else ber_tlv(0x06, choice.encode("latin-1"))
            bindings.append(ber_tlv(0x30, name + ber_tlv(tag, value)))
        pdu = ber_tlv(
            self.pdu_tag,
            ber_int(request.request_id + self.id_delta)
            + ber_int(self.error_status)
            + ber_int(self.error_index)
            + ber_tlv(0x30, b"".join(bindings)),
        )
        community = request.community if self.community_ok else b"guess"
        message = bytearray(ber_tlv(0x30, ber_int(self.version) + ber_tlv(0x04, community) + pdu))
        for position, byte in self.flips:
            message[position % len(message)] ^= byte or 0xFF
        if self.truncate is not None:
            del message[self.truncate % (len(message) + 1) :]
        return bytes(message)


VALUE_TAGS = [0x02, 0x04, 0x05, 0x06, 0x30, 0x40, 0x41, 0x42, 0x43, 0x44, 0x46, 0x47, 0x80, 0x81, 0x82, 0xA2]


def _valid_value(tag: int) -> st.SearchStrategy[bytes]:
    """Well-formed contents for the common types, random bytes for the rest."""
    if tag in (0x02, 0x41, 0x42, 0x43, 0x46, 0x47):
        return st.integers(-(2**70), 2**70).map(lambda v: ber_int(v)[2:])
    if tag in (0x80, 0x81, 0x82, 0x05):
        return st.just(b"")
    return st.binary(max_size=12)


flip = st.tuples(st.integers(0, 200), st.integers(0, 255))
binding = st.tuples(
    st.sampled_from(["same", "same", "next", "other", "root", "\x2b\x06\x01", "\x00", "\xff\xff\xff"]),
    st.sampled_from(VALUE_TAGS),
).flatmap(lambda t: st.tuples(st.just(t[0]), st.just(t[1]), _valid_value(t[1])))

well_formed = st.lists(
    st.sampled_from(VALUE_TAGS).flatmap(lambda tag: st.tuples(st.just("same"), st.just(tag), _valid_value(tag))),
    min_size=1,
    max_size=4,
).map(tuple)
anything = st.lists(binding, max_size=5).map(tuple)

# each flavour damages one thing, so most replies get deep into pysnmp and the probe
structured = st.one_of(
    st.builds(Reply, bindings=well_formed | anything),
    st.builds(Reply, bindings=well_formed, version=st.sampled_from([0, 3, 99, -1])),
    st.builds(Reply, bindings=well_formed, community_ok=st.just(False)),
    st.builds(Reply, bindings=well_formed, pdu_tag=st.sampled_from([0xA0, 0xA1, 0xA3, 0xA5, 0xA7, 0xA8, 0x30, 0x04])),
    st.builds(Reply, bindings=well_formed, id_delta=st.sampled_from([1, -1, 2**31, -(2**40)])),
    st.builds(Reply, bindings=well_formed, error_status=st.integers(-1, 300), error_index=st.integers(-2, 6)),
    st.builds(Reply, bindings=well_formed, truncate=st.integers(0, 120)),
    st.builds(Reply, bindings=well_formed, flips=st.lists(flip, min_size=1, max_size=3).map(tuple)),
    st.builds(Reply, bindings=well_formed, copies=st.integers(0, 3)),
    st.builds(
        Reply,
        version=st.sampled_from([1, 1, 1, 0, 3, 99]),
        community_ok=st.booleans(),
        pdu_tag=st.sampled_from([0xA2, 0xA2, 0xA0, 0xA8, 0x30]),
        id_delta=st.sampled_from([0, 0, 1, -1]),
        error_status=st.sampled_from([0, 0, 1, 2, 5, 18, 255]),
        error_index=st.integers(-2, 5),
        bindings=anything,
        truncate=st.none() | st.integers(0, 200),
        flips=st.lists(flip, max_size=3).map(tuple),
        copies=st.integers(0, 2),
    ),
)
raw = st.builds(Reply, raw=st.binary(max_size=120), copies=st.integers(1, 2))
lying_length = st.binary(min_size=1, max_size=6).map(lambda b: Reply(raw=b"\x30\x84\xff\xff\xff\xff" + b))
reply = st.one_of(structured, structured, structured, raw, lying_length)


@dataclass(frozen=True)
class Case:
    mode: str
    replies: tuple[Reply, ...]


case = st.builds(Case, mode=st.sampled_from(sorted(MODES)), replies=st.lists(reply, min_size=1, max_size=4).map(tuple))


class MalformedAgent(asyncio.DatagramProtocol):
    """A UDP 'agent' on 127.0.0.1 that answers each request with the next scripted reply."""

    def __init__(self, replies: tuple[Reply, ...]) -> None:
        self.replies = replies
        self.count = 0
        self.port = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        scripted = self.replies[self.count % len(self.replies)]
        self.count += 1
        payload = scripted.render(parse_request(data))
        assert self.transport is not None
        for _ in range(scripted.copies):
            self.transport.sendto(payload, addr)


async def _run_case(agent: MalformedAgent, item: Case) -> tuple[Sample, float, float]:
    agent.replies, agent.count = item.replies, 0
    check = CheckSpec(
        site_id="fuzz",
        device_id=f"agent-{agent.port}",
        name=item.mode,
        probe="snmp",
        address=f"127.0.0.1:{agent.port}",
        params=dict(MODES[item.mode]),
        credentials={"community": SecretRef("env:BIBNET_FUZZ_COMMUNITY")},
        timeout=TIMEOUT,
    )
    limit = TIMEOUT * (3 if item.mode.startswith("walk") else 1) + 0.5
    started = time.monotonic()
    # the first call may set a baseline; the second exercises the rate path on more garbage
    sample = await snmp.probe(check)
    if item.mode in ("rate", "walk_rate"):
        sample = await snmp.probe(check)
        limit *= 2
    return sample, time.monotonic() - started, limit


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    errors: list[dict[str, Any]] = []
    event_loop.set_exception_handler(lambda _loop, context: errors.append(context))
    event_loop.errors = errors  # type: ignore[attr-defined]
    yield event_loop
    # closing the loop's generators also closes the probe's SNMP engine and socket
    event_loop.run_until_complete(event_loop.shutdown_asyncgens())
    event_loop.close()


@pytest.fixture(scope="module")
def agents(loop: asyncio.AbstractEventLoop) -> Iterator[list[MalformedAgent]]:
    """A fixed pool of malformed agents, rescripted for every batch (the probe's targets stay cached)."""

    async def open_all() -> list[tuple[asyncio.DatagramTransport, MalformedAgent]]:
        opened = []
        for _ in range(BATCH):
            transport, agent = await loop.create_datagram_endpoint(
                lambda: MalformedAgent((Reply(),)), local_addr=("127.0.0.1", 0)
            )
            agent.port = transport.get_extra_info("sockname")[1]
            opened.append((transport, agent))
        return opened

    opened = loop.run_until_complete(open_all())
    yield [agent for _, agent in opened]
    for transport, _ in opened:
        transport.close()
    loop.run_until_complete(asyncio.sleep(0))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(case, min_size=BATCH, max_size=BATCH))
def test_malformed_replies_always_yield_a_sample(
    loop: asyncio.AbstractEventLoop, agents: list[MalformedAgent], monkeypatch: pytest.MonkeyPatch, batch: list[Case]
) -> None:
    monkeypatch.setenv("BIBNET_FUZZ_COMMUNITY", "public")
    snmp.forget_baselines()

    async def run_batch() -> list[tuple[Sample, float, float]]:
        return await asyncio.gather(*(_run_case(agent, item) for agent, item in zip(agents, batch, strict=True)))

    results = loop.run_until_complete(run_batch())
    for item, (sample, elapsed, limit) in zip(batch, results, strict=True):
        assert isinstance(sample, Sample), item
        assert sample.status in CheckStatus
        assert sample.check_id.startswith("fuzz/agent-")
        assert isinstance(sample.reason, str) and len(sample.reason) <= 240
        assert not sample.reason.startswith("internal probe error"), (item, sample)
        assert elapsed < limit + 0.3, (item, sample, elapsed)
    escaped = [c for c in loop.errors if "exception" in c]  # type: ignore[attr-defined]
    assert not escaped, escaped[:3]


def test_parse_request_reads_what_the_probe_sends() -> None:
    from _snmpd import ber_get_request

    request = parse_request(ber_get_request(b"public", ["1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.99999.2"], 4242))
    assert request is not None
    assert (request.community, request.request_id, request.oids) == (
        b"public",
        4242,
        ["1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.99999.2"],
    )
    assert ber_len(300) == b"\x82\x01\x2c"


def test_junk_replies_are_counted_in_the_reason(
    loop: asyncio.AbstractEventLoop, agents: list[MalformedAgent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIBNET_FUZZ_COMMUNITY", "public")
    junk = Case("get", (Reply(raw=b"\xb4\x02Q\xa3\xca\x13Q\xae", copies=2),))
    sample, elapsed, limit = loop.run_until_complete(_run_case(agents[0], junk))
    assert sample.status is CheckStatus.CRITICAL
    prefix = f"no valid SNMP answer from 127.0.0.1:{agents[0].port} within 0.2 s ("
    assert sample.reason.startswith(prefix) and sample.reason.endswith(" unreadable replies)")
    assert elapsed < limit
    assert not [c for c in loop.errors if "exception" in c]  # type: ignore[attr-defined]
